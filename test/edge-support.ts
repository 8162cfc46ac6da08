// Shared by the edge suites: the example models with their requests and the training framework's predictions,
// and the comparison every suite makes (relative error <= 1e-4, labels exact).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLES_DIR } from './support/env.ts';

/** Headless Chromium as this project runs it (no GPU, no network chatter, no sandbox inside containers). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface ExpectedTensor {
  datatype: string;
  shape: number[];
  data: number[];
}

export interface ExampleRequest {
  file: string;
  body: { id?: string; inputs: { name: string; shape: number[]; datatype: string; data: unknown[] }[] };
  expected: Record<string, ExpectedTensor>;
}

export interface Example {
  name: string;
  dir: string;
  model: string;
  requests: ExampleRequest[];
}

/** Every examples/<m> with a model, requests and expected.json (new examples join the suites by themselves). */
export function examples(): Example[] {
  if (!existsSync(EXAMPLES_DIR)) return [];
  return readdirSync(EXAMPLES_DIR)
    .sort()
    .flatMap((name) => {
      const dir = join(EXAMPLES_DIR, name);
      const model = join(dir, '1', 'model.onnx');
      const expectedFile = join(dir, 'expected.json');
      if (!existsSync(model) || !existsSync(expectedFile) || !existsSync(join(dir, 'requests'))) return [];
      const expected = JSON.parse(readFileSync(expectedFile, 'utf8')) as Record<string, { outputs: Record<string, ExpectedTensor> }>;
      const requests = readdirSync(join(dir, 'requests'))
        .filter((f) => f.endsWith('.json') && expected[f])
        .sort()
        .map((file) => ({ file, body: JSON.parse(readFileSync(join(dir, 'requests', file), 'utf8')), expected: expected[file].outputs }));
      return requests.length ? [{ name, dir, model, requests }] : [];
    });
}

/** A v2 JSON output as the REST API (and the browser SDK) return it. */
export interface JsonOutput {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

export function flat(data: unknown[]): number[] {
  return (data as unknown[]).flat(Infinity as 1).map((v) => Number(v));
}

/** Outputs equal the framework's predictions: same datatype and shape, integers exact, floats within rel 1e-4. */
export function assertMatchesExpected(outputs: JsonOutput[], expected: Record<string, ExpectedTensor>, what: string): void {
  for (const [name, want] of Object.entries(expected)) {
    const got = outputs.find((o) => o.name === name);
    assert.ok(got, `${what}: output '${name}' is in the response`);
    assert.equal(got.datatype, want.datatype, `${what}/${name}: datatype`);
    assert.deepEqual(got.shape, want.shape, `${what}/${name}: shape`);
    const values = flat(got.data);
    assert.equal(values.length, want.data.length, `${what}/${name}: element count`);
    if (!want.datatype.startsWith('FP')) {
      assert.deepEqual(values, want.data, `${what}/${name}: values`);
      continue;
    }
    for (let i = 0; i < values.length; i++) {
      const tol = Math.max(1e-5, 1e-4 * Math.abs(want.data[i]));
      assert.ok(Math.abs(values[i] - want.data[i]) <= tol, `${what}/${name}[${i}]: got ${values[i]}, framework ${want.data[i]}`);
    }
  }
}
