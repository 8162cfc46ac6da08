// The bundled example models and test fixtures, checked with bare onnxruntime-node (no dais code), so a
// failure here means the committed artefacts are wrong, not the server.
// For each examples/<model>: every request gives the training framework's own predictions (expected.json),
// held-out accuracy is at least what the README claims (minus one point), the batch dimension is dynamic.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';

const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures');
const MAX_MODEL_BYTES = 3 * 1024 * 1024;

interface RequestTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}
interface ExpectedTensor {
  datatype: string;
  shape: number[];
  data: number[];
}
interface Heldout {
  input: string;
  rowShape: number[];
  datatype: string;
  x: number[][];
  y: number[];
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function toTensor(t: RequestTensor): ort.Tensor {
  const d = t.data;
  switch (t.datatype) {
    case 'FP32':
      return new ort.Tensor('float32', Float32Array.from(d as number[]), t.shape);
    case 'FP64':
      return new ort.Tensor('float64', Float64Array.from(d as number[]), t.shape);
    case 'INT32':
      return new ort.Tensor('int32', Int32Array.from(d as number[]), t.shape);
    case 'INT64':
      return new ort.Tensor('int64', BigInt64Array.from((d as number[]).map((v) => BigInt(v))), t.shape);
    default:
      throw new Error(`examples use FP32/FP64/INT32/INT64 inputs; ${t.name} has ${t.datatype}`);
  }
}

const ORT_TYPE: Record<string, string> = { FP32: 'float32', FP64: 'float64', INT32: 'int32', INT64: 'int64' };

function assertClose(actual: ort.Tensor, want: ExpectedTensor, what: string): void {
  assert.equal(actual.type, ORT_TYPE[want.datatype], `${what}: datatype`);
  assert.deepEqual([...actual.dims], want.shape, `${what}: shape`);
  const got = Array.from(actual.data as ArrayLike<number | bigint>, Number);
  assert.equal(got.length, want.data.length, `${what}: element count`);
  if (want.datatype.startsWith('INT')) {
    assert.deepEqual(got, want.data, `${what}: labels`);
    return;
  }
  for (let i = 0; i < got.length; i++) {
    const tol = Math.max(1e-5, 1e-4 * Math.abs(want.data[i]));
    assert.ok(Math.abs(got[i] - want.data[i]) <= tol, `${what}[${i}]: onnxruntime ${got[i]} vs framework ${want.data[i]}`);
  }
}

function argmaxRows(t: ort.Tensor): number[] {
  const [n, c] = t.dims as [number, number];
  const d = t.data as Float32Array;
  const out: number[] = [];
  for (let r = 0; r < n; r++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (d[r * c + j] > d[r * c + best]) best = j;
    out.push(best);
  }
  return out;
}

/** "Held-out accuracy: 97.3%" in the README is the claim the model is held to. */
function claimedAccuracy(readme: string): number {
  const m = /held-out accuracy[^0-9]*([0-9]+(?:\.[0-9]+)?)\s*%/i.exec(readme);
  assert.ok(m, 'README.md states "Held-out accuracy: NN.N%"');
  return Number(m[1]);
}

// The bundled models in tensor form (requests/, heldout.json). text-classifier takes text through its declared steps,
// which bare onnxruntime cannot run: test/text-classifier.test.ts holds it to torch's outputs.
const models = existsSync(EXAMPLES_DIR)
  ? readdirSync(EXAMPLES_DIR).filter((m) => existsSync(join(EXAMPLES_DIR, m, '1', 'model.onnx')) && existsSync(join(EXAMPLES_DIR, m, 'requests'))).sort()
  : [];

describe('examples/ model repository', () => {
  it('holds the four bundled models', () => {
    for (const m of ['digits', 'keyword', 'maintenance', 'mlp']) assert.ok(models.includes(m), `examples/${m}/1/model.onnx`);
  });

  for (const model of models) {
    describe(model, () => {
      const dir = join(EXAMPLES_DIR, model);
      const file = join(dir, '1', 'model.onnx');
      let session: ort.InferenceSession;
      before(async () => {
        session = await ort.InferenceSession.create(file);
      });
      after(async () => {
        await session?.release();
      });

      it('is small and has a dynamic batch dimension on every input and output', () => {
        assert.ok(statSync(file).size < MAX_MODEL_BYTES, `${file} is ${statSync(file).size} bytes`);
        for (const meta of [...session.inputMetadata, ...session.outputMetadata]) {
          assert.ok(meta.isTensor, `${meta.name} is a tensor`);
          if (meta.isTensor) assert.equal(typeof meta.shape[0], 'string', `${meta.name}: first dim is symbolic`);
        }
        for (const f of ['make_model.py', 'README.md', 'expected.json', 'heldout.json']) assert.ok(existsSync(join(dir, f)), f);
      });

      it('answers every request with the training framework\'s predictions', async () => {
        const expected = readJson<Record<string, { outputs: Record<string, ExpectedTensor> }>>(join(dir, 'expected.json'));
        const names = readdirSync(join(dir, 'requests')).filter((f) => f.endsWith('.json')).sort();
        const batchSizes = new Set<number>();
        assert.ok(names.length >= 2, 'a single-row and a batch request');
        for (const name of names) {
          const req = readJson<{ inputs: RequestTensor[] }>(join(dir, 'requests', name));
          const feeds: Record<string, ort.Tensor> = {};
          for (const inp of req.inputs) feeds[inp.name] = toTensor(inp);
          batchSizes.add(req.inputs[0].shape[0]);
          const want = expected[name];
          assert.ok(want, `expected.json has an entry for ${name}`);
          const got = await session.run(feeds);
          for (const [out, tensor] of Object.entries(want.outputs)) {
            assert.ok(got[out], `${name}: output ${out}`);
            assertClose(got[out], tensor, `${model}/${name}/${out}`);
          }
          // A classifier's label must be the argmax of its own probabilities.
          if (got.label && got.probabilities) {
            assert.deepEqual(Array.from(got.label.data as BigInt64Array, Number), argmaxRows(got.probabilities), `${name}: label == argmax`);
          }
        }
        assert.ok(batchSizes.has(1), 'one single-row request');
        assert.ok([...batchSizes].some((n) => n >= 4), 'one batch of 4+ rows');
      });

      it('reaches the held-out accuracy its README states', async () => {
        const claim = claimedAccuracy(readFileSync(join(dir, 'README.md'), 'utf8'));
        const h = readJson<Heldout>(join(dir, 'heldout.json'));
        assert.equal(h.x.length, h.y.length);
        const rowSize = h.rowShape.reduce((a, b) => a * b, 1);
        let correct = 0;
        const chunk = 64;
        for (let start = 0; start < h.x.length; start += chunk) {
          const rows = h.x.slice(start, start + chunk);
          const flat = new Float32Array(rows.length * rowSize);
          rows.forEach((r, i) => {
            assert.equal(r.length, rowSize, `heldout row ${start + i} has ${rowSize} values`);
            flat.set(r, i * rowSize);
          });
          const got = await session.run({ [h.input]: new ort.Tensor('float32', flat, [rows.length, ...h.rowShape]) });
          const pred = got.label ? Array.from(got.label.data as BigInt64Array, Number) : argmaxRows(got.probabilities);
          pred.forEach((p, i) => {
            if (p === h.y[start + i]) correct++;
          });
        }
        const accuracy = (100 * correct) / h.y.length;
        assert.ok(accuracy >= claim - 1, `${model}: onnxruntime held-out accuracy ${accuracy.toFixed(2)}% < README's ${claim}% - 1`);
      });
    });
  }
});

describe('test/fixtures', () => {
  it('all-types.onnx echoes every v2 datatype through Identity', async () => {
    const session = await ort.InferenceSession.create(join(FIXTURES_DIR, 'all-types.onnx'));
    const dims = [2, 3];
    const feeds: Record<string, ort.Tensor> = {
      bool_in: new ort.Tensor('bool', Uint8Array.from([1, 0, 1, 1, 0, 0]), dims),
      uint8_in: new ort.Tensor('uint8', Uint8Array.from([0, 1, 2, 253, 254, 255]), dims),
      uint16_in: new ort.Tensor('uint16', Uint16Array.from([0, 1, 2, 65533, 65534, 65535]), dims),
      uint32_in: new ort.Tensor('uint32', Uint32Array.from([0, 1, 2, 4294967293, 4294967294, 4294967295]), dims),
      uint64_in: new ort.Tensor('uint64', BigUint64Array.from([0n, 1n, 2n, 2n ** 64n - 3n, 2n ** 64n - 2n, 2n ** 64n - 1n]), dims),
      int8_in: new ort.Tensor('int8', Int8Array.from([-128, -1, 0, 1, 2, 127]), dims),
      int16_in: new ort.Tensor('int16', Int16Array.from([-32768, -1, 0, 1, 2, 32767]), dims),
      int32_in: new ort.Tensor('int32', Int32Array.from([-(2 ** 31), -1, 0, 1, 2, 2 ** 31 - 1]), dims),
      int64_in: new ort.Tensor('int64', BigInt64Array.from([-(2n ** 63n), -1n, 0n, 1n, 2n, 2n ** 63n - 1n]), dims),
      // FP16 bit patterns: 1.0, -2.0, 0.5, 65504 (max), +inf, 0.
      fp16_in: new ort.Tensor('float16', Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00, 0x0000]), dims),
      fp32_in: new ort.Tensor('float32', Float32Array.from([1.5, -2.25, 0, 3.4e38, -1e-30, 7]), dims),
      fp64_in: new ort.Tensor('float64', Float64Array.from([1.5, -2.25, 0, 1.7e308, -1e-300, Math.PI]), dims),
      bytes_in: new ort.Tensor('string', ['', 'a', 'héllo'], [1, 3]),
    };
    assert.deepEqual([...session.inputNames].sort(), Object.keys(feeds).sort());
    const got = await session.run(feeds);
    for (const [name, t] of Object.entries(feeds)) {
      const out = got[name.replace(/_in$/, '_out')];
      assert.equal(out.type, t.type, `${name}: type`);
      assert.deepEqual([...out.dims], [...t.dims], `${name}: dims`);
      assert.deepEqual(Array.from(out.data as ArrayLike<unknown>), Array.from(t.data as ArrayLike<unknown>), `${name}: data`);
    }
    // Each input has its own symbolic dims, so tensors of different shapes go in one request.
    for (const meta of session.inputMetadata) if (meta.isTensor) assert.ok(meta.shape.every((d) => typeof d === 'string'), meta.name);
    await session.release();
  });

