// The Open Inference Protocol's REST routes as one runtime-agnostic function: a plain request in, a plain
// response out. The Node HTTP server, the Lambda handler and the browser SDK only translate to and from it.
import { BINARY_HEADER, binaryOutputNames, decodeInferRequest, encodeInferResponse, READ_IN_PLACE_BYTES, type EncodedBody } from './codec/index.ts';
import { errorBody, InferenceError, toInferenceError } from './errors.ts';
import { inputCheckFor } from './request-guard.ts';
import { modelConfiguration, type ModelConfiguration } from './model-configuration.ts';
import type { InferenceRequest, InferenceResponse, ModelMetadata, ServerMetadata } from './protocol.ts';
import { fileKindOf, fileRequest } from './processing/file-request.ts';
import { Router, type PathParams, type Route } from './router.ts';
import type { Tensor } from './tensor.ts';

export interface V2Request {
  method: string;
  /** Path without the query string, e.g. /v2/models/digits/infer. */
  path: string;
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
  body?: Uint8Array;
  /**
   * Frees a buffer this request owns (its body, an array decoded from it) at once rather than when the collector
   * finds it dead (runtime/give-back.ts; given by the node:http adapter). Every view of the buffer reads as empty after:
   * the handler calls it only once nothing reads those bytes any more (see {@link InferEvent.hold}).
   */
  release?: (bytes: Uint8Array) => void;
  /**
   * The adapter calls a response's {@link V2Response.after} once it has handed the response to the transport (the
   * node:http adapter does): work that need not delay the answer — telling the observers, freeing the request's
   * buffers — is then left there. Absent: the handler does that work before it answers.
   */
  runsAfter?: boolean;
}

export interface V2Response {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
  /** The body was made for this response alone: the server may free its memory once it is sent. */
  ownBody?: boolean;
  /** Work left until the response has been sent (only for a request that {@link V2Request.runsAfter}); call it once. */
  after?: () => void;
}

export interface InferContext {
  /** Request id for logs and tracing (the request's own `id` is separate and echoed in the body). */
  requestId?: string;
  /** Aborted when the client goes away or the request times out. */
  signal?: AbortSignal;
  /** Filled in by an endpoint that knows them: how long the request queued and how long its (batch's) run took. */
  timing?: { queueMs?: number; computeMs?: number };
  /**
   * Takes bookkeeping the endpoint may leave until the answer has gone (statistics, metrics): the adapter runs it
   * right after the send, in the same turn of the event loop, so nothing can read the figures in between; at once if
   * the answer fails. Absent where the adapter sends nothing after (gRPC, Lambda): do the work at once then.
   */
  defer?: (work: () => void) => void;
}

/** One servable version of a model. */
export interface ModelEndpoint {
  readonly name: string;
  readonly version: string;
  isReady(): boolean;
  metadata(): ModelMetadata;
  /** The metadata requests are checked against, without anything built per call; absent = metadata(). */
  requestMetadata?(): ModelMetadata;
  infer(request: InferenceRequest, context?: InferContext): Promise<InferenceResponse>;
  /**
   * The answer within the call, where the endpoint can give it without waiting (a model that computes on this
   * thread with nothing queued); undefined = call {@link infer}. Throws what infer would reject with.
   */
  inferNow?(request: InferenceRequest, context?: InferContext): InferenceResponse | undefined;
  /** Triton's ModelConfig for this version; absent = derived from the metadata alone (no batching, one instance). */
  configuration?(): ModelConfiguration;
}

export interface ModelRegistry {
  /** Server readiness: every model that should be loaded is loaded, and the server is not draining. */
  isReady(): boolean;
  /** The endpoint for a model (its default version when `version` is absent); throws MODEL_NOT_FOUND / VERSION_NOT_FOUND. */
  resolve(name: string, version?: string): ModelEndpoint;
}

/** A route mounted beside the protocol's own (core/router.ts); the `pattern` form is kept only for the monitor's, until it moves. */
export type ExtraRoute = Route;

