// The Lambda adapter: picks the event's processor, runs the core's v2 app, and turns the answer back into
// the integration's result. It holds no protocol logic of its own.
import { errorBody, errorResponse, InferenceError, STARTUP_PHASES, toInferenceError, type StartupReport, type V2Handler, type V2Response } from '../../core/index.ts';
import { DirectInvocationError, processorFor, type EventKind, type ProcessorContext } from './events.ts';

/** The parts of Lambda's context object the adapter reads. */
export interface LambdaContext {
  awsRequestId?: string;
  getRemainingTimeInMillis?: () => number;
}

/** Lambda's limit on a synchronous invocation's response payload (6 MB). */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

export interface LambdaHandlerOptions extends ProcessorContext {
  /** For operators' logs only: the client never sees more than the error's code and message. */
  onError?: (event: { requestId?: string; kind?: EventKind; error: InferenceError }) => void;
  /** Awaited before each invocation returns (tracing exports its spans: a frozen function runs no timers). */
  afterInvoke?: () => Promise<void>;
}

export type LambdaHandler = (event: unknown, context?: LambdaContext) => Promise<unknown>;

export function logLambdaError({ requestId, kind, error }: { requestId?: string; kind?: EventKind; error: InferenceError }): void {
  // Only unexpected failures are logged: bad input is the caller's business and already in the response.
  if (error.status < 500) return;
  const cause = error.cause instanceof Error ? `${error.cause.name}: ${error.cause.message}` : error.cause === undefined ? undefined : String(error.cause);
  process.stderr.write(`${JSON.stringify({ level: 'error', requestId, kind, code: error.code, message: error.message, cause })}\n`);
}

export const INIT_PHASES_MESSAGE = 'INIT phases (seconds)';

/**
 * The function's one INIT log line: where INIT's time went (Node's boot, the bundle's imports, model load, warmup),
 * which Lambda's own REPORT line gives only as one Init Duration. `lazy`: the models opened in the first invocation.
 */
export function logInitPhases(phases: StartupReport, lazy: boolean): void {
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: INIT_PHASES_MESSAGE, phases, ...(lazy ? { lazy } : {}) })}\n`);
}

/** The phases from a function's log line, when it is the INIT line (the emulator reads them back). */
export function parseInitPhases(line: string): StartupReport | undefined {
  if (!line.includes(INIT_PHASES_MESSAGE)) return undefined;
  try {
    const o = JSON.parse(line) as { msg?: string; phases?: Record<string, unknown> };
    const p = o.phases;
    if (o.msg !== INIT_PHASES_MESSAGE || !p || ![...STARTUP_PHASES, 'total'].every((k) => typeof p[k] === 'number')) return undefined;
    return p as StartupReport;
  } catch {
    return undefined;
  }
}

/** Wraps a v2 app as a Lambda handler. */
export function createLambdaHandler(app: V2Handler, options: LambdaHandlerOptions = {}): LambdaHandler {
  const onError = options.onError ?? logLambdaError;

  return async function handler(event: unknown, context: LambdaContext = {}): Promise<unknown> {
    const processor = processorFor(event);
    const requestId = context.awsRequestId;
    if (!processor) {
      const err = new InferenceError(
        'INVALID_REQUEST',
        'unrecognised event: expected a function URL, API Gateway (HTTP API or REST API), ALB event, or a v2 inference request object with "inputs"',
      );
      return { ...errorBody(err), status: err.status };
    }
    let response: V2Response;
    try {
      const request = processor.toRequest(event as never, options);
      if (requestId && !request.headers['x-request-id']) request.headers['x-request-id'] = requestId;
      response = await app(request);
    } catch (e) {
      const err = e instanceof DirectInvocationError ? new InferenceError('INVALID_REQUEST', e.message) : toInferenceError(e);
      onError({ requestId, kind: processor.kind, error: err });
      response = errorResponse(err);
    }
    const size = typeof response.body === 'string' ? response.body.length : Math.ceil(response.body.byteLength / 3) * 4;
    if (size > MAX_RESPONSE_BYTES) {
      response = errorResponse(
        new InferenceError(
          'PAYLOAD_TOO_LARGE',
          `the response is ${size} bytes, over Lambda's ${MAX_RESPONSE_BYTES}-byte limit for a synchronous response: send a smaller batch or ask for fewer outputs`,
        ),
      );
    }
    if (options.afterInvoke) await options.afterInvoke().catch(() => undefined); // telemetry never fails a request
    try {
      return processor.toResult(response, event as never);
    } catch (e) {
      // The event matched its kind's guard but not every field its answer reads: still a client error with a code.
      const err = new InferenceError('INVALID_REQUEST', `the event does not have the fields of a ${processor.kind} event: ${(e as Error).message}`);
      return { ...errorBody(err), status: err.status };
    }
  };
}
