// node:http adapter: translates Node's request/response to the core's V2Request/V2Response and back, gives every
// request an id (returned in x-request-id and used in every log line about it), and drains gracefully on close.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';
import { errorResponse, InferenceError, type V2Handler, type V2Request, type V2Response } from '../core/index.ts';
import { answerClientErrors, takeTurn, trackConnections } from './connection-guard.ts';
import { giveBack } from '../runtime/give-back.ts';
import { holdForRequest, InflightBudget, UNCOUNTED_BYTES, type BudgetHold } from './inflight-budget.ts';
import { silentLogger, type Logger } from './logger.ts';
import { ClientAborted, readRequestBody } from './request-body.ts';
import { newRequestId } from './request-id.ts';

export interface HttpServerOptions {
  handler: V2Handler;
  host?: string;
  port?: number;
  /** Requests with a larger body get 413 before it is read. */
  maxBodyBytes?: number;
  logger?: Logger;
  /** Seconds a client should wait before retrying a 503 (queue full, draining). Default 1. */
  retryAfterSeconds?: number;
  /**
   * Most request and response bytes held across connections before new requests wait unread (inflight-budget.ts).
   * Default {@link defaultInflightBytes} of maxBodyBytes.
   */
  maxInflightBytes?: number;
  /** How often answers that clients do not read are checked while requests wait for the budget. Default 10 s. */
  stallMs?: number;
}

export interface CloseOptions {
  /** Longest wait for in-flight requests before connections are cut. Default 30 s. */
  timeoutMs?: number;
  /**
   * Keep accepting (answering with connection: close) this long before the listener closes, so connections that
   * were on their way when the drain began are served rather than reset. Default 0.
   */
  graceMs?: number;
}

