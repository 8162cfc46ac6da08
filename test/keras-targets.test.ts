// The shared Keras 2.0.4 file through the deployment targets: `dais build --target lambda` and `--target edge`
// take the .h5 directly, and the Lambda function (run by `dais invoke`) answers with the NumPy reference outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { REPO_ROOT, requireShared } from './support/env.ts';
import { assertClose } from './fixtures/keras/assert-close.ts';

const expected = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/keras/dense_28x28x1.expected.json'), 'utf8')) as {
  input: { name: string; shape: number[]; data: number[] };
  output: { name: string; shape: number[]; data: number[] };
};

function dais(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), ...args], { encoding: 'utf8', cwd: REPO_ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('dais build --target lambda from dense_28x28x1.h5: the function answers with the reference outputs', async (t) => {
  const dir = requireShared(t, 'models/keras-mnist');
  if (!dir) return;
  const tmp = mkdtempSync(join(tmpdir(), 'dais-keras-lambda-'));
  const built = dais('build', join(dir, 'dense_28x28x1.h5'), '--target', 'lambda', '--out', join(tmp, 'fn'));
  assert.equal(built.code, 0, built.stderr);
  assert.match(built.stdout, /converted from Keras 2\.0\.4/);
  const event = join(tmp, 'request.json');
  writeFileSync(event, JSON.stringify({ inputs: [{ name: expected.input.name, shape: expected.input.shape, datatype: 'FP32', data: expected.input.data }] }));
  const run = dais('invoke', join(tmp, 'fn'), '--event', event, '--json');
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout).reports[0];
  assert.equal(report.status, 'success');
  const out = report.result.outputs[0];
  assert.equal(out.name, expected.output.name);
  assert.deepEqual(out.shape, expected.output.shape);
  assertClose(out.data, expected.output.data);
});

test('dais build --target edge from dense_28x28x1.h5 ships the converted ONNX model', async (t) => {
  const dir = requireShared(t, 'models/keras-mnist');
  if (!dir) return;
  const out = join(mkdtempSync(join(tmpdir(), 'dais-keras-edge-')), 'site');
  const built = dais('build', join(dir, 'dense_28x28x1.h5'), '--target', 'edge', '--out', out);
  assert.equal(built.code, 0, built.stderr);
  assert.ok(existsSync(join(out, 'model.onnx')));
  const session = await ort.InferenceSession.create(join(out, 'model.onnx'));
  const res = await session.run({ [expected.input.name]: new ort.Tensor('float32', Float32Array.from(expected.input.data), expected.input.shape) });
  assertClose(res[expected.output.name].data as Float32Array, expected.output.data);
});
