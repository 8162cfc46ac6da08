// What a model costs in memory when `dais serve` runs it: the model is loaded the way the server loads it
// (run-plan.ts decides its thread and threads), run once, and the process's resident memory is compared before and
// after. `dais inspect --memory` prints it, so a pod can be sized before it is deployed; the server reports the
// same measurement per loaded version in /v2/models/{m}/config and the dais_model_memory_bytes metric.
import { availableParallelism } from 'node:os';
import { stat } from 'node:fs/promises';
import { modelSourceOf } from '../formats/index.ts';
import { ServedModelVersion } from './served-model.ts';
import { onnxruntimeNode } from './onnxruntime-node.ts';
import { onnxruntimeNodeWorker } from './onnxruntime-node-worker.ts';
import type { RunPlan } from './run-plan.ts';

export interface ServedMemory {
  /** Resident memory the process grew by while the model's session was created and first run, bytes. */
  memoryBytes: number;
  /** The process's resident memory with the model loaded, bytes (what one server process holding it needs). */
  processBytes: number;
  plan: RunPlan;
}

/** Loads `path` as `dais serve` would with no flags (one instance, this machine's cores), measures, releases it. */
export async function servedMemory(path: string): Promise<ServedMemory> {
  const { source } = await modelSourceOf(path);
  const model = await ServedModelVersion.load(source, {
    name: 'model',
    version: '1',
    backend: onnxruntimeNodeWorker,
    mainThreadBackend: onnxruntimeNode,
    cpuBudget: availableParallelism(),
    modelBytes: typeof source === 'string' ? (await stat(path)).size : source.byteLength,
    residentBytes: () => process.memoryUsage.rss(),
  });
  try {
    return { memoryBytes: model.plan.memoryBytes ?? 0, processBytes: process.memoryUsage.rss(), plan: model.plan };
  } finally {
    await model.dispose();
  }
}
