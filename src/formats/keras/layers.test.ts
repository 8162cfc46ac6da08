// One numeric test per supported Keras layer: small models written by test/fixtures/keras/make_layer_fixtures.py
// in Keras's own file layouts, converted here and run with onnxruntime-node, compared with a NumPy forward pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { kerasToOnnx } from './index.ts';
import { REPO_ROOT } from '../../../test/support/env.ts';
import { assertClose } from '../../../test/fixtures/keras/assert-close.ts';

const DIR = join(REPO_ROOT, 'test/fixtures/keras/layers');

interface Expected {
  model: string;
  inputs: { name: string; datatype: 'FP32' | 'INT32'; shape: number[]; data: number[] }[];
  outputs: { name: string; shape: number[]; data: number[] }[];
}

async function check(fixture: string, expectOps: string[] = [], also?: (operators: string[]) => void): Promise<void> {
  const exp = JSON.parse(readFileSync(join(DIR, `${fixture}.expected.json`), 'utf8')) as Expected;
  const r = await kerasToOnnx(join(DIR, exp.model));
  assert.deepEqual(r.inputs.map((i) => i.name), exp.inputs.map((i) => i.name));
  assert.deepEqual(r.outputs.map((o) => o.name), exp.outputs.map((o) => o.name));
  for (const i of r.inputs) assert.equal(i.shape[0], -1, `input ${i.name}: batch axis is dynamic`);
  const session = await ort.InferenceSession.create(r.onnx);
  const feeds: Record<string, ort.Tensor> = {};
  for (const i of exp.inputs) {
    feeds[i.name] = i.datatype === 'INT32' ? new ort.Tensor('int32', Int32Array.from(i.data), i.shape) : new ort.Tensor('float32', Float32Array.from(i.data), i.shape);
  }
  const out = await session.run(feeds);
  for (const o of exp.outputs) {
    assert.deepEqual(out[o.name].dims, o.shape, `${o.name}: shape`);
    assertClose(out[o.name].data as Float32Array, o.data, `${fixture}/${o.name}`);
    // The shape the converter declares agrees with the one onnxruntime produced.
    const declared = r.outputs.find((d) => d.name === o.name)!.shape;
    assert.deepEqual(declared.slice(1), o.shape.slice(1), `${o.name}: declared shape`);
  }
  for (const op of expectOps) assert.ok(r.operators.includes(op), `${fixture} uses ONNX ${op} (got ${r.operators.join(', ')})`);
  also?.(r.operators);
}

test('Dense on a rank-3 input (last axis), with and without bias; Sequential with InputLayer', () => check('dense', ['MatMul']));
test('activations: relu sigmoid tanh softmax linear elu selu gelu swish silu hard_sigmoid softplus softsign exponential', () => check('activations', ['Erf', 'HardSigmoid', 'Selu']));
test('ReLU (max_value, negative_slope), LeakyReLU, ELU, Softmax(axis=1) layers', () => check('activation_layers', ['LeakyRelu', 'Softmax']));
test('Reshape with -1, Permute, Flatten keep Keras row-major order', () => check('reshape', ['Reshape', 'Transpose', 'Flatten']));
test('Dropout, SpatialDropout1D, GaussianNoise are identity at inference', () =>
  check('dropout', [], (ops) => assert.deepEqual(ops, ['Add', 'Identity', 'MatMul', 'Relu'])));
test('Conv1D: same + stride, causal + dilation, valid without bias', () => check('conv1d', ['Conv']));
test('Conv2D: same + stride 2, valid + dilation, then channels-last Flatten and Dense', () => check('conv2d', ['Conv']));
test('Conv2D with groups', () => check('conv2d_groups', ['Conv']));
test('DepthwiseConv2D with depth_multiplier 2, same, stride 2', () => check('depthwise_conv2d', ['Conv']));
test('SeparableConv2D with depth_multiplier 2', () => check('separable_conv2d', ['Conv']));
test('BatchNormalization on channels and (center only) after Dense', () => check('batch_normalization', ['Mul', 'Add']));
test("MaxPooling2D / AveragePooling2D, valid and same ('same' averages exclude padding)", () => check('pooling2d', ['MaxPool', 'AveragePool']));
test('MaxPooling1D, AveragePooling1D same, GlobalAveragePooling1D, GlobalMaxPooling1D', () => check('pooling1d', ['ReduceMean', 'ReduceMax']));
test('GlobalAveragePooling2D (keepdims) and GlobalMaxPooling2D', () => check('global_pooling2d', ['ReduceMean', 'ReduceMax']));
test('ZeroPadding2D with asymmetric padding', () => check('zero_padding2d', ['Pad']));
test('Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, and a Dense shared by two inputs', () =>
  check('merge', ['Add', 'Sub', 'Mul', 'Mean', 'Max', 'Min', 'Concat'], (ops) => {
    // The shared Dense keeps one copy of its weights: one MatMul per call, both reading the same initializer.
    assert.ok(ops.includes('MatMul'));
  }));
test('Embedding after a float input (Keras casts the indices)', () => check('embedding', ['Gather', 'Cast']));
test('LSTM: sequences, hard_sigmoid gates, go_backwards without bias', () => check('lstm', ['LSTM']));
test('GRU: reset_after=True (two biases), reset_after=False, go_backwards', () => check('gru', ['GRU']));
test('SimpleRNN with relu', () => check('simple_rnn', ['RNN']));
test('Keras 3 .keras Functional CNN: Conv2D, BatchNormalization, DepthwiseConv2D, pooling, Keras 3 hard_sigmoid', async () => {
  const exp = JSON.parse(readFileSync(join(DIR, 'keras3_cnn.expected.json'), 'utf8')) as Expected;
  const r = await kerasToOnnx(join(DIR, exp.model));
  assert.equal(r.format, 'keras-v3');
  assert.equal(r.kerasVersion, '3.6.0');
  await check('keras3_cnn', ['Conv', 'HardSigmoid']);
});
test('Keras 3 .keras Sequential over int32 tokens: Embedding, LSTM, GRU, Dense', () => check('keras3_text', ['Gather', 'LSTM', 'GRU']));
test('a Sequential model used as a layer of a Functional model (legacy .h5)', () => check('nested', ['MatMul', 'Softmax']));
test('a Sequential model used as a layer of a Functional model (.keras, weights under layers/sequential/layers/)', () => check('keras3_nested', ['MatMul', 'Softmax']));
test('Bidirectional LSTM (concat, sequences) and Bidirectional GRU (sum)', () => check('bidirectional', ['LSTM', 'GRU']));
test('Keras 3 Bidirectional LSTM (forward_layer/backward_layer weight paths)', () => check('keras3_bidirectional', ['LSTM']));
test('TimeDistributed(Conv2D), TimeDistributed(Flatten), TimeDistributed(Dense)', () => check('time_distributed', ['Conv', 'Reshape']));
test('LayerNormalization with and without scale', () => check('layer_normalization', ['LayerNormalization']));
test('Rescaling, Normalization (adapted mean/variance), PReLU with shared axes', () => check('preprocessing', ['PRelu', 'Div']));
test('UpSampling1D/2D (nearest), Cropping1D/2D, RepeatVector', () => check('resampling', ['Resize', 'Slice', 'Expand']));
test('Conv2DTranspose (same with k > s, valid with k < s) and Conv1DTranspose', () => check('conv_transpose', ['ConvTranspose']));