/** One completed infer, for onInfer. `requestId` is the x-request-id the adapter gave the request (feedback refers to it). */
export interface InferEvent {
  model: string;
  version: string;
  request: InferenceRequest;
  response?: InferenceResponse;
  error?: InferenceError;
  durationMs: number;
  requestId?: string;
  /** When each stage ran (performance.now() milliseconds), for traces and per-stage metrics. */
  stages?: InferStages;
  /** The client's W3C trace context header, when it sent one. */
  traceparent?: string;
  /**
   * An observer that reads `request` or `response` after onInfer has returned (from a queue, on a timer) calls
   * hold() in onInfer and release() once, when it is done. The request's big buffers are freed when the last hold is
   * let go (where the adapter can free them: {@link V2Request.release}); reading them after that finds them empty.
   * Events made by hand may lack both.
   */
  hold?(): void;
  release?(): void;
}

/**
 * A request's big buffers, and its answer's: freed when the last reader of its event lets go. The answer's outputs
 * are garbage once it is encoded and every observer is done. Measured 2026-12-07, 256 KiB answers at 16 connections,
 * two servers of each build, four interleaved rounds: 1,416 against 1,346 req/s on average and a peak RSS of 188-193
 * against 217-231 MB (one server of each, run in turn, had shown the opposite order: inside the spread between
 * processes).
 */
interface OwnedBuffers {
  /** Inputs whose data is the body's bytes, or an array of their own that decoding made. */
  tensors: readonly Tensor[];
  /** The body, where it or an input read from it is big enough to free. */
  body: Uint8Array | undefined;
  free: (bytes: Uint8Array) => void;
}

/** Inputs whose data lies in a buffer this request alone owns, of at least READ_IN_PLACE_BYTES. */
function ownedBuffers(request: InferenceRequest, body: Uint8Array, free: (bytes: Uint8Array) => void): OwnedBuffers {
  let tensors: Tensor[] | undefined;
  for (const t of request.inputs) {
    const d = t.data;
    if (!ArrayBuffer.isView(d) || d.buffer.byteLength < READ_IN_PLACE_BYTES) continue;
    // The body's bytes read in place, or an array decoding made for this tensor alone (a smaller one may be a view
    // into a slab shared with other requests: core/slab.ts).
    if (d.buffer === body.buffer || (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength)) (tensors ??= []).push(t);
  }
  return { tensors: tensors ?? NO_TENSORS, body: tensors || body.byteLength >= READ_IN_PLACE_BYTES ? body : undefined, free };
}

const NO_TENSORS: readonly Tensor[] = [];

/**
 * Frees an answer's outputs that are arrays of their own of at least READ_IN_PLACE_BYTES (a row of a batch's output
 * shares its buffer with the other requests' rows, and is left to the collector). Only the HTTP adapter's requests
 * get here: their answers are encoded into bodies of their own before the observers are told (gRPC's may still be
 * read by the message it sends, and are not freed).
 */
function freeOutputs(response: InferenceResponse, free: (bytes: Uint8Array) => void): void {
  for (const t of response.outputs) {
    const d = t.data;
    if (ArrayBuffer.isView(d) && d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.byteLength >= READ_IN_PLACE_BYTES) free(new Uint8Array(d.buffer));
  }
}

/**
 * One InferEvent, every member present in the same order: the observers read these on every request, and objects
 * built by spreading (`{ ...event, response }`) took a new hidden class each time, so every read of them missed V8's
 * inline caches (counted with --log-ic, 2026-12-06: 16 such misses per request).
 */
class RequestEvent implements InferEvent {
  /** The request's own hold (let go once onInfer has returned) and each observer's. */
  private holds = 1;
  constructor(
    readonly model: string,
    readonly version: string,
    readonly request: InferenceRequest,
    readonly response: InferenceResponse | undefined,
    readonly error: InferenceError | undefined,
    readonly durationMs: number,
    readonly requestId: string | undefined,
    readonly stages: InferStages,
    readonly traceparent: string | undefined,
    private readonly owned: OwnedBuffers | undefined,
  ) {}

