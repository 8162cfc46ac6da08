// `dais convert` as users run it: the real CLI in a child process on a Keras file, its ONNX run with onnxruntime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { REPO_ROOT } from './support/env.ts';
import { assertClose } from './fixtures/keras/assert-close.ts';

const LAYERS = join(REPO_ROOT, 'test/fixtures/keras/layers');

function dais(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), ...args], { encoding: 'utf8', cwd: REPO_ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('dais convert model.keras --out model.onnx --json writes a model that equals the reference', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'dais-convert-')), 'cnn.onnx');
  const r = dais('convert', join(LAYERS, 'keras3_cnn.keras'), '--out', out, '--json');
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.format, 'keras-v3');
  assert.equal(summary.modelClass, 'Functional');
  assert.deepEqual(summary.inputs, [{ name: 'image', datatype: 'FP32', shape: [-1, 6, 6, 2] }]);
  assert.deepEqual(summary.outputs, [{ name: 'scores', datatype: 'FP32', shape: [-1, 2] }]);
  assert.equal(summary.bytes, readFileSync(out).length);
  const exp = JSON.parse(readFileSync(join(LAYERS, 'keras3_cnn.expected.json'), 'utf8'));
  const session = await ort.InferenceSession.create(out);
  const res = await session.run({ image: new ort.Tensor('float32', Float32Array.from(exp.inputs[0].data), exp.inputs[0].shape) });
  assertClose(res.scores.data as Float32Array, exp.outputs[0].data);
});

test('dais convert prints a summary without --json', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'dais-convert-')), 'dense.onnx');
  const r = dais('convert', join(LAYERS, 'dense.h5'), '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^wrote .*dense\.onnx \(\d+ bytes\)\nconverted from Keras 2\.13\.1 \(legacy HDF5\): Sequential model 'sequential', 2 layers, ONNX opset 17\ninputs:\n  dense_input  FP32  \[-1, 5, 6\]\noutputs:\n  dense_1  FP32  \[-1, 5, 4\]\noperators: /);
});

test('dais convert refuses with one line and exit code 1', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'dais-convert-')), 'x.onnx');
  const lambda = dais('convert', join(LAYERS, 'refuse_lambda.h5'), '--out', out);
  assert.equal(lambda.code, 1);
  assert.match(lambda.stderr, /^dais convert: layer 'my_lambda' \(Lambda\): Keras layer class 'Lambda' has no ONNX translation/);
  assert.equal(lambda.stderr.trim().split('\n').length, 1);
  assert.equal(existsSync(out), false);
  const noOut = dais('convert', join(LAYERS, 'dense.h5'));
  assert.equal(noOut.code, 1);
  assert.match(noOut.stderr, /--out <model\.onnx> is required/);
  const help = dais('convert', '--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: dais convert <model\.h5 \| model\.keras> --out <model\.onnx>/);
});
