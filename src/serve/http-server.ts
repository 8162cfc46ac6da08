// node:http adapter: translates Node's request/response to the core's V2Request/V2Response and back.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorResponse, InferenceError, type V2Handler, type V2Response } from '../core/index.ts';

export interface HttpServerOptions {
  handler: V2Handler;
  host?: string;
  port?: number;
  /** Requests with a larger body get 413 before it is read. */
  maxBodyBytes?: number;
}

export interface RunningHttpServer {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new InferenceError('PAYLOAD_TOO_LARGE', `request body of ${declared} bytes is over the server's limit of ${limit} bytes (--max-body-mb)`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new InferenceError('PAYLOAD_TOO_LARGE', `request body is over the server's limit of ${limit} bytes (--max-body-mb)`));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const b = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      resolve(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    });
    req.on('error', reject);
  });
}

function send(res: ServerResponse, r: V2Response, head: boolean): void {
  const body = typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
  res.writeHead(r.status, { ...r.headers, 'content-length': String(body.byteLength) });
  res.end(head ? undefined : body);
}

/** The Node request listener for a V2Handler (exported so other servers can mount it). */
export function nodeListener(handler: V2Handler, maxBodyBytes = DEFAULT_MAX_BODY_BYTES) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let response: V2Response;
    try {
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      const body = hasBody ? await readBody(req, maxBodyBytes) : undefined;
      response = await handler({ method: req.method ?? 'GET', path, headers: req.headers as Record<string, string | undefined>, body });
    } catch (e) {
      response = errorResponse(e);
      if ((e as InferenceError).code === 'PAYLOAD_TOO_LARGE') res.setHeader('connection', 'close');
    }
    if (!res.headersSent) send(res, response, req.method === 'HEAD');
  };
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const server = createServer(nodeListener(options.handler, options.maxBodyBytes));
  server.keepAliveTimeout = 65_000; // longer than common load balancers' idle timeouts
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
  return {
    server,
    port,
    url: `http://${shownHost}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