  hold(): void {
    if (this.holds > 0) this.holds++;
  }

  release(): void {
    if (this.holds <= 0 || --this.holds > 0 || !this.owned) return;
    const { tensors, body, free } = this.owned;
    // A worker session may have moved a tensor's buffer to its thread and handed it back: `data` is read now.
    for (const t of tensors) {
      const d = t.data;
      if (ArrayBuffer.isView(d)) free(new Uint8Array(d.buffer));
    }
    if (body) free(body);
    if (this.response) freeOutputs(this.response, free);
  }
}

/**
 * One request's stages, measured where they already are: decode (body → tensors), infer (queue + compute, split by
 * the batcher's own numbers when the endpoint reports them), encode (outputs → body).
 */
export interface InferStages {
  start: number;
  decodeEnd: number;
  inferEnd: number;
  encodeEnd: number;
  queueMs?: number;
  computeMs?: number;
}

export interface V2AppOptions {
  registry: ModelRegistry;
  server: ServerMetadata;
  /** Checked before the protocol's own routes (repository, statistics, metrics …). */
  routes?: ExtraRoute[];
  /** Called for each completed infer (metrics, logs, drift) — never on the response's critical path. */
  onInfer?: (event: InferEvent) => void;
  now?: () => number;
  /** The adapter sends a Uint8Array body as it is (node:http): JSON answers then come as UTF-8 bytes, not a string. */
  jsonBytes?: boolean;
}

/**
 * Answers one request. An answer ready within the call (an infer that ran on this thread, a metadata route) comes as
 * it is, not as a promise: the adapter then sends it without waiting for the microtask queue (three turns of it, a
 * few µs of every one-connection request's time, 2026-12-07). Callers `await` either.
 */
export type V2Handler = (request: V2Request) => Promise<V2Response> | V2Response;

export function jsonResponse(status: number, value: unknown, headers: Record<string, string> = {}): V2Response {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}

export function errorResponse(e: unknown): V2Response {
  const err = toInferenceError(e);
  return jsonResponse(err.status, errorBody(err));
}

function allDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** POST /v2/models/…/infer(/): only the protocol's infer route answers these. */
function isInfer(request: V2Request): boolean {
  const p = request.path;
  return request.method === 'POST' && p.startsWith('/v2/models/') && (p.endsWith('/infer') || p.endsWith('/infer/'));
}

/**
 * The model and version an infer path names, read without the router: `/v2/models/{m}/infer[/]` or
 * `/v2/models/{m}/versions/{v}/infer[/]` with plain segments (the router's regexes and its parameter object measured
 * ~1.3 µs a request, perf at 64 connections, 2026-12-06). Undefined for anything else (an escaped or empty segment,
 * more segments): the router decides those, with its own errors.
 */
function inferTarget(path: string): { model: string; version: string | undefined } | undefined {
  const start = '/v2/models/'.length;
  let end = path.length;
  if (path.charCodeAt(end - 1) === 47) end--; // the optional trailing '/'
  end -= '/infer'.length;
  const a = path.indexOf('/', start);
  if (a === -1 || a === start || path.includes('%', start)) return undefined;
  if (a === end) return { model: path.slice(start, a), version: undefined };
  if (!path.startsWith('/versions/', a)) return undefined;
  const v = a + '/versions/'.length;
  const b = path.indexOf('/', v);
  if (b !== end || b === v) return undefined;
  return { model: path.slice(start, a), version: path.slice(v, b) };
}

/** A model, or one of its versions: `/v2/models/{name}[/versions/{version}]`. */
const MODEL = '/v2/models/:model[/versions/:version]';

const ACCEPTED_TYPES = ['application/json', 'application/octet-stream', 'text/plain'];

function checkContentType(request: V2Request): void {
  const ct = request.headers['content-type'];
  if (!ct || ct === 'application/json' || ct === 'application/octet-stream') return;
  const base = ct.split(';')[0].trim().toLowerCase();
  if (ACCEPTED_TYPES.includes(base) || base.endsWith('+json')) return;
  throw new InferenceError(
    'UNSUPPORTED_MEDIA_TYPE',
    `Content-Type '${base}' is not supported: send 'application/json', or 'application/octet-stream' with an Inference-Header-Content-Length header for binary tensors`,
  );
}

