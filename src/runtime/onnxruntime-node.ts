// onnxruntime-node as a dais Backend, on the calling thread. Its run blocks that thread while the model computes:
// the server only runs models here whose measured compute is shorter than a hand-off to a worker thread
// (run-plan.ts); bigger ones go to onnxruntime-node-worker.ts. Lambda and one-shot tools, which handle one request
// at a time, use this one directly.
import * as ort from 'onnxruntime-node';
import type { Backend, Session, SessionOptions } from './backend.ts';
import { sessionOf } from './ort-tensors.ts';

/** dais's SessionOptions as onnxruntime-node's (plain data: it also crosses to worker threads). */
export function ortSessionOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: o.graphOptimizationLevel ?? 'all' };
  if (o.intraOpThreads) opts.intraOpNumThreads = o.intraOpThreads;
  if (o.interOpThreads) opts.interOpNumThreads = o.interOpThreads;
  if (o.memArena !== undefined) opts.enableCpuMemArena = o.memArena;
  if (o.memPattern !== undefined) opts.enableMemPattern = o.memPattern;
  // The Node binding takes session config entries (onnxruntime_session_options_config_keys.h) as nested objects.
  if (o.allowSpinning !== undefined) opts.extra = { session: { intra_op: { allow_spinning: o.allowSpinning ? '1' : '0' } } };
  return opts;
}

export const onnxruntimeNode: Backend = {
  name: 'onnxruntime-node',
  async createSession(model, options?: SessionOptions): Promise<Session> {
    const opts = ortSessionOptions(options);
    // create() has one overload per source kind, so the union is split here.
    const open = () => (typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts));
    const session = await sessionOf(ort.Tensor, open, 'onnxruntime');
    return Object.assign(session, { thread: 'main' as const });
  },
};
