// What onnxruntime-node-worker.ts (a session on a worker thread) and onnxruntime-node-process.ts (a session in a
// child process) share: the host's code, the messages both ways, the tensors as they cross, and the table of runs
// waiting for their results. Only the channel differs (a MessagePort or a child's IPC channel, both with structured
// clone), so the host's code takes a small prologue that defines `ort`, `send`, `receive` and `adjust`.
//
// The host's code is a plain-JS string (an eval'd worker, `node -e` for a child): it needs no TypeScript loader and
// survives bundling (esbuild leaves the string alone), and it only talks to onnxruntime-node, whose absolute path
// the prologue is given so resolution does not depend on the current directory.
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import type * as ort from 'onnxruntime-node';
import { InferenceError, ownedArray, READ_IN_PLACE_BYTES, type Tensor } from '../core/index.ts';
import type { ModelSource } from './backend.ts';
import { fromOrtTensor, toOrtTensor } from './ort-tensors.ts';

/** Tensors from this size are moved to a worker thread, not copied: the size the decoder reads in place from. */
const MOVE_FROM_BYTES = READ_IN_PLACE_BYTES;

/** The host's code after its prologue: loads one session, runs it, releases it (then its thread/process ends). */
export function sessionHostSource(prologue: string): string {
  return `${prologue}
let session;
// Feeds whose buffers were moved here (not copied) go back with the answer, moved again.
const handBack = (m) => m.moved ? m.moved.map((i) => m.feeds[i].data) : undefined;
const moved = (m) => m.moved ? [...new Set(m.moved.map((i) => m.feeds[i].data.buffer))] : undefined;
receive(async (m) => {
  if (m.op === 'load') {
    try {
      // The binding's own session where the prologue gives one (a worker thread): its run computes within the call,
      // where the package's wraps each run in a setImmediate, one more turn of this thread's loop per run.
      session = typeof openDirect === 'function' ? openDirect(m.model, m.options) : await ort.InferenceSession.create(m.model, m.options);
      const meta = (list) => list.map((x) => ({ name: x.name, isTensor: x.isTensor, type: x.type, shape: x.shape ? Array.from(x.shape) : [] }));
      send({ op: 'loaded', inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata), rss: process.memoryUsage.rss() });
    } catch (e) {
      send({ op: 'load-error', message: String(e && e.message || e) });
    }
    return;
  }
  if (m.op === 'run') {
    try {
      const feeds = {};
      for (const f of adjust(m.feeds)) feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
      const started = performance.now();
      let result = session.run(feeds, m.outputNames);
      if (result instanceof Promise) result = await result;
      const us = (performance.now() - started) * 1000;
      const outputs = m.outputNames.map((n) => ({ name: n, type: result[n].type, data: result[n].data, dims: Array.from(result[n].dims) }));
      const reply = { op: 'result', id: m.id, outputs, us, inputs: handBack(m) };
      // Big outputs are moved too, where the channel can move them (a worker thread); a buffer that cannot be
      // moved (or a channel that cannot move) is copied as before.
      const big = outputs.map((o) => o.data).filter((d) => d && d.byteLength >= ${MOVE_FROM_BYTES} && d.buffer instanceof ArrayBuffer && d.buffer.byteLength - d.byteLength <= ${MOVE_FROM_BYTES});
      if (big.length && m.canMove) {
        try {
          send(reply, [...new Set([...(moved(m) ?? []), ...big.map((d) => d.buffer)])]);
          return;
        } catch {}
      }
      send(reply, moved(m));
    } catch (e) {
      send({ op: 'result', id: m.id, error: String(e && e.message || e), inputs: handBack(m) }, moved(m));
    }
    return;
  }
  if (m.op === 'dispose') {
    try { if (session) await session.release(); } finally { process.exit(0); }
  }
});
`;
}

/** A tensor as it crosses to the host: onnxruntime's (type, data, dims), structured-cloned. */
export interface PlainOrtTensor {
  name: string;
  type: OrtTensor.Type;
  data: OrtTensor.DataType | readonly string[];
  dims: readonly number[];
}

