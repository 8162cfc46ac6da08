// onnxruntime-node as a dais Backend. Runs on onnxruntime's own thread pool, so the event loop stays free.
import * as ort from 'onnxruntime-node';
import { InferenceError, type Tensor } from '../core/index.ts';
import type { Backend, Session, SessionOptions } from './backend.ts';
import { fromOrtTensor, tensorMetadataOf, toOrtTensor } from './ort-tensors.ts';

function ortOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: o.graphOptimizationLevel ?? 'all' };
  if (o.intraOpThreads) opts.intraOpNumThreads = o.intraOpThreads;
  if (o.interOpThreads) opts.interOpNumThreads = o.interOpThreads;
  return opts;
}

export const onnxruntimeNode: Backend = {
  name: 'onnxruntime-node',
  async createSession(model: Uint8Array, options?: SessionOptions): Promise<Session> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(model, ortOptions(options));
    } catch (e) {
      throw new InferenceError('UNSUPPORTED', `onnxruntime could not load the model: ${(e as Error).message}`, { cause: e });
    }
    let inputs, outputs;
    try {
      inputs = tensorMetadataOf(session.inputMetadata, 'input');
      outputs = tensorMetadataOf(session.outputMetadata, 'output');
    } catch (e) {
      await session.release();
      throw e;
    }
    return {
      inputs,
      outputs,
      async run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
        const ortFeeds: Record<string, ort.Tensor> = {};
        for (const t of feeds) ortFeeds[t.name] = toOrtTensor(ort.Tensor, t);
        let result: ort.InferenceSession.ReturnType;
        try {
          result = await session.run(ortFeeds, outputNames as string[]);
        } catch (e) {
          throw new InferenceError('INFERENCE_FAILED', `onnxruntime failed to run the model: ${(e as Error).message}`, { cause: e });
        }
        return outputNames.map((n) => fromOrtTensor(n, result[n] as ort.Tensor));
      },
      async dispose() {
        await session.release();
      },
    };
  },
};
