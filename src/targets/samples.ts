// The requests a build answers to check and measure a target: the model's own samples (<model>/requests/*.json
// beside its version folders, as the examples keep them), else a request of zeros made from its inputs.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { versionFolderOf } from '../layout/repository.ts';
import type { CheckedInput } from './load-check.ts';

/** The model's own sample requests, largest first; none for a model file outside a <model>/<version>/ folder. */
export async function sampleRequests(modelFile: string): Promise<{ file: string; bytes: number }[]> {
  const versioned = versionFolderOf(modelFile);
  if (!versioned) return [];
  const dir = join(versioned.modelDir, 'requests');
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json'));
  const sized = await Promise.all(files.map(async (f) => ({ file: join(dir, f), bytes: (await stat(join(dir, f))).size })));
  return sized.sort((a, b) => b.bytes - a.bytes);
}

/**
 * A v2 request of zeros for the inputs, every dynamic dimension `dynamic` (1: the smallest request). A dimension
 * onnxruntime reports as a name, as -1, or (onnxruntime-web, unnamed) as 4294967295 is dynamic.
 */
export function zerosRequest(
  inputs: readonly Pick<CheckedInput, 'name' | 'datatype' | 'shape'>[],
  dynamic = 1,
): { inputs: { name: string; datatype: string; shape: number[]; data: (number | boolean | string)[] }[] } {
  return {
    inputs: inputs.map((i) => {
      // Every dynamic dimension gets the same size, so dimensions a model requires equal (a named batch) agree.
      const shape = i.shape.map((d) => (typeof d === 'number' && d >= 0 && d < 2 ** 31 ? d : dynamic));
      const n = shape.reduce((a, b) => a * b, 1);
      const zero = i.datatype === 'BOOL' ? false : i.datatype === 'BYTES' ? '' : 0;
      return { name: i.name, datatype: i.datatype, shape, data: new Array(n).fill(zero) };
    }),
  };
}

/** Sizes tried for dynamic dimensions when a model refuses zeros at 1 (audio models pad or window their input). */
export const ZEROS_LADDER = [1, 16, 256];