/** What the server posts to the host (sessionHostSource reads these). */
export type ToHost =
  | { op: 'load'; model: ModelSource; options: ort.InferenceSession.SessionOptions }
  /**
   * `moved`: the feeds whose buffers were transferred, not copied: the host hands them back in its result.
   * `canMove`: the channel can transfer (a worker thread): the host moves big outputs back rather than copying them.
   */
  | { op: 'run'; id: number; feeds: PlainOrtTensor[]; outputNames: readonly string[]; moved?: number[]; canMove?: boolean }
  | { op: 'dispose' };

/** What the host posts back (sessionHostSource writes these). */
export type FromHost =
  /** `rss`: the host's process's resident memory after the load (the whole server's, for a worker thread). */
  | { op: 'loaded'; inputs: InferenceSession.ValueMetadata[]; outputs: InferenceSession.ValueMetadata[]; rss: number }
  | { op: 'load-error'; message: string }
  /** `us`: the run's time on the host, µs (its session.run, without the messages). */
  | { op: 'result'; id: number; outputs: PlainOrtTensor[]; us: number; error?: undefined; inputs?: PlainOrtTensor['data'][] }
  | { op: 'result'; id: number; error: string; inputs?: PlainOrtTensor['data'][] };

/** Stands in for ort.Tensor on this side: toOrtTensor only needs (type, data, dims). */
class PlainTensor {
  constructor(
    readonly type: OrtTensor.Type,
    readonly data: OrtTensor.DataType | readonly string[],
    readonly dims: readonly number[] = [],
  ) {}
}

/** Feeds as they cross to the host. Throws for BYTES that are not UTF-8 (toOrtTensor). */
export function plainFeeds(feeds: readonly Tensor[]): PlainOrtTensor[] {
  return feeds.map((t) => {
    const o = toOrtTensor(PlainTensor, t);
    // Structured clone copies a view's whole buffer: a view into a shared slab (slab.ts) posts just its elements.
    const data = ArrayBuffer.isView(o.data) && !mostOfItsBuffer(o.data) ? ownedArray(o.data) : o.data;
    return { name: t.name, type: o.type, data, dims: o.dims };
  });
}

/**
 * The feeds worth moving to a worker thread rather than copying: big ones that are most of a plain ArrayBuffer (a
 * tensor read in place from its request body, tensor-read.ts, or one made for the run). Copying 600 KB through
 * structured clone cost the main thread 1.2 ms per MobileNetV2 request (2026-12-06, most of it first-touch page
 * faults on fresh memory), more than the hand-written server's whole request.
 */
function movable(plain: readonly PlainOrtTensor[]): number[] {
  const moved: number[] = [];
  plain.forEach((p, i) => {
    const d = p.data;
    if (ArrayBuffer.isView(d) && d.byteLength >= MOVE_FROM_BYTES && d.buffer instanceof ArrayBuffer && mostOfItsBuffer(d)) moved.push(i);
  });
  return moved;
}

/** Whether a view leaves at most MOVE_FROM_BYTES of its buffer, and less than its own size, unused. */
function mostOfItsBuffer(a: ArrayBufferView): boolean {
  const spare = a.buffer.byteLength - a.byteLength;
  return spare <= MOVE_FROM_BYTES && spare < a.byteLength;
}

/** Bytes that own their whole buffer, to transfer: a view of part of a larger (or shared) buffer is copied out. */
export function owned(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  return (whole ? bytes : bytes.slice()) as Uint8Array<ArrayBuffer>;
}

let ortPath: string | undefined;
/** onnxruntime-node's absolute path, for the host's prologue. */
export function resolveOrt(): string {
  ortPath ??= createRequire(import.meta.url).resolve('onnxruntime-node');
  return ortPath;
}

/** onnxruntime-node's binding module (its own synchronous session), beside its entry point; undefined if absent. */
export function resolveOrtBinding(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('onnxruntime-node/dist/binding.js');
  } catch {
    return undefined;
  }
}

