// The limit: the same model and request run in this process with onnxruntime-node directly, no HTTP, no codec.
// Sequential runs give the latency floor; runs kept `inFlight` deep give the throughput ceiling any server of
// this model on this machine can approach.
import * as ort from 'onnxruntime-node';
import { toOrtTensor } from '../runtime/ort-tensors.ts';
import type { InferenceRequest } from '../core/index.ts';
import { summarize, type Stats } from './stats.ts';

export interface LimitResult {
  sequential: { runs: number; latencyMs: Stats; rps: number };
  concurrent: { inFlight: number; runs: number; rps: number };
}

export async function measureLimit(modelPath: string, request: InferenceRequest, durationS: number, inFlight: number): Promise<LimitResult> {
  const session = await ort.InferenceSession.create(modelPath);
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of request.inputs) feeds[t.name] = toOrtTensor(ort.Tensor, t) as ort.Tensor;
  try {
    for (let i = 0; i < 20; i++) await session.run(feeds); // warm-up: first runs allocate
    const times: number[] = [];
    let t0 = performance.now();
    const end = t0 + durationS * 1000;
    while (performance.now() < end) {
      const s = performance.now();
      await session.run(feeds);
      times.push(performance.now() - s);
    }
    const seqElapsed = (performance.now() - t0) / 1000;
    let runs = 0;
    t0 = performance.now();
    const stopAt = t0 + durationS * 1000;
    const lane = async () => {
      while (performance.now() < stopAt) {
        await session.run(feeds);
        runs++;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    const concElapsed = (performance.now() - t0) / 1000;
    return {
      sequential: { runs: times.length, latencyMs: summarize(times), rps: times.length / seqElapsed },
      concurrent: { inFlight, runs, rps: runs / concElapsed },
    };
  } finally {
    await session.release();
  }
}
