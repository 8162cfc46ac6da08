import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModelFile } from '../index.ts';
import { inspectOnnx } from './inspect.ts';
import { createModel, onnx, readOnnx, writeOnnx } from './onnx.ts';
import { node, valueInfo } from './graph.ts';
import { CLASS_LABELS_METADATA_PREFIX, stripZipMap } from './zipmap.ts';
import { REPO_ROOT } from '../../../test/support/env.ts';

const DT = onnx.TensorProto.DataType;

/** The shape skl2onnx gives classifiers: a label tensor, then probabilities wrapped in a ZipMap. */
function zipMapClassifier(labels: { ints?: number[]; strings?: string[] }): Uint8Array {
  const seqOfMaps: onnx.ITypeProto = {
    sequenceType: { elemType: { mapType: { keyType: labels.strings ? DT.STRING : DT.INT64, valueType: { tensorType: { elemType: DT.FLOAT } } } } },
  };
  return writeOnnx(
    createModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }, { domain: 'ai.onnx.ml', version: 1 }],
      graph: {
        name: 'clf',
        input: [valueInfo('X', DT.FLOAT, ['N', 3])],
        output: [valueInfo('output_label', DT.INT64, ['N']), { name: 'output_probability', type: seqOfMaps }],
        node: [
          node('Softmax', ['X'], ['probabilities'], { axis: 1 }),
          node('ArgMax', ['probabilities'], ['output_label'], { axis: 1, keepdims: 0 }),
          node('ZipMap', ['probabilities'], ['output_probability'], labels.strings ? { classlabels_strings: labels.strings } : { classlabels_int64s: labels.ints! }, {
            domain: 'ai.onnx.ml',
            name: 'ZipMap',
          }),
        ],
      },
    }),
  );
}

function softmaxRows(x: number[], c: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / c; r++) {
    const row = x.slice(r * c, r * c + c);
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / s));
  }
  return out;
}

test('the ZipMap output becomes the probability tensor under the same name, and onnxruntime-node runs it', async () => {
  const bytes = zipMapClassifier({ ints: [10, 20, 30] });
  // onnxruntime's JS API refuses the original output; this is the failure the rewrite exists for.
  const original = await ort.InferenceSession.create(bytes);
  const x = [1, 2, 3, 0, 0, 5];
  await assert.rejects(original.run({ X: new ort.Tensor('float32', Float32Array.from(x), [2, 3]) }), /Non tensor type/);

  const { model, notes } = stripZipMap(readOnnx(bytes));
  assert.equal(notes.length, 1);
  assert.match(notes[0], /output 'output_probability': ZipMap removed; served as an FP32 tensor \[N, 3\].*\[10,20,30\]/);
  assert.deepEqual(JSON.parse(model.metadataProps.find((p) => p.key === `${CLASS_LABELS_METADATA_PREFIX}output_probability`)!.value!), [10, 20, 30]);
  assert.ok(!model.graph!.node!.some((n) => n.opType === 'ZipMap'));

  const session = await ort.InferenceSession.create(writeOnnx(model));
  assert.deepEqual(session.outputNames, ['output_label', 'output_probability']);
  const out = await session.run({ X: new ort.Tensor('float32', Float32Array.from(x), [2, 3]) });
  assert.deepEqual(out.output_probability.dims, [2, 3]);
  assert.equal(out.output_probability.type, 'float32');
  const want = softmaxRows(x, 3);
  [...(out.output_probability.data as Float32Array)].forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `p[${i}] = ${v}, want ${want[i]}`));
  assert.deepEqual([...(out.output_label.data as BigInt64Array)], [2n, 2n]);

  const info = await inspectOnnx(writeOnnx(model));
  assert.deepEqual(info.outputs[1], { name: 'output_probability', datatype: 'FP32', tensor: true, onnxType: 'tensor(float)', shape: ['N', 3] });
});

test('string class labels are decoded into the note and the metadata', () => {
  const { model, notes } = stripZipMap(readOnnx(zipMapClassifier({ strings: ['ok', 'wear', 'failure'] })));
  assert.match(notes[0], /\["ok","wear","failure"\]/);
  assert.equal(model.metadataProps[0].value, '["ok","wear","failure"]');
});

test('inspect describes a ZipMap output as a non-tensor value', async () => {
  const info = await inspectOnnx(zipMapClassifier({ ints: [0, 1, 2] }));
  assert.deepEqual(info.outputs[1], { name: 'output_probability', datatype: 'seq(map(int64,tensor(float)))', tensor: false, onnxType: 'seq(map(int64,tensor(float)))', shape: [] });
});

test('loadModelFile rewrites ZipMap models and passes every other model through byte for byte', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dais-zipmap-'));
  const zipPath = join(dir, 'clf.onnx');
  writeFileSync(zipPath, zipMapClassifier({ ints: [0, 1, 2] }));
  const loaded = await loadModelFile(zipPath);
  assert.equal(loaded.notes.length, 1);
  assert.ok(!readOnnx(loaded.onnx).graph!.node!.some((n) => n.opType === 'ZipMap'));

  const plain = writeOnnx(
    createModel({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], graph: { input: [valueInfo('a', DT.FLOAT, [1])], output: [valueInfo('b', DT.FLOAT, [1])], node: [node('Relu', ['a'], ['b'])] } }),
  );
  const plainPath = join(dir, 'plain.onnx');
  writeFileSync(plainPath, plain);
  const p = await loadModelFile(plainPath);
  assert.deepEqual(p.notes, []);
  assert.ok(Buffer.from(p.onnx).equals(Buffer.from(plain)));
});

test('the scikit-learn-style fixture: served probabilities equal numpy\'s, labels kept in the metadata', async () => {
  const path = join(REPO_ROOT, 'test/fixtures/zipmap-classifier.onnx');
  const expected = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/zipmap-classifier.expected.json'), 'utf8'));
  const loaded = await loadModelFile(path);
  assert.match(loaded.notes[0], /output 'output_probability': ZipMap removed/);
  const info = await inspectOnnx(loaded.onnx);
  assert.deepEqual(info.outputs.find((o) => o.name === 'output_probability')!.shape, [-1, expected.classLabels.length]);
  assert.deepEqual(JSON.parse(info.metadata[`${CLASS_LABELS_METADATA_PREFIX}output_probability`]), expected.classLabels);
  const session = await ort.InferenceSession.create(loaded.onnx);
  const { input } = expected;
  const out = await session.run({ [input.name]: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) });
  const probs = out.output_probability;
  assert.deepEqual(probs.dims, expected.outputs.output_probability.shape);
  (expected.outputs.output_probability.data as number[]).forEach((want, i) => {
    const got = (probs.data as Float32Array)[i];
    assert.ok(Math.abs(got - want) <= 1e-4 * Math.max(Math.abs(want), 1e-3), `p[${i}] = ${got}, numpy ${want}`);
  });
  assert.deepEqual([...(out.output_label.data as BigInt64Array)].map(Number), expected.outputs.output_label.data);
});
