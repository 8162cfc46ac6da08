// The smallest static server a browser bundle needs: the right MIME types (application/wasm lets browsers compile
// while downloading; .mjs must be JavaScript for module imports) and, only when asked, the COOP/COEP headers that
// make a page cross-origin isolated so WebAssembly threads get SharedArrayBuffer. Used by the tests and the bench,
// and a reference for configuring a real server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

export const MIME_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.md': 'text/markdown; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The two headers that make a page cross-origin isolated (needed only for WebAssembly threads). */
export const CROSS_ORIGIN_ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

export interface StaticServer {
  url: string;
  /** Paths requested so far, in order (the tests sum what a page really fetched). */
  requested: string[];
  close(): Promise<void>;
}

export async function serveStatic(root: string, options: { crossOriginIsolated?: boolean; host?: string; port?: number } = {}): Promise<StaticServer> {
  const requested: string[] = [];
  const base = normalize(root + sep);
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    requested.push(path);
    const file = normalize(join(base, path.endsWith('/') ? `${path}index.html` : path));
    const headers: Record<string, string> = options.crossOriginIsolated ? { ...CROSS_ORIGIN_ISOLATION_HEADERS } : {};
    if (!file.startsWith(base) || !(await stat(file).catch(() => undefined))?.isFile()) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const body = await readFile(file);
    res.writeHead(200, { ...headers, 'content-type': MIME_TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}/`,
    requested,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