  it('zipmap-classifier.onnx: labels match numpy; output_probability is a non-tensor', async () => {
    const want = readJson<{ input: RequestTensor; outputs: Record<string, ExpectedTensor> }>(
      join(FIXTURES_DIR, 'zipmap-classifier.expected.json'),
    );
    const session = await ort.InferenceSession.create(join(FIXTURES_DIR, 'zipmap-classifier.onnx'));
    const prob = session.outputMetadata.find((m) => m.name === 'output_probability');
    assert.ok(prob && !prob.isTensor, 'output_probability is a sequence of maps');
    const got = await session.run({ [want.input.name]: toTensor(want.input) }, ['output_label']);
    assertClose(got.output_label, want.outputs.output_label, 'output_label');
    const p = want.outputs.output_probability.data;
    for (let r = 0; r < p.length / 3; r++) assert.ok(Math.abs(p[r * 3] + p[r * 3 + 1] + p[r * 3 + 2] - 1) < 1e-6);
    await session.release();
  });

  it('static-shape.onnx takes [2, 3] only', async () => {
    const session = await ort.InferenceSession.create(join(FIXTURES_DIR, 'static-shape.onnx'));
    const got = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]) });
    assert.deepEqual(Array.from(got.y.data as Float32Array), [2, 4, 6, 8, 10, 12]);
    await assert.rejects(session.run({ x: new ort.Tensor('float32', new Float32Array(3), [1, 3]) }));
    await session.release();
  });

  it('not-a-model.onnx is refused by onnxruntime', async () => {
    assert.equal(statSync(join(FIXTURES_DIR, 'not-a-model.onnx')).size, 1024);
    await assert.rejects(ort.InferenceSession.create(join(FIXTURES_DIR, 'not-a-model.onnx')));
  });
});
