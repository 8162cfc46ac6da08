// The bundled examples as test data: every request with the training framework's own predictions.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLES_DIR } from './env.ts';

export interface ExpectedTensor {
  datatype: string;
  shape: number[];
  data: number[];
}

export interface ExampleCase {
  model: string;
  requestFile: string;
  /** The v2 request body as committed. */
  request: { id?: string; inputs: { name: string; shape: number[]; datatype: string; data: unknown[] }[] };
  expected: Record<string, ExpectedTensor>;
}

/** Example models that have a version folder, requests/ and expected.json in that shape (text-classifier's is per text). */
export function exampleModels(): string[] {
  if (!existsSync(EXAMPLES_DIR)) return [];
  return readdirSync(EXAMPLES_DIR)
    .filter((m) => ['1/model.onnx', 'expected.json', 'requests'].every((f) => existsSync(join(EXAMPLES_DIR, m, f))))
    .sort();
}

/** Every example folder with a model file (what `dais serve examples` and a build of the folder take). */
export function servedExamples(): string[] {
  if (!existsSync(EXAMPLES_DIR)) return [];
  return readdirSync(EXAMPLES_DIR)
    .filter((m) => existsSync(join(EXAMPLES_DIR, m, '1', 'model.onnx')))
    .sort();
}

export function exampleCases(model?: string): ExampleCase[] {
  const out: ExampleCase[] = [];
  for (const m of model ? [model] : exampleModels()) {
    const expected = JSON.parse(readFileSync(join(EXAMPLES_DIR, m, 'expected.json'), 'utf8')) as Record<string, { outputs: Record<string, ExpectedTensor> }>;
    for (const f of readdirSync(join(EXAMPLES_DIR, m, 'requests')).filter((f) => f.endsWith('.json')).sort()) {
      if (!expected[f]) continue;
      out.push({ model: m, requestFile: f, request: JSON.parse(readFileSync(join(EXAMPLES_DIR, m, 'requests', f), 'utf8')), expected: expected[f].outputs });
    }
  }
  return out;
}

/** Relative error ≤ rel, with an absolute floor for values near zero (probabilities of 1e-9). */
export function assertClose(actual: ArrayLike<number | bigint | boolean>, expected: readonly number[], what: string, rel = 1e-4, abs = 1e-6): void {
  assert.equal(actual.length, expected.length, `${what}: element count`);
  for (let i = 0; i < expected.length; i++) {
    const a = Number(actual[i]);
    const e = expected[i];
    const tol = Math.max(abs, rel * Math.abs(e));
    if (!(Math.abs(a - e) <= tol)) assert.fail(`${what}[${i}]: got ${a}, expected ${e} (tolerance ${tol})`);
  }
}

/** Checks a v2 JSON response's outputs (name, datatype, shape, values) against expected.json. */
export function assertResponseMatches(
  outputs: { name: string; datatype: string; shape: number[]; data?: ArrayLike<number | bigint | boolean> }[],
  expected: Record<string, ExpectedTensor>,
  what: string,
): void {
  assert.deepEqual(outputs.map((o) => o.name).sort(), Object.keys(expected).sort(), `${what}: output names`);
  for (const o of outputs) {
    const e = expected[o.name];
    assert.equal(o.datatype, e.datatype, `${what}/${o.name}: datatype`);
    assert.deepEqual(o.shape, e.shape, `${what}/${o.name}: shape`);
    assertClose(o.data!, e.data, `${what}/${o.name}`);
  }
}