/** The runs posted to a host and not yet answered. */
export class PendingRuns {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(t: Tensor[]): void; reject(e: unknown): void; lent?: (Tensor | undefined)[] }>();

  /** The host's own time for the last run it answered, µs (Session.lastComputeUs). */
  lastComputeUs: number | undefined;

  get size(): number {
    return this.pending.size;
  }

  /**
   * A new run's id, and its result once {@link settle} or {@link failAll} is called for it. `lent`: for each feed
   * moved to the host (in the message's `moved` order), the request's tensor that takes the hand-back in place.
   */
  add(lent?: (Tensor | undefined)[]): { id: number; result: Promise<Tensor[]> } {
    const id = this.nextId++;
    const result = new Promise<Tensor[]>((resolve, reject) => this.pending.set(id, { resolve, reject, lent }));
    return { id, result };
  }

  /** Settles the run a host's message answers (other messages are ignored). */
  settle(m: FromHost): void {
    if (m.op !== 'result') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (p.lent && m.inputs) {
      // The moved buffers, back: the request's tensors read them again (the monitor, the payload log).
      p.lent.forEach((t, j) => {
        if (t) t.data = m.inputs![j] as Tensor['data'];
      });
    }
    if (m.error !== undefined) {
      p.reject(new InferenceError('INFERENCE_FAILED', `onnxruntime failed to run the model: ${m.error}`));
      return;
    }
    this.lastComputeUs = m.us;
    try {
      p.resolve(m.outputs.map((o) => fromOrtTensor(o.name, o)));
    } catch (e) {
      p.reject(e);
    }
  }

  /**
   * Posts a run of `feeds` through `post` and returns its result (a feed that cannot be sent rejects it at once).
   * With `transfer` (a worker thread; a child's IPC channel cannot), big feeds' buffers are moved rather than copied
   * and come back with the answer, put back into the same tensors; until then those tensors' data is detached.
   */
  run(feeds: readonly Tensor[], outputNames: readonly string[], post: (m: ToHost, transfer: ArrayBuffer[]) => void, transfer = false): Promise<Tensor[]> {
    let plain: PlainOrtTensor[];
    try {
      plain = plainFeeds(feeds);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const moved = transfer ? movable(plain) : [];
    if (moved.length === 0) {
      const { id, result } = this.add();
      post(transfer ? { op: 'run', id, feeds: plain, outputNames, canMove: true } : { op: 'run', id, feeds: plain, outputNames }, []);
      return result;
    }
    // Only a feed whose own data crosses is put back (a converted copy, toOrtTensor, is not the request's).
    const { id, result } = this.add(moved.map((i) => (plain[i].data === feeds[i].data ? feeds[i] : undefined)));
    const buffers = [...new Set(moved.map((i) => (plain[i].data as ArrayBufferView).buffer as ArrayBuffer))];
    post({ op: 'run', id, feeds: plain, outputNames, moved, canMove: true }, buffers);
    return result;
  }

  failAll(e: InferenceError): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

/**
 * Waits for a host's answer to its load message (already posted, or posted by `post` once the listeners are on);
 * rejects with UNSUPPORTED when it fails to load or the host ends first. `what` names the host in errors.
 */
export function hostLoaded(host: EventEmitter, what: string, post: () => void): Promise<Extract<FromHost, { op: 'loaded' }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromHost) => {
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
      reject(new InferenceError('UNSUPPORTED', `onnxruntime's ${what} failed while loading the model: ${e.message}`));
    };
    const onExit = (code: number | null, signal?: string | null) => {
      cleanup();
      reject(new InferenceError('UNSUPPORTED', `onnxruntime's ${what} exited (${signal ? `signal ${signal}` : `code ${code}`}) while loading the model`));
    };
    const cleanup = () => {
      host.off('message', onMessage);
      host.off('error', onError);
      host.off('exit', onExit);
    };
    host.on('message', onMessage);
    host.once('error', onError);
    host.once('exit', onExit);
    post();
  });
}
