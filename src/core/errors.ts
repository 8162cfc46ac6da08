// One table of error codes: each code has its HTTP status and gRPC status, so every adapter (REST, gRPC, Lambda,
// browser) reports the same failure the same way. docs/errors.md documents each code; a test checks that.

export const ERRORS = {
  INVALID_JSON: { status: 400, grpc: 3, summary: 'The request body is not valid JSON.' },
  INVALID_REQUEST: { status: 400, grpc: 3, summary: 'The request does not have the shape of a v2 inference request.' },
  UNKNOWN_INPUT: { status: 400, grpc: 3, summary: 'An input names a tensor the model does not have.' },
  MISSING_INPUT: { status: 400, grpc: 3, summary: 'A model input is absent from the request.' },
  DUPLICATE_INPUT: { status: 400, grpc: 3, summary: 'The same input appears twice.' },
  DATATYPE_MISMATCH: { status: 400, grpc: 3, summary: 'An input datatype differs from the model\'s.' },
  SHAPE_MISMATCH: { status: 400, grpc: 3, summary: 'An input shape does not fit the model\'s shape.' },
  DATA_LENGTH_MISMATCH: { status: 400, grpc: 3, summary: 'The number of data elements differs from the product of the shape.' },
  INVALID_DATA: { status: 400, grpc: 3, summary: 'A data element is not a valid value of the datatype.' },
  BINARY_SIZE_MISMATCH: { status: 400, grpc: 3, summary: 'Binary tensor sizes do not add up to the body, or do not fit the shape and datatype.' },
  UNKNOWN_OUTPUT: { status: 400, grpc: 3, summary: 'A requested output is not an output of the model.' },
  EMPTY_TENSOR: { status: 400, grpc: 3, summary: 'An input has a zero-size dimension the model does not declare as 0.' },
  NESTING_TOO_DEEP: { status: 400, grpc: 3, summary: 'The JSON body nests arrays or objects deeper than the server allows.' },
  TOO_MANY_ELEMENTS: { status: 413, grpc: 8, summary: 'A tensor has more elements than the server will decode for one request.' },
  MALFORMED_HTTP: { status: 400, grpc: 3, summary: 'The HTTP request itself is malformed (framing, header syntax).' },
  HEADERS_TOO_LARGE: { status: 431, grpc: 8, summary: 'The HTTP request headers are over Node\'s limit.' },
  MODEL_CONTROL_DISABLED: { status: 403, grpc: 7, summary: 'Repository load/unload/index is off: start the server with --model-control explicit.' },
  ORIGIN_NOT_ALLOWED: { status: 403, grpc: 7, summary: 'A browser sent a cross-site request (foreign Origin) to a route that changes or reads server state.' },
  HOST_NOT_ALLOWED: { status: 403, grpc: 7, summary: 'The Host header is not one this loopback server answers to (DNS rebinding guard).' },
  UNSUPPORTED_DATATYPE: { status: 400, grpc: 3, summary: 'The datatype is not one the protocol or the model supports.' },
  UNDECODABLE_INPUT: { status: 400, grpc: 3, summary: 'A file sent to a model with declared preprocessing (image, WAV) is truncated or corrupt.' },
  UNSUPPORTED_FILE_FORMAT: { status: 400, grpc: 3, summary: 'A file sent for preprocessing is of a format the step does not read (e.g. GIF for an image step, MP3 for audio).' },
  IMAGE_TOO_LARGE: { status: 400, grpc: 3, summary: 'An image declares more pixels than the model\'s preprocess.image.max_pixels; refused before decoding.' },
  INVALID_TEXT: { status: 400, grpc: 3, summary: 'A text sent for tokenization is empty, not UTF-8, or longer than preprocess.text.max_length tokens.' },
  LABELS_MISMATCH: { status: 400, grpc: 3, summary: 'The model\'s labels file has fewer lines than the output has classes.' },
  MODEL_NOT_FOUND: { status: 404, grpc: 5, summary: 'No model of that name is in the repository.' },
  VERSION_NOT_FOUND: { status: 404, grpc: 5, summary: 'The model has no such version loaded.' },
  NOT_FOUND: { status: 404, grpc: 12, summary: 'No endpoint at that path.' },
  METHOD_NOT_ALLOWED: { status: 405, grpc: 12, summary: 'The endpoint does not accept that HTTP method.' },
  PAYLOAD_TOO_LARGE: { status: 413, grpc: 8, summary: 'The request body is over the server\'s limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, grpc: 3, summary: 'The Content-Type is neither JSON nor the binary tensor extension.' },
  UNSUPPORTED_CONTENT_ENCODING: { status: 415, grpc: 3, summary: 'The Content-Encoding is neither gzip nor deflate (nor none).' },
  UNAUTHORIZED: { status: 401, grpc: 16, summary: 'A bearer token is required and was missing or wrong.' },
  MODEL_NOT_READY: { status: 503, grpc: 14, summary: 'The model is loading, unloading or failed to load.' },
  QUEUE_FULL: { status: 503, grpc: 14, summary: 'The model\'s request queue is full; retry later.' },
  SHUTTING_DOWN: { status: 503, grpc: 14, summary: 'The server is draining before it stops.' },
  INVALID_CLOUD_EVENT: { status: 400, grpc: 3, summary: 'A POST to /v2/monitor/events is not a CloudEvent of KServe\'s logger (request/response type, v2 payload).' },
  WORKERS_UNAVAILABLE: { status: 503, grpc: 14, summary: 'Under `dais serve --workers N`, the other worker processes did not answer in time, or this one lost its primary.' },
  MODEL_PROCESS_EXITED: { status: 503, grpc: 14, summary: 'Under `dais serve --isolation process`, the process running the model exited (a native crash) during or before the run; it is being restarted.' },
  MODEL_LOAD_TIMEOUT: { status: 504, grpc: 4, summary: 'Under `--memory-budget`, the model did not finish loading within the load timeout.' },
  TIMEOUT: { status: 504, grpc: 4, summary: 'The request waited longer than the server\'s request timeout.' },
  UNSUPPORTED: { status: 501, grpc: 12, summary: 'The feature is not supported by this server.' },
  INFERENCE_FAILED: { status: 500, grpc: 13, summary: 'The runtime failed while running the model.' },
  INTERNAL: { status: 500, grpc: 13, summary: 'An unexpected server error.' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/**
 * A failure the user caused and can fix (a bad flag, file, config or limit): its message names the cause and the fix,
 * and is shown as one line without a stack. Every tool's own error class extends it, so callers catch one type.
 */
export class UserError extends Error {
  /** The process exit code when the CLI ends on this error. */
  readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options?.exitCode ?? 1;
  }
}

/** An error that carries its protocol code; its message is safe to show to a client. */
export class InferenceError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /**
   * Set on a TIMEOUT whose run was already under way (a run cannot be stopped): settles when that run has finished,
   * so whoever reports the failed request's inputs waits until a worker thread has handed them back.
   */
  outlived?: Promise<void>;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InferenceError';
    this.code = code;
    this.status = ERRORS[code].status;
  }
}

/** Turns anything thrown into an InferenceError; unknown errors become INTERNAL with a generic message. */
export function toInferenceError(e: unknown): InferenceError {
  if (e instanceof InferenceError) return e;
  return new InferenceError('INTERNAL', 'internal server error', { cause: e });
}

/** The v2 error body. `code` is an extra field the published schema allows. */
export function errorBody(e: InferenceError): { error: string; code: ErrorCode } {
  return { error: e.message, code: e.code };
}
