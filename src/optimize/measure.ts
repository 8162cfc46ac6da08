// Latency and memory of a model, measured in a child process per model so that neither model's allocations
// count against the other's peak. Single-threaded onnxruntime (intraOpNumThreads 1) keeps the numbers comparable.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EvalData, RuntimeName } from './evaluate.ts';

export interface Measurement {
  runtime: RuntimeName;
  /** Session creation. */
  loadMs: number;
  /** One row per request. */
  latencyMs: { median: number; p95: number; runs: number };
  /** All eval rows in one request (median of 5). */
  batch: { rows: number; ms: number };
  /** The child process's peak resident set (runtime + model). */
  peakRssBytes: number;
  /** Resident memory the session added after the runtime was loaded. */
  modelRssBytes: number;
  peakOverBaselineBytes: number;
}

const CHILD = fileURLToPath(new URL('./measure-child.ts', import.meta.url));
/** The loader the CLI runs its TypeScript with (bin/typescript.mjs). */
const TYPESCRIPT_LOADER = fileURLToPath(new URL('../../bin/typescript.mjs', import.meta.url));

export async function measureModels(models: Uint8Array[], data: EvalData, runtime: RuntimeName = 'onnxruntime-node', minMs = 300): Promise<Measurement[]> {
  const dir = await mkdtemp(join(tmpdir(), 'dais-measure-'));
  try {
    const dataPath = join(dir, 'data.json');
    await writeFile(dataPath, JSON.stringify({ ...data, y: undefined }));
    const results: Measurement[] = [];
    for (const [i, model] of models.entries()) {
      const modelPath = join(dir, `model-${i}.onnx`);
      await writeFile(modelPath, model);
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['--import', TYPESCRIPT_LOADER, CHILD, modelPath, dataPath, runtime, String(minMs)], { maxBuffer: 1 << 20, timeout: 120_000 }, (err, out, errOut) => {
          if (err) reject(new Error(`measuring model ${i} failed: ${(errOut || err.message).trim().split('\n').slice(-3).join(' ')}`));
          else resolve(out);
        });
      });
      results.push(JSON.parse(stdout.trim().split('\n').at(-1)!) as Measurement);
    }
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
