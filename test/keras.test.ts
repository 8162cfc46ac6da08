// The real Keras 2.0.4 MNIST files in ../shared, converted to ONNX and run with onnxruntime-node, against the
// NumPy forward pass in test/fixtures/keras/make_mnist_expected.py (computed from the files' own weights).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { kerasToOnnx } from '../src/formats/keras/index.ts';
import { loadModelFile } from '../src/formats/index.ts';
import { serve } from '../src/serve/index.ts';
import { REPO_ROOT, requireShared } from './support/env.ts';
import { assertClose } from './fixtures/keras/assert-close.ts';

const FIXTURES = join(REPO_ROOT, 'test/fixtures/keras');

interface Expected {
  input: { name: string; shape: number[]; data: number[] };
  output: { name: string; shape: number[]; data: number[]; argmax: number[] };
}

const MODELS = [
  { file: 'tfkeras_softmax.h5', inputShape: [-1, 784], operators: ['Add', 'Identity', 'MatMul', 'Softmax'] },
  { file: 'simple_dense_28x28.h5', inputShape: [-1, 28, 28], operators: ['Add', 'Flatten', 'Identity', 'MatMul', 'Relu', 'Softmax'] },
  { file: 'dense_28x28x1.h5', inputShape: [-1, 28, 28, 1], operators: ['Add', 'Flatten', 'Identity', 'MatMul', 'Relu', 'Softmax'] },
];

for (const m of MODELS) {
  test(`keras-mnist/${m.file} converts to ONNX that equals the NumPy reference`, async (t) => {
    const dir = requireShared(t, 'models/keras-mnist');
    if (!dir) return;
    const expected = JSON.parse(readFileSync(join(FIXTURES, m.file.replace('.h5', '.expected.json')), 'utf8')) as Expected;
    const r = await kerasToOnnx(join(dir, m.file));
    assert.equal(r.format, 'keras-h5');
    assert.equal(r.kerasVersion, '2.0.4');
    assert.equal(r.modelClass, 'Sequential');
    // Keras names a Sequential model's implicit input after its first layer, and outputs after the last layer.
    assert.deepEqual(r.inputs, [{ name: expected.input.name, datatype: 'FP32', shape: m.inputShape }]);
    assert.deepEqual(r.outputs, [{ name: expected.output.name, datatype: 'FP32', shape: [-1, 10] }]);
    assert.deepEqual(r.operators, m.operators);

    const session = await ort.InferenceSession.create(r.onnx);
    assert.deepEqual(session.inputNames, [expected.input.name]);
    assert.deepEqual(session.outputNames, [expected.output.name]);
    const out = await session.run({ [expected.input.name]: new ort.Tensor('float32', Float32Array.from(expected.input.data), expected.input.shape) });
    const y = out[expected.output.name];
    assert.deepEqual(y.dims, expected.output.shape);
    assertClose(y.data as Float32Array, expected.output.data);
    const rows = expected.output.shape[0];
    const argmax = Array.from({ length: rows }, (_, i) => {
      const row = Array.from((y.data as Float32Array).subarray(i * 10, i * 10 + 10));
      return row.indexOf(Math.max(...row));
    });
    assert.deepEqual(argmax, expected.output.argmax);
  });
}

test('loadModelFile converts a Keras .h5 and reports the conversion in its notes', async (t) => {
  const dir = requireShared(t, 'models/keras-mnist');
  if (!dir) return;
  const loaded = await loadModelFile(join(dir, 'dense_28x28x1.h5'));
  assert.equal(loaded.format, 'keras-h5');
  assert.match(loaded.notes[0], /^converted from Keras 2\.0\.4 \(legacy HDF5\): Sequential model/);
  const session = await ort.InferenceSession.create(loaded.onnx);
  assert.deepEqual(session.inputNames, ['dense_1_input']);
  assert.deepEqual(session.outputNames, ['dense_2']);
});

test('dais serve dense_28x28x1.h5 answers v2 infer with the reference outputs', async (t) => {
  const dir = requireShared(t, 'models/keras-mnist');
  if (!dir) return;
  const expected = JSON.parse(readFileSync(join(FIXTURES, 'dense_28x28x1.expected.json'), 'utf8')) as Expected;
  const server = await serve({ model: join(dir, 'dense_28x28x1.h5'), port: 0, host: '127.0.0.1' });
  try {
    const meta = await (await fetch(`${server.url}/v2/models/dense_28x28x1`)).json();
    const brief = (list: { name: string; datatype: string; shape: number[] }[]) => list.map(({ name, datatype, shape }) => ({ name, datatype, shape }));
    assert.deepEqual(brief(meta.inputs), [{ name: 'dense_1_input', datatype: 'FP32', shape: [-1, 28, 28, 1] }]);
    assert.deepEqual(brief(meta.outputs), [{ name: 'dense_2', datatype: 'FP32', shape: [-1, 10] }]);
    const res = await fetch(`${server.url}/v2/models/dense_28x28x1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'dense_1_input', datatype: 'FP32', shape: expected.input.shape, data: expected.input.data }] }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.model_name, 'dense_28x28x1');
    assert.equal(body.outputs.length, 1);
    assert.equal(body.outputs[0].name, 'dense_2');
    assert.deepEqual(body.outputs[0].shape, expected.output.shape);
    assertClose(body.outputs[0].data, expected.output.data);
  } finally {
    await server.close();
  }
});

test('dais inspect model.h5 describes the converted model with the Keras names', async (t) => {
  const dir = requireShared(t, 'models/keras-mnist');
  if (!dir) return;
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'inspect', join(dir, 'simple_dense_28x28.h5'), '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.deepEqual(info.inputs.map((i: { name: string }) => i.name), ['dense_1_input']);
  assert.deepEqual(info.outputs.map((o: { name: string }) => o.name), ['dense_2']);
  assert.equal(info.nodeCountByOp.MatMul, 2);
});