function headerLengthOf(request: V2Request): number | undefined {
  const h = request.headers[BINARY_HEADER];
  if (h === undefined) return undefined;
  const n = Number(h);
  if (!Number.isSafeInteger(n) || n < 0 || !allDigits(h.trim())) {
    throw new InferenceError('BINARY_SIZE_MISMATCH', `Inference-Header-Content-Length must be a non-negative integer, got '${h}'`);
  }
  return n;
}

/**
 * Runs a decoded request on an endpoint and encodes the answer, then tells `onInfer` (REST and gRPC alike): the
 * response, or the error (as an InferenceError, which is also what is thrown). `started` is when decoding began.
 * The event carries each stage's times (three clock reads per request) and the client's `traceparent`.
 */
export function inferAndReport<T>(
  endpoint: ModelEndpoint,
  request: InferenceRequest,
  requestId: string | undefined,
  started: number,
  encode: (response: InferenceResponse) => T,
  onInfer: ((event: InferEvent) => void) | undefined,
  now: () => number = () => performance.now(),
  traceparent?: string,
  owned?: OwnedBuffers,
  later?: (encoded: T, tell: () => void) => void,
): Promise<T> | T {
  const timing: { queueMs?: number; computeMs?: number } = { queueMs: undefined, computeMs: undefined };
  const outcome = new InferOutcome(endpoint, request, requestId, started, now(), timing, onInfer, now, traceparent, owned, later as ((encoded: unknown, tell: () => void) => void) | undefined);
  const settle = (response: InferenceResponse): T => {
    try {
      return outcome.answered(response, encode);
    } catch (e) {
      throw e instanceof ReportedError ? e.error : e;
    }
  };
  // Answered within the call where the endpoint can (no promise between the run and the answer), else by infer.
  let response: InferenceResponse | undefined;
  let pending: Promise<InferenceResponse> | undefined;
  try {
    const context: InferContext = { requestId, timing, defer: later ? (work) => outcome.defer(work) : undefined };
    response = endpoint.inferNow?.(request, context);
    if (response === undefined) pending = endpoint.infer(request, context);
  } catch (e) {
    throw outcome.failed(e);
  }
  if (pending) {
    return pending.then(settle, (e) => {
      throw outcome.failed(e);
    });
  }
  // Answered within the call: the answer as it is (an encoding that fails throws, as a rejection would).
  return settle(response!);
}

/** An error the observers have already been told of (thrown by InferOutcome.answered when encoding fails). */
class ReportedError {
  constructor(readonly error: InferenceError) {}
}

/** One infer's times and what the observers are told: its answer, or its error. */
class InferOutcome {
  private inferEnd: number;
  /** The endpoint's bookkeeping left until the answer has gone (InferContext.defer). */
  private deferred: (() => void)[] | undefined;
  defer(work: () => void): void {
    (this.deferred ??= []).push(work);
  }
  constructor(
    private readonly endpoint: ModelEndpoint,
    private readonly request: InferenceRequest,
    private readonly requestId: string | undefined,
    private readonly started: number,
    private readonly decodeEnd: number,
    private readonly timing: { queueMs?: number; computeMs?: number },
    private readonly onInfer: ((event: InferEvent) => void) | undefined,
    private readonly now: () => number,
    private readonly traceparent: string | undefined,
    private readonly owned: OwnedBuffers | undefined,
    private readonly later: ((encoded: unknown, tell: () => void) => void) | undefined,
  ) {
    this.inferEnd = decodeEnd;
  }

