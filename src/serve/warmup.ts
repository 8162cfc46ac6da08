// Warm before ready: the requests a model version runs before it is put into service, so the first real request
// does not pay for onnxruntime's lazy work (memory planning, arena growth, kernel selection per shape).
// Declared in the model's config (`warmup`), or made from its metadata: zeros at batch size 1, twice per instance.
// Twice, because onnxruntime's first two runs both pay for fresh activation memory: at batch 1,
// test/fixtures/cold-start.onnx took 137 and 152 ms for runs 1 and 2, then 23-26 ms (onnxruntime-node 1.30, one
// thread; an earlier 64 MiB variant: 570 and 529 ms, then 13-33 ms, with and without the memory pattern), so one
// warmup run left the first real request as slow as a cold one. A batch size not warmed pays again (469 ms at 4).
import { allocate, elementCount, type Tensor } from '../core/index.ts';
import type { ServedModelVersion } from '../runtime/served-model.ts';
import { DEFAULT_WARMUP_RUNS, type WarmupConfig } from '../layout/warmup-config.ts';

function fill(t: Tensor, random: boolean): Tensor {
  if (!random) return t;
  const d = t.data as unknown as { length: number; [i: number]: number | bigint | boolean | string };
  if (t.datatype === 'BOOL') for (let i = 0; i < d.length; i++) d[i] = Math.random() < 0.5;
  else if (t.datatype === 'INT64' || t.datatype === 'UINT64') for (let i = 0; i < d.length; i++) d[i] = BigInt(Math.floor(Math.random() * 4));
  else if (t.datatype !== 'BYTES') for (let i = 0; i < d.length; i++) d[i] = t.datatype.startsWith('FP') ? Math.random() : Math.floor(Math.random() * 4);
  return t;
}

/**
 * Runs the warmup a config declares (or the default) on every instance of a loaded version; returns the runs made.
 * A variable dimension other than 0 has no safe size to guess, so such a model is warmed only as the config says it
 * can be: it gets no made-up warmup and a note in the log (returned as 0 runs).
 */
export async function warmUpModel(model: ServedModelVersion, config: WarmupConfig | undefined): Promise<number> {
  const runs = config?.runs ?? DEFAULT_WARMUP_RUNS;
  const batchSizes = config?.batch_sizes ?? [1];
  const random = config?.data === 'random';
  // The session's own inputs: a model with declared steps shows BYTES to clients but warms up on tensors.
  const inputs = model.sessionMetadata().inputs;
  if (runs === 0 || inputs.some((t) => t.shape.length === 0 || t.shape.slice(1).some((d) => d < 0) || t.datatype === 'BYTES')) return 0;
  const outputs = model.sessionMetadata().outputs.map((o) => o.name);
  let done = 0;
  for (const batch of batchSizes) {
    if (inputs.some((t) => t.shape[0] >= 0 && t.shape[0] !== batch) && batch !== 1) continue; // fixed batch: only 1 (its own size) applies
    for (let r = 0; r < runs; r++) {
      const feeds = inputs.map((t) => {
        const shape = t.shape.map((d, i) => (i === 0 && d < 0 ? batch : d));
        return fill({ name: t.name, datatype: t.datatype, shape, data: allocate(t.datatype, elementCount(shape)) } as Tensor, random);
      });
      await model.runOnEveryInstance(feeds, outputs);
      done++;
    }
  }
  return done;
}