export interface RunningHttpServer {
  server: Server;
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish; resolves true when all finished within the timeout. */
  close(options?: CloseOptions): Promise<boolean>;
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
/**
 * An eighth of the body limit, at least 8 MiB. With 50 clients pipelining 1 MB requests (goals/hostile.goal.ts),
 * 8 MiB held RSS to 1.3 × idle where 64 MiB let it reach 1.95 × (2026-12-06, measured with MALLOC_MMAP_THRESHOLD_=
 * 131072 before big buffers were freed at once; with no such variable it now measures 1.30-1.36 ×). One request is
 * always let in, so a body at the limit is still served.
 */
export const defaultInflightBytes = (maxBodyBytes: number) => Math.max(maxBodyBytes / 8, 8 * 1024 * 1024);
export const REQUEST_ID_HEADER = 'x-request-id';
const CLIENT_ID = /^[\w.:@/+=-]{1,128}$/;

function send(res: ServerResponse, r: V2Response, head: boolean, extra: readonly string[]): void {
  const body = r.body;
  // A string body goes to res.end as it is: Node then sends the headers and the body in one write, where a Buffer
  // costs a copy here and a two-part writev.
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  // Headers as one flat [name, value, …] list in one writeHead: on the hottest path there is, a merged object
  // (spread, then Object.keys in Node) measured about a tenth of this adapter's own time per request.
  const headers: string[] = [];
  for (const name in r.headers) if (name !== 'content-length') headers.push(name, r.headers[name]);
  for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
  headers.push('content-length', String(length));
  res.writeHead(r.status, headers);
  if (head) res.end();
  else if (typeof body !== 'string' && length <= SMALL_BINARY_BYTES) {
    // A small binary body as a latin1 string (one byte per character, so the bytes are unchanged): Node then joins
    // it to the headers and sends both in one write, where a Buffer takes a two-part writev.
    res.end(Buffer.from(body.buffer, body.byteOffset, length).toString('latin1'), 'latin1');
  } else if (r.ownBody && typeof body !== 'string') {
    // A big answer's memory is given back once it has gone to the socket, not when V8 next collects: each one
    // outside the heap counts towards V8's external memory, which triggers collections (BERT-mini's 132 KB answers,
    // one connection: 1,247 -> 1,182 µs of main-thread CPU a request). giveBack frees only a buffer the view spans
    // alone.
    res.end(body, () => giveBack(body));
  } else res.end(body);
}

const SMALL_BINARY_BYTES = 64 * 1024;
/** While draining, how long a connection that has sent nothing yet may take to send its first request. */
const FRESH_CONNECTION_WAIT_MS = 1000;

interface ListenerState {
  inFlight: number;
  draining: boolean;
  onIdle?: () => void;
  budget?: InflightBudget;
}

function listener(handler: V2Handler, maxBodyBytes: number, logger: Logger, retryAfter: number, state: ListenerState) {
  const debug = logger.isLevelEnabled?.('debug') ?? true;
  return async (req: IncomingMessage, res: ServerResponse) => {
    state.inFlight++;
    const started = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const given = req.headers[REQUEST_ID_HEADER];
    const requestId = typeof given === 'string' && CLIENT_ID.test(given) ? given : newRequestId();
    req.headers[REQUEST_ID_HEADER] = requestId;
    let response: V2Response;
    let hold: BudgetHold | undefined;
    /** Set when the response closed (sent, or its connection gone): a hold taken after that must be let go here. */
    let closed = false;
    try {
      const turn = takeTurn(req, res);
      if (turn) await turn;
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      if (state.budget && hasBody) {
        const declared = Number(req.headers['content-length']);
        const h = holdForRequest(state.budget, req.socket, declared, maxBodyBytes);
        if (h) {
          res.once('close', () => {
            closed = true;
            hold?.release();
          });
          hold = h instanceof Promise ? await h : h;
          if (closed || req.socket.destroyed) {
            // The client went away while it waited: nobody to read for. (Its 'close' came before this hold existed,
            // so nothing else would release it: every later answer would then wait on a spent budget.)
            hold.release();
            throw new ClientAborted();
          }
        }
      }
      const body = hasBody ? await readRequestBody(req, maxBodyBytes) : undefined;
      if (hold && body && !(Number(req.headers['content-length']) >= 0)) hold.grow(body.length);
      // `release`: the handler may free the body, and arrays decoded from it, the moment it is done with them.
      const request: V2Request = { method: req.method ?? 'GET', path, headers: req.headers as Record<string, string | undefined>, body, release: giveBack, runsAfter: true };
      const answer = handler(request);
      response = answer instanceof Promise ? await answer : answer;
    } catch (e) {
      if (e instanceof ClientAborted || req.socket.destroyed) {
        hold?.release();
        logger.info({ requestId, method: req.method, path }, 'client aborted the request');
        state.inFlight--;
        if (state.inFlight === 0) state.onIdle?.();
        return;
      }
      response = errorResponse(e);
      if ((e as InferenceError).code === 'PAYLOAD_TOO_LARGE') res.setHeader('connection', 'close');
      else if (!(e instanceof InferenceError)) logger.error({ requestId, method: req.method, path, error: (e as Error).message }, 'request failed unexpectedly');
    }
    const extra = [REQUEST_ID_HEADER, requestId];
    if (response.status === 503 && !response.headers['retry-after']) extra.push('retry-after', String(retryAfter));
    // While draining, each connection closes after its response so clients reconnect to another replica.
    if (state.draining) extra.push('connection', 'close');
    if (state.budget && !res.headersSent) hold = holdAnswer(state.budget, req, res, response.body, hold);
    if (!res.headersSent) send(res, response, req.method === 'HEAD', extra);
    const ms = performance.now() - started;
    if (response.status >= 500) {
      logger.warn({ requestId, method: req.method, path, status: response.status, ms: Math.round(ms * 1000) / 1000, error: errorText(response) }, 'request answered with a server error');
    } else if (debug) {
      logger.debug({ requestId, method: req.method, path, status: response.status, ms: Math.round(ms * 1000) / 1000 }, 'request');
    }
    if (response.after) runAfter(response.after, logger, requestId);
    state.inFlight--;
    if (state.inFlight === 0) state.onIdle?.();
  };
}

/** A response's work left until it was sent (V2Response.after): a failure there is logged, the answer has gone. */
function runAfter(after: () => void, logger: Logger, requestId: string): void {
  try {
    after();
  } catch (e) {
    logger.error({ requestId, error: (e as Error).message }, 'work after the response failed');
  }
}

/** Counts an answer over UNCOUNTED_BYTES against the budget until it is flushed (or its connection is gone). */
function holdAnswer(budget: InflightBudget, req: IncomingMessage, res: ServerResponse, body: V2Response['body'], hold: BudgetHold | undefined): BudgetHold | undefined {
  // A connection already gone sends nothing, and its response's 'close' has passed: hold nothing for it.
  if (req.socket.destroyed) {
    hold?.release();
    return undefined;
  }
  // A string's length in characters is at most its length in bytes: only answers that may be big are measured.
  const approx = typeof body === 'string' ? body.length * 3 : body.byteLength;
  if (approx <= UNCOUNTED_BYTES) return hold;
  const bytes = typeof body === 'string' ? Buffer.byteLength(body) : approx;
  if (!hold) {
    const h = budget.holdNow(req.socket);
    res.once('close', () => h.release());
    hold = h;
  }
  hold.grow(bytes, true);
  return hold;
}

function errorText(r: V2Response): string | undefined {
  if (typeof r.body !== 'string') return undefined;
  try {
    return (JSON.parse(r.body) as { error?: string }).error;
  } catch {
    return undefined;
  }
}

/** The Node request listener for a V2Handler (exported so other servers can mount it). */
export function nodeListener(handler: V2Handler, maxBodyBytes = DEFAULT_MAX_BODY_BYTES, logger: Logger = silentLogger) {
  return listener(handler, maxBodyBytes, logger, 1, { inFlight: 0, draining: false });
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const budget = new InflightBudget({ maxBytes: options.maxInflightBytes ?? defaultInflightBytes(maxBodyBytes), stallMs: options.stallMs });
  const state: ListenerState = { inFlight: 0, draining: false, budget };
  const server = createServer(listener(options.handler, maxBodyBytes, options.logger ?? silentLogger, options.retryAfterSeconds ?? 1, state));
  server.keepAliveTimeout = 65_000; // longer than common load balancers' idle timeouts
  answerClientErrors(server, options.logger ?? silentLogger);
  const connections = trackConnections(server);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<boolean> | undefined;
  return {
    server,
    port,
    url: `http://${shownHost}:${port}`,
    close(closeOptions: CloseOptions = {}) {
      closing ??= new Promise<boolean>((resolve) => {
        state.draining = true;
        const timeoutMs = closeOptions.timeoutMs ?? 30_000;
        const graceMs = Math.min(closeOptions.graceMs ?? 0, timeoutMs);
        let done = false;
        let listening = true;
        const finish = (clean: boolean) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          clearTimeout(grace);
          resolve(clean);
        };
        const timer = setTimeout(() => {
          if (listening) NetServer.prototype.close.call(server);
          server.closeAllConnections();
          finish(false);
        }, timeoutMs);
        const stopAccepting = () => {
          listening = false;
          // net.Server's close, not http.Server's (which also closes idle connections). Its callback runs once
          // every connection has ended.
          NetServer.prototype.close.call(server, () => finish(true));
          // Not server.closeIdleConnections(): that also resets connections accepted a moment ago whose first
          // request is on its way.
          connections.closeIdle(FRESH_CONNECTION_WAIT_MS);
          state.onIdle = () => connections.closeIdle(FRESH_CONNECTION_WAIT_MS);
        };
        // During the grace period the listener stays open: connections the kernel has already accepted for us, and
        // requests already sent on them, would otherwise be reset. Every response now says connection: close.
        const grace = setTimeout(stopAccepting, graceMs);
      });
      return closing;
    },
  };
}
