import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLES_DIR } from '../../test/support/env.ts';
import { describeModel } from '../formats/onnx/inspect.ts';
import { createModel, onnx, readOnnx, writeOnnx } from '../formats/onnx/onnx.ts';
import { floatToHalf, halfToFloat, node, tensor, valueInfo } from '../formats/onnx/graph.ts';
import { quantizeSymmetric } from './graph-edit.ts';
import { runOnData, syntheticData } from './evaluate.ts';
import { optimizeModel, OptimizeError, parseEvalData, type EvalData } from './index.ts';

const DT = onnx.TensorProto.DataType;
const modelOf = (m: string) => new Uint8Array(readFileSync(join(EXAMPLES_DIR, m, '1', 'model.onnx')));
const heldout = (m: string): EvalData => parseEvalData(JSON.parse(readFileSync(join(EXAMPLES_DIR, m, 'heldout.json'), 'utf8')), `${m}/heldout.json`);
const inits = (bytes: Uint8Array) => readOnnx(bytes).graph!.initializer!;

test('symmetric per-channel int8: one scale per output channel, zero point 0, values within ±127', () => {
  const w = Float32Array.from([0.5, -1, 0.25, 2, -4, 1]); // [2 channels, 3]
  const q = quantizeSymmetric(w, [2, 3], 0);
  assert.deepEqual([...q.scales], [Math.fround(1 / 127), Math.fround(4 / 127)]);
  assert.deepEqual([...q.values], [64, -127, 32, 64, -127, 32]);
  const perColumn = quantizeSymmetric(Float32Array.from([1, -2, 3, 4]), [2, 2], 1);
  assert.deepEqual([...perColumn.scales], [Math.fround(3 / 127), Math.fround(4 / 127)]);
});

test('float16 conversion rounds to nearest even and handles subnormals, overflow and signs', () => {
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(-2), 0xc000);
  assert.equal(floatToHalf(65504), 0x7bff);
  assert.equal(floatToHalf(1e6), 0x7c00);
  assert.equal(floatToHalf(2 ** -24), 0x0001);
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // halfway: to even
  assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02);
  for (const x of [0.1, -3.14159, 1e-5, 1234.5]) assert.ok(Math.abs(halfToFloat(floatToHalf(x)) - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25);
});

test('int8-weights on the 784-128-10 MLP: ≤ 0.3 of the size, accuracy within a point, runs in node and web', async () => {
  const original = modelOf('mlp');
  const r = await optimizeModel(original, { quantize: 'int8-weights', eval: heldout('mlp') });
  assert.equal(r.accepted, true, r.report.refusal);
  assert.ok(r.report.size.ratio <= 0.3, `ratio ${r.report.size.ratio}`);
  assert.ok(r.report.drop! <= 0.01);
  assert.ok(r.report.comparison.accuracyAfter! > 0.9);
  assert.deepEqual(r.report.runtimes.map((x) => [x.runtime, x.ok]), [['onnxruntime-node', true], ['onnxruntime-web', true]]);
  const before = describeModel(readOnnx(original));
  const after = describeModel(readOnnx(r.model));
  assert.deepEqual(after.inputs, before.inputs);
  assert.deepEqual(after.outputs, before.outputs);
  assert.equal(after.nodeCountByOp.DequantizeLinear, 2);
  assert.equal(after.metadata['dais.optimize'], 'int8-weights');
  for (const [k, v] of Object.entries(before.metadata)) assert.equal(after.metadata[k], v);
  const int8 = inits(r.model).filter((t) => t.dataType === DT.INT8 && (t.dims?.length ?? 0) === 2);
  assert.deepEqual(int8.map((t) => t.dims!.map(Number)).sort(), [[10, 128], [128, 784]]);
});

test('int8-dynamic on the digits CNN: ConvInteger and MatMulInteger, accuracy within a point, runs in node and web', async () => {
  const r = await optimizeModel(modelOf('digits'), { quantize: 'int8-dynamic', eval: heldout('digits') });
  assert.equal(r.accepted, true, r.report.refusal);
  const ops = describeModel(readOnnx(r.model)).nodeCountByOp;
  assert.equal(ops.ConvInteger, 2);
  assert.equal(ops.MatMulInteger, 2);
  assert.equal(ops.Conv ?? 0, 0);
  assert.equal(ops.Gemm ?? 0, 0);
  assert.ok(ops.DynamicQuantizeLinear >= 3);
  assert.ok(r.report.drop! <= 0.01);
  assert.ok(r.report.size.ratio <= 0.3, `ratio ${r.report.size.ratio}`);
  assert.ok(r.report.runtimes.every((x) => x.ok));
});

test('fp16 on the digits CNN: float16 weights, FP32 inputs and outputs for callers, runs in node and web', async () => {
  const r = await optimizeModel(modelOf('digits'), { quantize: 'fp16', eval: heldout('digits') });
  assert.equal(r.accepted, true, r.report.refusal);
  const info = describeModel(readOnnx(r.model));
  assert.deepEqual(info.inputs.map((i) => [i.name, i.datatype, i.shape]), [['image', 'FP32', ['N', 1, 8, 8]]]);
  assert.deepEqual(info.outputs.map((o) => [o.name, o.datatype]), [['probabilities', 'FP32']]);
  assert.ok(inits(r.model).every((t) => t.dataType !== DT.FLOAT));
  assert.ok(r.report.size.ratio < 0.52);
  assert.ok(r.report.comparison.maxAbsError < 5e-3);
  assert.ok(r.report.runtimes.every((x) => x.ok));
});