  /** Encodes the answer and tells the observers; an encoding that fails is reported and thrown as a ReportedError. */
  answered<T>(response: InferenceResponse, encode: (response: InferenceResponse) => T): T {
    this.inferEnd = this.now();
    let encoded: T;
    try {
      encoded = encode(response);
    } catch (e) {
      throw new ReportedError(this.failed(e));
    }
    const event = this.event(response, undefined, this.now(), this.inferEnd, this.owned);
    const onInfer = this.onInfer;
    // Where the adapter sends the answer first, the observers are told after: at one connection that work then
    // overlaps the client's turn instead of delaying the answer.
    if (this.later) this.later(encoded, () => this.tell(event));
    else report(onInfer, event);
    return encoded;
  }

  /** The endpoint's deferred bookkeeping, then the observers. */
  private tell(event: RequestEvent): void {
    try {
      this.runDeferred();
    } finally {
      report(this.onInfer, event);
    }
  }

  private runDeferred(): void {
    const work = this.deferred;
    if (!work) return;
    this.deferred = undefined;
    for (const w of work) w();
  }

  private event(response: InferenceResponse | undefined, error: InferenceError | undefined, end: number, inferEnd: number, owned: OwnedBuffers | undefined): RequestEvent {
    const { endpoint, timing, started } = this;
    const stages = { start: started, decodeEnd: this.decodeEnd, inferEnd, encodeEnd: end, queueMs: timing.queueMs, computeMs: timing.computeMs };
    return new RequestEvent(endpoint.name, endpoint.version, this.request, response, error, end - started, this.requestId, stages, this.traceparent, owned);
  }

  /** Tells the observers of the error; returns it as an InferenceError, to be thrown. */
  failed(e: unknown): InferenceError {
    try {
      this.runDeferred();
    } catch {
      // Bookkeeping that fails does not change what the request failed with.
    }
    const error = toInferenceError(e);
    const end = this.now();
    // Nothing is freed after a failure: a run that outlived its request (TIMEOUT) may still be reading the inputs.
    const event = this.event(undefined, error, end, this.inferEnd === this.decodeEnd ? end : this.inferEnd, undefined);
    // Such a run may also have moved the inputs to a worker thread: the observers (prediction and payload logs) are
    // told once it has finished and handed them back, not while they read as empty.
    if (error.outlived) void error.outlived.then(() => report(this.onInfer, event)).catch(() => {}); // observers must not throw
    else report(this.onInfer, event);
    return error;
  }
}

/** Tells the observers, then lets go of the request's own hold on its buffers (the answer is encoded by now). */
function report(onInfer: ((event: InferEvent) => void) | undefined, event: RequestEvent): void {
  try {
    onInfer?.(event);
  } finally {
    event.release();
  }
}

/** The model configuration extension's answer for an endpoint (REST and gRPC alike). */
export function configurationOf(endpoint: ModelEndpoint): ModelConfiguration {
  return endpoint.configuration?.() ?? modelConfiguration(endpoint.metadata());
}

/** Leaves telling the observers to the adapter, after it has sent the answer. */
function tellAfter(response: V2Response, tell: () => void): void {
  response.after = tell;
}

/** An encoded infer answer as the HTTP response. */
function inferAnswer(encoded: EncodedBody): V2Response {
  const headers: Record<string, string> = { 'content-type': encoded.contentType };
  if (encoded.headerLength !== undefined) headers[BINARY_HEADER] = String(encoded.headerLength);
  return { status: 200, headers, body: encoded.body, ownBody: true };
}

/** The metadata of a model not loaded yet: no inputs to check before decoding. */
const NOT_LOADED: ModelMetadata = { name: '', platform: '', inputs: [], outputs: [] };

