// onnxruntime-node on a worker thread per session. onnxruntime-node's `run` executes synchronously on the calling
// thread (its JS wrapper only defers it with setImmediate), so a server that ran it on the main thread would stop
// reading sockets while a batch computes. Each session here owns one worker; the main thread only posts tensors.
//
// The worker's code is a small plain-JS string (eval worker) rather than a .ts file: it needs no TypeScript loader
// and survives bundling (esbuild leaves the string alone), and it only talks to onnxruntime-node, whose absolute
// path is handed over so resolution does not depend on the current directory.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import type * as ort from 'onnxruntime-node';
import { InferenceError, ownedArray, type Tensor } from '../core/index.ts';
import type { Backend, ModelSource, Session, SessionOptions } from './backend.ts';
import { ortSessionOptions } from './onnxruntime-node.ts';
import { fromOrtTensor, tensorMetadataOf, toOrtTensor } from './ort-tensors.ts';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session;
parentPort.on('message', async (m) => {
  if (m.op === 'load') {
    try {
      session = await ort.InferenceSession.create(m.model, m.options);
      const meta = (list) => list.map((x) => ({ name: x.name, isTensor: x.isTensor, type: x.type, shape: x.shape ? Array.from(x.shape) : [] }));
      parentPort.postMessage({ op: 'loaded', inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) });
    } catch (e) {
      parentPort.postMessage({ op: 'load-error', message: String(e && e.message || e) });
    }
    return;
  }
  if (m.op === 'run') {
    try {
      const feeds = {};
      for (const f of m.feeds) feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
      const result = await session.run(feeds, m.outputNames);
      const outputs = m.outputNames.map((n) => ({ name: n, type: result[n].type, data: result[n].data, dims: Array.from(result[n].dims) }));
      parentPort.postMessage({ op: 'result', id: m.id, outputs });
    } catch (e) {
      parentPort.postMessage({ op: 'result', id: m.id, error: String(e && e.message || e) });
    }
    return;
  }
  if (m.op === 'dispose') {
    try { if (session) await session.release(); } finally { process.exit(0); }
  }
});
`;

/** A tensor as it crosses the thread boundary: onnxruntime's (type, data, dims), structured-cloned. */
interface PlainOrtTensor {
  name: string;
  type: OrtTensor.Type;
  data: OrtTensor.DataType | readonly string[];
  dims: readonly number[];
}

/** What the main thread posts to the worker (WORKER_SOURCE reads these). */
type ToWorker =
  | { op: 'load'; model: ModelSource; options: ort.InferenceSession.SessionOptions }
  | { op: 'run'; id: number; feeds: PlainOrtTensor[]; outputNames: readonly string[] }
  | { op: 'dispose' };

/** What the worker posts back (WORKER_SOURCE writes these). */
type FromWorker =
  | { op: 'loaded'; inputs: InferenceSession.ValueMetadata[]; outputs: InferenceSession.ValueMetadata[] }
  | { op: 'load-error'; message: string }
  | { op: 'result'; id: number; outputs: PlainOrtTensor[]; error?: undefined }
  | { op: 'result'; id: number; error: string };

function post(worker: Worker, m: ToWorker, transfer: ArrayBuffer[] = []): void {
  worker.postMessage(m, transfer);
}

/** Stands in for ort.Tensor on this side of the thread boundary: toOrtTensor only needs (type, data, dims). */
class PlainTensor {
  constructor(
    readonly type: OrtTensor.Type,
    readonly data: OrtTensor.DataType | readonly string[],
    readonly dims: readonly number[] = [],
  ) {}
}

/** Bytes that own their whole buffer, to transfer: a view of part of a larger (or shared) buffer is copied out. */
function owned(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  return (whole ? bytes : bytes.slice()) as Uint8Array<ArrayBuffer>;
}

let ortPath: string | undefined;
function resolveOrt(): string {
  ortPath ??= createRequire(import.meta.url).resolve('onnxruntime-node');
  return ortPath;
}

class WorkerSession implements Session {
  readonly thread = 'worker' as const;
  inputs: Session['inputs'] = [];
  outputs: Session['outputs'] = [];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(t: Tensor[]): void; reject(e: unknown): void; outputNames: readonly string[] }>();
  private dead: InferenceError | undefined;
  private exited: Promise<void>;

  constructor(private readonly worker: Worker) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromWorker) => {
      if (m.op !== 'result') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) {
        p.reject(new InferenceError('INFERENCE_FAILED', `onnxruntime failed to run the model: ${m.error}`));
        return;
      }
      try {
        p.resolve(m.outputs.map((o) => fromOrtTensor(o.name, o)));
      } catch (e) {
        p.reject(e);
      }
    });
    const fail = (why: string) => {
      this.dead ??= new InferenceError('INFERENCE_FAILED', `the model's worker thread stopped (${why})`);
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    worker.on('error', (e) => fail(e.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
  }

  run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    let plain: PlainOrtTensor[];
    try {
      plain = feeds.map((t) => {
        const o = toOrtTensor(PlainTensor, t);
        // A view into a shared slab (slab.ts) would be cloned with its whole buffer: post just its elements.
        const data = ArrayBuffer.isView(o.data) ? ownedArray(o.data) : o.data;
        return { name: t.name, type: o.type, data, dims: o.dims };
      });
    } catch (e) {
      return Promise.reject(e as Error); // BYTES that are not UTF-8 (toOrtTensor)
    }
    return new Promise<Tensor[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, outputNames });
      post(this.worker, { op: 'run', id, feeds: plain, outputNames });
    });
  }

  async dispose(): Promise<void> {
    if (!this.dead) post(this.worker, { op: 'dispose' });
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

export const onnxruntimeNodeWorker: Backend = {
  name: 'onnxruntime-node (worker threads)',
  async createSession(model: ModelSource, options?: SessionOptions): Promise<Session> {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath: resolveOrt() } });
    const session = new WorkerSession(worker);
    const loaded = await new Promise<Extract<FromWorker, { op: 'loaded' }>>((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.op === 'loaded') {
          cleanup();
          resolve(m);
        } else if (m.op === 'load-error') {
          cleanup();
          reject(new InferenceError('UNSUPPORTED', `onnxruntime could not load the model: ${m.message}`));
        }
      };
      const onError = (e: Error) => {
        cleanup();
        reject(new InferenceError('UNSUPPORTED', `onnxruntime's worker thread failed while loading the model: ${e.message}`));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new InferenceError('UNSUPPORTED', `onnxruntime's worker thread exited (code ${code}) while loading the model`));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
      // A path is read by onnxruntime on the worker; bytes are moved there, not copied, so that no copy of the
      // weights stays on this thread (backend.ts: the caller gives them up).
      const payload = typeof model === 'string' ? model : owned(model);
      post(worker, { op: 'load', model: payload, options: ortSessionOptions(options) }, typeof payload === 'string' ? [] : [payload.buffer]);
    }).catch(async (e: unknown) => {
      // A worker left running after a failed load would keep the process alive.
      await worker.terminate();
      throw e;
    });
    try {
      session.inputs = tensorMetadataOf(loaded.inputs, 'input');
      session.outputs = tensorMetadataOf(loaded.outputs, 'output');
    } catch (e) {
      await session.dispose();
      throw e;
    }
    return session;
  },
};
