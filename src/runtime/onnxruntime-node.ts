// onnxruntime-node as a dais Backend, on the calling thread. Its run blocks that thread while the model computes:
// the server only runs models here whose measured compute is shorter than a hand-off to a worker thread
// (run-plan.ts); bigger ones go to onnxruntime-node-worker.ts. Lambda and one-shot tools, which handle one request
// at a time, use this one directly.
import * as ort from 'onnxruntime-node';
import { binding, initOrt, type Binding } from 'onnxruntime-node/dist/binding.js';
import type { InferenceSession } from 'onnxruntime-common';
import type { Backend, ModelSource, Session, SessionOptions } from './backend.ts';
import { sessionOf, type OrtSessionLike } from './ort-tensors.ts';
import { DATATYPE_TO_ORT_TYPE, ONNX_ELEMENT_TYPE_TO_DATATYPE } from '../core/index.ts';

/** dais's SessionOptions as onnxruntime-node's (plain data: it also crosses to worker threads). */
export function ortSessionOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: o.graphOptimizationLevel ?? 'all' };
  if (o.intraOpThreads) opts.intraOpNumThreads = o.intraOpThreads;
  if (o.interOpThreads) opts.interOpNumThreads = o.interOpThreads;
  if (o.memArena !== undefined) opts.enableCpuMemArena = o.memArena;
  if (o.memPattern !== undefined) opts.enableMemPattern = o.memPattern;
  // The Node binding takes session config entries (onnxruntime_session_options_config_keys.h) as nested objects.
  // A pool that spins on once its run has returned takes a core from the thread that answers the request (and, on a
  // worker, from the main thread waiting for the answer). Stopped, measured 2026-12-07 on this project's 2-core VM,
  // binary requests, interleaved 2 s rounds, two intra-op threads, against onnxruntime's default: MobileNetV2 (main
  // thread) 219 against 205 req/s at 1 connection, 224 against 206 at 64, 8.2 against 9.4 ms CPU a request; BERT-mini
  // (worker) 183 against 175 at 1, 216 against 210 at 16, 9.9 against 11.2 ms CPU; ResNet-50 within its rounds'
  // spread (33 against 31 at 1 connection over 5 rounds, 37 and 37 at 16).
  const session: Record<string, unknown> = {};
  if (o.allowSpinning !== undefined) session.intra_op = { allow_spinning: o.allowSpinning ? '1' : '0' };
  if (!o.spinAfterRun) session.force_spinning_stop = '1';
  opts.extra = { session };
  return opts;
}

/** onnxruntime-common's type name of each ONNX element type the v2 protocol names (also sent to worker threads). */
export const ORT_TYPE_OF_ONNX_ELEMENT: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(ONNX_ELEMENT_TYPE_TO_DATATYPE).map(([n, datatype]) => [Number(n), DATATYPE_TO_ORT_TYPE[datatype]]),
);

/**
 * The binding's own metadata (ONNX element type numbers, -1 for a symbolic dimension) as onnxruntime-common's.
 * A type the v2 protocol has no name for keeps a name that says what it was, and is refused by tensorMetadataOf.
 */
function valueMetadataOf(raw: readonly Binding.ValueMetadata[]): InferenceSession.ValueMetadata[] {
  return raw.map((m): InferenceSession.ValueMetadata => {
    if (!m.isTensor) return { name: m.name, isTensor: false };
    const type = (ORT_TYPE_OF_ONNX_ELEMENT[m.type] ?? `ONNX element type ${m.type}`) as ort.Tensor.Type;
    const shape = Array.from(m.shape, (d, i) => (d >= 0 ? d : (m.symbolicDimensions[i] ?? '')));
    return { name: m.name, isTensor: true, type, shape };
  });
}

const NO_RUN_OPTIONS = {};

/**
 * onnxruntime-node's own session object (the binding it ships with typings, "a simple synchronized inference session
 * object wrap"), which runs when called, on the calling thread. The package's InferenceSession wraps each run in a
 * setImmediate, which costs every request one more turn of the event loop and takes runs out of the turn that read
 * their requests: with it, an unbatched model answered one request per turn (an epoll call and a wake of the client
 * each time) where the hand-written server, queuing all its runs in one turn, answered sixteen (Silero VAD, 16
 * connections, strace: 1.05 against 0.06 epoll calls a request, 2026-12-06).
 */
function openDirect(model: ModelSource, options: ort.InferenceSession.SessionOptions): OrtSessionLike {
  initOrt();
  const native = new binding.InferenceSession();
  if (typeof model === 'string') native.loadModel(model, options);
  else native.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, options);
  let released = false;
  return {
    synchronous: true,
    inputMetadata: valueMetadataOf(native.inputMetadata),
    outputMetadata: valueMetadataOf(native.outputMetadata),
    run(feeds, outputNames) {
      if (released) throw new Error('the session was released');
      const fetches: Record<string, null> = {};
      for (const n of outputNames) fetches[n] = null;
      return native.run(feeds, fetches, NO_RUN_OPTIONS);
    },
    async release() {
      if (released) return;
      released = true;
      native.dispose();
    },
  };
}

/** Whether this onnxruntime-node has the synchronous session directSession uses (checked once, not assumed). */
const hasDirectSession = typeof binding?.InferenceSession === 'function' && typeof initOrt === 'function';

/** Through onnxruntime-node's public InferenceSession: each run in a setImmediate of its own. */
export const onnxruntimeNodeDeferred: Backend = {
  name: 'onnxruntime-node',
  async createSession(model, options?: SessionOptions): Promise<Session> {
    const opts = ortSessionOptions(options);
    // create() has one overload per source kind, so the union is split here.
    const open = () => (typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts));
    const session = await sessionOf(ort.Tensor, open, 'onnxruntime');
    return Object.assign(session, { thread: 'main' as const });
  },
};

/** The synchronous session where this onnxruntime-node has one, else the public one. */
export const onnxruntimeNode: Backend = {
  name: 'onnxruntime-node',
  async createSession(model, options?: SessionOptions): Promise<Session> {
    if (!hasDirectSession) return onnxruntimeNodeDeferred.createSession(model, options);
    const session = await sessionOf(ort.Tensor, async () => openDirect(model, ortSessionOptions(options)), 'onnxruntime');
    return Object.assign(session, { thread: 'main' as const, synchronous: true });
  },
};
