// Helpers for the serving suites: temporary model repositories built from the examples, and small HTTP calls.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { EXAMPLES_DIR } from './env.ts';
import * as grpc from '@grpc/grpc-js';
import { serve, type RunningServer, type ServeOptions } from '../../src/serve/index.ts';
import { loadInferenceService } from '../../src/serve/grpc/server.ts';

export const exampleModel = (name: string, version = '1') => join(EXAMPLES_DIR, name, version, 'model.onnx');

/** A temporary repository; `add` copies an example model in as a version (atomically: folder renamed into place). */
export function tempRepository() {
  const root = mkdtempSync(join(tmpdir(), 'dais-repo-'));
  return {
    root,
    add(model: string, version: string, from = exampleModel(model)) {
      const staging = join(root, model, `.staging-${version}`);
      mkdirSync(staging, { recursive: true });
      copyFileSync(from, join(staging, 'model.onnx'));
      renameSync(staging, join(root, model, version));
    },
    /** Writes bytes as a version's model file (atomically). */
    write(model: string, version: string, bytes: Uint8Array | string) {
      const staging = join(root, model, `.staging-${version}`);
      mkdirSync(staging, { recursive: true });
      writeFileSync(join(staging, 'model.onnx'), bytes);
      renameSync(staging, join(root, model, version));
    },
    config(model: string, config: unknown) {
      mkdirSync(join(root, model), { recursive: true });
      writeFileSync(join(root, model, 'config.json'), JSON.stringify(config));
    },
    remove() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface CallResult {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  text: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<CallResult> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as BodyInit) : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const text = new TextDecoder().decode(bytes);
  return { status: res.status, headers: res.headers, bytes, text, json: () => JSON.parse(text) };
}

export const exampleRequest = (model: string, file = 'single.json') => JSON.parse(readFileSync(join(EXAMPLES_DIR, model, 'requests', file), 'utf8'));

/** Held-out rows of an example as single-row v2 requests. */
export function heldoutRequests(model: string, count: number): { inputs: { name: string; shape: number[]; datatype: string; data: number[] }[] }[] {
  const h = JSON.parse(readFileSync(join(EXAMPLES_DIR, model, 'heldout.json'), 'utf8')) as { input: string; rowShape: number[]; datatype: string; x: number[][] };
  return h.x.slice(0, count).map((row) => ({ inputs: [{ name: h.input, shape: [1, ...h.rowShape], datatype: h.datatype, data: row.flat(Infinity as 1) as number[] }] }));
}

/** A pino destination that keeps every JSON line, for asserting on logs. */
export function logCapture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, stream };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A tiny Relu model whose dimension 0 is fixed ([2, 3] in, [2, 3] out): it cannot be batched. */
export async function fixedShapeModel(): Promise<Uint8Array> {
  const { createModel, writeOnnx } = await import('../../src/formats/onnx/onnx.ts');
  const { node, valueInfo } = await import('../../src/formats/onnx/graph.ts');
  return writeOnnx(
    createModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: { name: 'fixed', node: [node('Relu', ['x'], ['y'])], input: [valueInfo('x', 1, [2, 3])], output: [valueInfo('y', 1, [2, 3])] },
    }),
  );
}

/** `dais serve` on loopback ports with gRPC, and a client of its GRPCInferenceService (built from dais' .proto). */
export async function serveWithGrpc<C>(options: Omit<ServeOptions, 'port' | 'grpcPort'>): Promise<{ server: RunningServer; client: C }> {
  const server = await serve({ ...options, port: 0, grpcPort: 0 });
  const Service = loadInferenceService();
  const client = new Service(`127.0.0.1:${server.grpc!.port}`, grpc.credentials.createInsecure()) as unknown as C;
  return { server, client };
}
