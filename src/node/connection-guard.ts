// What the HTTP adapter does about connections rather than requests: answers broken HTTP framing in the protocol's
// own error format, applies backpressure per connection (a client that pipelines requests and never reads the
// answers holds one request and one unread response in this process, not all of them), and closes connections on a
// drain without resetting requests already on their way.
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody, InferenceError, type ErrorCode } from '../core/index.ts';
import type { Logger } from './logger.ts';
import { newRequestId } from './request-id.ts';

/**
 * Answers what Node's HTTP parser refuses (a negative Content-Length, bad header syntax, headers over the size
 * limit) with a JSON body, a code and an x-request-id, where Node would send a bare 400/431 with no body.
 */
export function answerClientErrors(server: Server, logger: Logger): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // A connection reset or timed out has nobody left to answer.
    if (err.code === 'ECONNRESET' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || !socket.writable) {
      socket.destroy();
      return;
    }
    const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : 'MALFORMED_HTTP';
    const reason = code === 'HEADERS_TOO_LARGE' ? 'the request headers are over the server\'s limit' : `the HTTP request is malformed (${err.code ?? 'parse error'})`;
    const error = new InferenceError(code, reason);
    const requestId = newRequestId();
    const body = JSON.stringify(errorBody(error));
    logger.info({ requestId, code, reason: err.code }, 'malformed HTTP request refused');
    socket.end(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}

interface Turns {
  busy: boolean;
  waiting: (() => void)[];
}

const turnsBySocket = new WeakMap<Socket, Turns>();

function turnsOf(socket: Socket): Turns {
  let t = turnsBySocket.get(socket);
  if (!t) {
    const turns: Turns = { busy: false, waiting: [] };
    // A closed connection reads nothing more: let every waiting request go (each then finds the socket gone).
    socket.once('close', () => {
      for (const w of turns.waiting.splice(0)) w();
    });
    turnsBySocket.set(socket, turns);
    t = turns;
  }
  return t;
}

/**
 * Waits until this request may be read: one request per connection at a time, and not while the previous
 * response is still in the socket's write buffer beyond its high-water mark (the client is not reading). Meanwhile
 * the socket is paused, so the kernel, not this process, holds what the client keeps sending. The turn passes on
 * when the response closes (finished, or the connection gone).
 */
export function takeTurn(req: IncomingMessage, res: ServerResponse): Promise<void> | undefined {
  const socket = req.socket;
  const t = turnsOf(socket);
  // Anonymous arrows calling module functions: under tsx a named closure made per request costs a property definition.
  if (!t.busy || socket.destroyed) {
    t.busy = true;
    res.on('close', () => passTurn(t, socket)); // a response closes once: no once() wrapper needed
    return undefined; // the common case: no promise, no extra tick
  }
  socket.pause();
  return new Promise<void>((resolve) =>
    t.waiting.push(() => {
      t.busy = true;
      res.on('close', () => passTurn(t, socket)); // a response closes once: no once() wrapper needed
      resolve();
    }),
  );
}

/** The response closed: the connection's next request may be read — once a slow reader's buffer has drained. */
function passTurn(t: Turns, socket: Socket): void {
  if (socket.writableNeedDrain && !socket.destroyed) {
    const once = { passed: false };
    socket.once('drain', () => nextTurn(t, socket, once)).once('close', () => nextTurn(t, socket, once));
  } else nextTurn(t, socket, undefined);
}

function nextTurn(t: Turns, socket: Socket, once: { passed: boolean } | undefined): void {
  if (once) {
    if (once.passed) return;
    once.passed = true;
  }
  t.busy = false;
  const w = t.waiting.shift();
  if (w) {
    socket.resume();
    w();
  }
}

interface Tracked {
  active: number;
  served: number;
}

/**
 * Tracks each connection's requests, so that a draining server can tell a connection that is idle between requests
 * (safe to close once its last response said `connection: close`) from one just accepted whose first request is
 * still on its way (closing that resets a request the client has already sent).
 */
export function trackConnections(server: Server): { closeIdle(freshWaitMs: number): void } {
  const sockets = new Map<Socket, Tracked>();
  server.on('connection', (socket: Socket) => {
    sockets.set(socket, { active: 0, served: 0 });
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const t = sockets.get(req.socket);
    if (!t) return;
    t.active++;
    res.once('close', () => {
      t.active--;
      t.served++;
    });
  });
  return {
    closeIdle(freshWaitMs) {
      for (const [socket, t] of sockets) {
        if (t.active > 0) continue; // its response says connection: close, and Node closes it after
        if (t.served > 0) socket.destroySoon();
        else {
          // Accepted, nothing read yet: give its request time to arrive (it is then answered, with
          // connection: close), and close it only if none comes.
          const timer = setTimeout(() => {
            if (t.active === 0) socket.destroySoon();
          }, freshWaitMs);
          timer.unref();
        }
      }
    },
  };
}
