// dais optimize on models with several inputs (BERT: ids + mask; Silero: audio + state + sample rate) and with a fixed
// batch: --eval data for every input, random rows for every input, runs in the model's own batch size (issue 17).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './support/env.ts';
import { realModelFile, referenceValues, requireRealModel } from './support/real-models.ts';
import { optimizeModel, parseEvalData } from '../src/optimize/index.ts';
import { runOnData } from '../src/optimize/evaluate.ts';
import { assertClose } from './support/examples.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dais-optimize-inputs-'));
const rows = (values: ArrayLike<number | bigint>, n: number) => Array.from({ length: n }, (_, i) => Array.from(values, Number).slice((i * values.length) / n, ((i + 1) * values.length) / n));

test('bert-mini (two INT64 inputs): int8-weights checked on random rows for both inputs, and on --eval data naming both', async (t) => {
  const ref = requireRealModel(t, 'bert-mini');
  if (!ref) return;
  const bytes = new Uint8Array(readFileSync(realModelFile('bert-mini')));
  const random = await optimizeModel(bytes, { quantize: 'int8-weights', runtimes: ['onnxruntime-node'] });
  assert.equal(random.report.data, 'synthetic');
  assert.ok(random.report.comparison.rows > 0);
  assert.ok(Number.isFinite(random.report.comparison.maxAbsError));

  const c = ref.cases.find((x) => x.name === 'batch-2-padded')!;
  const [ids, mask] = c.inputs;
  const evalData = parseEvalData({
    inputs: [
      { name: 'input_ids', datatype: 'INT64', rowShape: [ids.shape[1]], x: rows(referenceValues('bert-mini', ids), 2) },
      { name: 'attention_mask', datatype: 'INT64', rowShape: [mask.shape[1]], x: rows(referenceValues('bert-mini', mask), 2) },
    ],
  });
  assert.equal(evalData.extra?.[0].input, 'attention_mask');
  const withEval = await optimizeModel(bytes, { quantize: 'int8-weights', eval: evalData, runtimes: ['onnxruntime-node'] });
  assert.equal(withEval.report.data, 'unlabelled');
  assert.equal(withEval.report.comparison.rows, 2);
});

test('silero-vad-v5 (audio + state + scalar sample rate): --eval with "fixed" inputs runs row by row; random rows refuse the scalar by name', async (t) => {
  const ref = requireRealModel(t, 'silero-vad-v5');
  if (!ref) return;
  const bytes = new Uint8Array(readFileSync(realModelFile('silero-vad-v5')));
  const frames = ref.cases.filter((c) => c.name.startsWith('frame-')).map((c) => Array.from(referenceValues('silero-vad-v5', c.inputs[0]), Number));
  const evalData = parseEvalData({
    inputs: [{ name: 'input', datatype: 'FP32', rowShape: [512], x: frames }],
    fixed: [
      { name: 'state', datatype: 'FP32', shape: [2, 1, 128], data: new Array(256).fill(0) },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
    ],
  });
  // Every input fed, the state and sample rate with each frame: the outputs of both frames come back.
  const outputs = await runOnData(bytes, evalData);
  assert.deepEqual(outputs.find((o) => o.name === 'output')!.dims, [2, 1]);
  // Frame 1 starts from the zero state as the reference did (frame 2's reference carried frame 1's state on).
  const frame1 = ref.cases[0].outputs.find((o) => o.name === 'output')!;
  assertClose([outputs.find((o) => o.name === 'output')!.data[0]], Array.from(referenceValues('silero-vad-v5', frame1), Number), 'frame-1 output');
  await assert.rejects(optimizeModel(bytes, { quantize: 'fp16', runtimes: ['onnxruntime-node'] }), /input 'sr' is a scalar .*pass --eval <data\.json> with it under "fixed"/);
});

test('a model with a fixed batch (static [2, 3]) is checked on random rows in batches of 2, not 32', async () => {
  const r = await optimizeModel(new Uint8Array(readFileSync(join(REPO_ROOT, 'test/fixtures/static-shape.onnx'))), { quantize: 'fp16', runtimes: ['onnxruntime-node'] });
  assert.ok(r.report.comparison.rows % 2 === 0 && r.report.comparison.rows > 0);
  writeFileSync(join(tmp, 'ok'), '');
});

test('eval data: every input must be given, and rows must line up', () => {
  assert.throws(() => parseEvalData({ inputs: [{ name: 'a', rowShape: [1], x: [[1], [2]] }, { name: 'b', rowShape: [1], x: [[1]] }] }), /"inputs"\[1\]\."x" has 1 rows, "inputs"\[0\] has 2/);
  assert.throws(() => parseEvalData({ input: 'a', rowShape: [1], x: [[1]], fixed: [{ name: 's', shape: [2], data: [1] }] }), /"fixed"\[0\]\."data" must hold 2 numbers/);
});

test('--prune-trees auto chooses on half the eval rows, reports on the other half, and gates on changed predictions', async () => {
  const bytes = new Uint8Array(readFileSync(join(REPO_ROOT, 'examples/maintenance/1/model.onnx')));
  const evalData = parseEvalData(JSON.parse(readFileSync(join(REPO_ROOT, 'examples/maintenance/heldout.json'), 'utf8')));
  const r = await optimizeModel(bytes, { pruneTrees: 'auto', eval: evalData, maxDrop: 0.02, runtimes: ['onnxruntime-node'] });
  assert.ok(r.accepted, r.report.refusal);
  assert.equal(r.report.comparison.rows, Math.floor(evalData.x.length / 2));
  const kept = Number(/kept (\d+) of 40 trees/.exec(r.report.notes.join('\n'))?.[1]);
  assert.ok(kept > 1, `kept ${kept}`);
  assert.match(r.report.notes.join('\n'), /on \d+ of the eval rows .*the figures reported are on the other \d+ rows/);
  assert.ok(r.report.comparison.disagreement! <= 0.05, String(r.report.comparison.disagreement));
  // Bounding the outputs keeps more trees.
  const bounded = await optimizeModel(bytes, { pruneTrees: 'auto', eval: evalData, maxDrop: 0.02, maxError: 0.05, runtimes: ['onnxruntime-node'] });
  assert.ok(Number(/kept (\d+) of 40/.exec(bounded.report.notes.join('\n'))![1]) >= kept);
});
