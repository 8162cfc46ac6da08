// onnxruntime-node as a dais Backend, on the calling thread. Its run blocks that thread while the model computes,
// so the server uses onnxruntime-node-worker.ts (one worker thread per instance); Lambda and one-shot tools,
// which handle one request at a time, use this one directly.
import * as ort from 'onnxruntime-node';
import type { Backend, Session, SessionOptions } from './backend.ts';
import { sessionOf } from './ort-tensors.ts';

function ortOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: o.graphOptimizationLevel ?? 'all' };
  if (o.intraOpThreads) opts.intraOpNumThreads = o.intraOpThreads;
  if (o.interOpThreads) opts.interOpNumThreads = o.interOpThreads;
  return opts;
}

export const onnxruntimeNode: Backend = {
  name: 'onnxruntime-node',
  createSession(model: Uint8Array, options?: SessionOptions): Promise<Session> {
    return sessionOf(ort.Tensor, () => ort.InferenceSession.create(model, ortOptions(options)), 'onnxruntime');
  },
};