test('the accuracy gate refuses an over-aggressive setting and says by how much', async () => {
  const r = await optimizeModel(modelOf('digits'), { quantize: 'int8-weights', bits: 2, eval: heldout('digits'), runtimes: ['onnxruntime-node'] });
  assert.equal(r.accepted, false);
  assert.ok(r.report.drop! > 0.01);
  assert.match(r.report.refusal!, /^accuracy dropped by \d+\.\d\d points \(97\.67% → \d+\.\d\d%\), more than --max-drop 1\.00 points allows \(over by \d+\.\d\d points\)$/);
});

test('tree ensembles: quantization is refused with the reason; pruning keeps n trees and calibrated probabilities', async () => {
  const original = modelOf('maintenance');
  await assert.rejects(optimizeModel(original, { quantize: 'int8-weights' }), (e: Error) => e instanceof OptimizeError && /quantization does not apply.*tree ensemble \(TreeEnsembleClassifier: \d+ trees.*--prune-trees/.test(e.message));
  const data = heldout('maintenance');
  const r = await optimizeModel(original, { pruneTrees: 10, eval: data });
  assert.equal(r.report.trees![0].treesAfter, 10);
  assert.ok(r.report.trees![0].nodesAfter < r.report.trees![0].nodesBefore);
  assert.ok(r.report.size.ratio < 0.4);
  assert.ok(r.report.runtimes.every((x) => x.ok));
  // A forest averages its trees: ten trees' probabilities still sum to one per row.
  const probs = (await runOnData(r.model, { ...data, x: data.x.slice(0, 20) })).find((o) => o.name === 'probabilities')!;
  for (let i = 0; i < 20; i++) assert.ok(Math.abs(probs.data[i * 3] + probs.data[i * 3 + 1] + probs.data[i * 3 + 2] - 1) < 1e-4);
});

/** A small recurrent model built here: GRU weights are quantized per gate row, Gemm on top. */
function gruModel(): Uint8Array {
  let s = 7;
  const rand = (n: number) => Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5));
  return writeOnnx(
    createModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 14 }],
      graph: {
        name: 'gru',
        input: [valueInfo('x', DT.FLOAT, ['N', 6, 4])],
        output: [valueInfo('y', DT.FLOAT, ['N', 3])],
        initializer: [tensor('W', [1, 24, 4], rand(96)), tensor('R', [1, 24, 8], rand(192)), tensor('B', [1, 48], rand(48)), tensor('D', [8, 3], rand(24)), tensor('axes', [1], new BigInt64Array([0n]))],
        node: [
          node('Transpose', ['x'], ['xt'], { perm: [1, 0, 2] }),
          node('GRU', ['xt', 'W', 'R', 'B'], ['', 'h'], { hidden_size: 8 }),
          node('Squeeze', ['h', 'axes'], ['h2']),
          node('MatMul', ['h2', 'D'], ['y']),
        ],
      },
    }),
  );
}

test('a GRU model: every mode runs in node and web and stays close to the original', async () => {
  const bytes = gruModel();
  for (const quantize of ['int8-weights', 'int8-dynamic', 'fp16'] as const) {
    const r = await optimizeModel(bytes, { quantize, minElements: 16 });
    assert.equal(r.report.data, 'synthetic');
    assert.ok(r.report.runtimes.every((x) => x.ok), `${quantize}: ${JSON.stringify(r.report.runtimes)}`);
    assert.ok(r.report.comparison.maxAbsError < 0.05, `${quantize}: max error ${r.report.comparison.maxAbsError}`);
    const g = readOnnx(r.model).graph!;
    if (quantize === 'int8-weights') {
      const dq = g.node!.filter((n) => n.opType === 'DequantizeLinear');
      assert.deepEqual(dq.map((n) => [n.output![0], Number(n.attribute![0].i)]).sort(), [['D', 1], ['R', 1], ['W', 1]]);
    }
    if (quantize === 'int8-dynamic') {
      assert.equal(g.node!.filter((n) => n.opType === 'MatMulInteger').length, 1);
      assert.ok(r.report.notes.some((n) => /GRU|W|R/.test(n)) || g.node!.some((n) => n.opType === 'DequantizeLinear'));
    }
  }
});

test('without eval data the model is checked on random rows and the report says accuracy was not measured', async () => {
  const r = await optimizeModel(modelOf('mlp'), { quantize: 'int8-weights', runtimes: ['onnxruntime-node'] });
  assert.equal(r.report.data, 'synthetic');
  assert.equal(r.report.drop, null);
  assert.ok(r.report.notes.some((n) => /accuracy not measured/.test(n)));
  assert.deepEqual(syntheticData('x', [2]).x.length, 32);
});

test('eval data errors name the field', () => {
  assert.throws(() => parseEvalData({ input: 'x', rowShape: [2], x: [[1, 2], [3]] }, 'd.json'), /d\.json: "x"\[1\] must hold 2 numbers/);
  assert.throws(() => parseEvalData({ input: 'x', rowShape: [2], x: [[1, 2]], y: [1, 2] }, 'd.json'), /"y" must have one label per row/);
  assert.throws(() => parseEvalData({ rowShape: [2], x: [[1, 2]] }, 'd.json'), /"input" must be/);
});