export function createV2App(options: V2AppOptions): V2Handler {
  const { registry, server, routes = [], onInfer } = options;
  const encodeOptions = { bytes: options.jsonBytes === true };
  const now = options.now ?? (() => performance.now());

  /**
   * The model's metadata for the checks made before decoding, or — for a model not loaded yet (`--memory-budget`
   * loads on the first request) — none: only the per-request bounds apply then, and the full validation runs once
   * the model has loaded.
   */
  const metadataIfLoaded = (endpoint: ModelEndpoint): ModelMetadata => {
    try {
      return endpoint.requestMetadata?.() ?? endpoint.metadata();
    } catch (e) {
      if (e instanceof InferenceError && e.code === 'MODEL_NOT_READY') return NOT_LOADED;
      throw e;
    }
  };

  /** Not async: a synchronous throw (a refused header, an undecodable body) is caught by handle like a rejection. */
  function infer(request: V2Request, endpoint: ModelEndpoint): Promise<V2Response> | V2Response {
    const fileKind = fileKindOf(request.headers['content-type']);
    if (!fileKind) checkContentType(request);
    const started = now();
    const body = request.body ?? new Uint8Array(0);
    const headerLength = fileKind ? undefined : headerLengthOf(request);
    const release = request.release;
    let decoded: InferenceRequest;
    try {
      decoded = fileKind ? fileRequest(endpoint.metadata(), fileKind, body) : decodeInferRequest(body, headerLength, inputCheckFor(metadataIfLoaded(endpoint)));
    } finally {
      // JSON alone is copied out as it is decoded (and a failed decode keeps nothing): its body is done with here.
      if (release && !fileKind && headerLength === undefined && body.byteLength >= READ_IN_PLACE_BYTES) release(body);
    }
    const owned = release ? ownedBuffers(decoded, body, release) : undefined;
    return inferAndReport(endpoint, decoded, request.headers['x-request-id'], started, (r) => inferAnswer(encodeInferResponse(r, binaryOutputNames(decoded), encodeOptions)), onInfer, now, request.headers.traceparent, owned, request.runsAfter ? tellAfter : undefined);
  }

  function inferOn(request: V2Request, model: string, version: string | undefined): Promise<V2Response> | V2Response {
    const endpoint = registry.resolve(model, version);
    if (!endpoint.isReady()) throw new InferenceError('MODEL_NOT_READY', `model '${model}' version ${endpoint.version} is not ready`);
    return infer(request, endpoint);
  }

  const extra = new Router(routes);
  const protocol = new Router([
    { method: 'GET', path: '/v2/health/live', handle: () => jsonResponse(200, { live: true }) },
    {
      method: 'GET',
      path: '/v2/health/ready',
      handle() {
        const ready = registry.isReady();
        return jsonResponse(ready ? 200 : 503, { ready });
      },
    },
    { method: 'GET', path: '/v2[/]', handle: () => jsonResponse(200, server) },
    {
      method: 'POST',
      path: `${MODEL}/infer[/]`,
      handle: (request, { model, version }: PathParams) => inferOn(request, model!, version),
    },
    {
      method: 'GET',
      path: `${MODEL}/ready[/]`,
      handle(_request, { model, version }: PathParams) {
        const ready = registry.resolve(model!, version).isReady(); // 404s answer as themselves
        return jsonResponse(ready ? 200 : 503, { name: model, ...(version ? { version } : {}), ready });
      },
    },
    { method: 'GET', path: `${MODEL}/config[/]`, handle: (_request, { model, version }) => jsonResponse(200, configurationOf(registry.resolve(model!, version))) },
    { method: 'GET', path: `${MODEL}[/]`, handle: (_request, { model, version }) => jsonResponse(200, registry.resolve(model!, version).metadata()) },
  ], { strictMethods: true });

  // Not an async function: an answer ready within the call is returned as it is, a pending one as the promise it is.
  return function handle(request: V2Request): Promise<V2Response> | V2Response {
    try {
      // An infer goes straight to the protocol's routes (no extra route takes POST …/infer): the dozen extra
      // routes' patterns are not tried on the hottest path.
      let answer: Promise<V2Response> | V2Response | undefined;
      if (isInfer(request)) {
        const target = inferTarget(request.path);
        answer = target ? inferOn(request, target.model, target.version) : protocol.dispatch(request);
      } else answer = extra.dispatch(request) ?? protocol.dispatch(request);
      if (!answer) throw new InferenceError('NOT_FOUND', `no endpoint at ${request.method} ${request.path}; see GET /v2 and /v2/models/{name}`);
      return answer instanceof Promise ? answer.catch(errorResponse) : answer;
    } catch (e) {
      return errorResponse(e);
    }
  };
}

export type { ModelMetadata };
