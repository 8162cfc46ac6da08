// Activation forms that no saved file in the fixtures reaches: gelu's tanh approximation, and hard_sigmoid as each
// Keras major version defines it, checked through onnxruntime against the formulas in Keras's documentation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { applyActivation, type ActivationSpec } from './activations.ts';
import { DT, GraphBuilder } from './onnx-builder.ts';
import { assertClose } from '../../../test/fixtures/keras/assert-close.ts';

const X = [-6, -3.5, -3, -2.5, -1, -0.2, 0, 0.3, 1, 2.5, 3, 4.2];

async function run(spec: ActivationSpec, kerasMajor: number): Promise<Float32Array> {
  const b = new GraphBuilder();
  b.reserve('x');
  b.reserve('y');
  const x = b.addInput('x', [null, X.length], DT.FLOAT, ['batch', null]);
  const y = applyActivation({ b, layer: { name: 'act', className: 'Activation' }, kerasMajor }, x.name, spec, 'act');
  b.addOutput('y', { name: y, shape: x.shape, elemType: DT.FLOAT }, ['batch', null]);
  const session = await ort.InferenceSession.create(b.encode('activation', '', {}));
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(X), [1, X.length]) });
  return out.y.data as Float32Array;
}

test('gelu: exact erf form by default, tanh form when approximate', async () => {
  // JavaScript has no Math.erf; its Taylor series converges in float64 for the |x| <= 6 used here.
  const erf = (v: number) => {
    let sum = 0;
    let term = v;
    for (let n = 0; n < 200; n++) {
      sum += term / (2 * n + 1);
      term *= (-v * v) / (n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  };
  const exact = X.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
  const tanhForm = X.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
  assertClose(await run({ name: 'gelu' }, 3), exact, 'gelu');
  assertClose(await run({ name: 'gelu', approximate: true }, 3), tanhForm, 'gelu approximate');
  // The two forms differ by more than the tolerance somewhere, so the test tells them apart.
  assert.ok(exact.some((e, i) => Math.abs(e - tanhForm[i]) > 1e-4));
});

test('hard_sigmoid: Keras 2 clips 0.2x + 0.5, Keras 3 is relu6(x + 3) / 6', async () => {
  assertClose(await run({ name: 'hard_sigmoid' }, 2), X.map((v) => Math.min(1, Math.max(0, 0.2 * v + 0.5))), 'keras 2');
  assertClose(await run({ name: 'hard_sigmoid' }, 3), X.map((v) => Math.min(6, Math.max(0, v + 3)) / 6), 'keras 3');
});

test('hard_silu, mish, relu6 (Keras 3 activations)', async () => {
  const hs = (v: number) => Math.min(6, Math.max(0, v + 3)) / 6;
  assertClose(await run({ name: 'hard_silu' }, 3), X.map((v) => v * hs(v)), 'hard_silu');
  assertClose(await run({ name: 'mish' }, 3), X.map((v) => v * Math.tanh(Math.log1p(Math.exp(v)))), 'mish');
  assertClose(await run({ name: 'relu6' }, 3), X.map((v) => Math.min(6, Math.max(0, v))), 'relu6');
});
