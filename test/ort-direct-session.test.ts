// The main thread's onnxruntime-node session runs within the call (onnxruntime-node's own synchronous binding, not
// the package's setImmediate-wrapped InferenceSession): same metadata and predictions as the public API, the run's
// promise settled when run returns, and its failures as protocol errors.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { InferenceError, requestFromJson, toJsonData, type Tensor } from '../src/core/index.ts';
import { ServedModelVersion } from '../src/runtime/served-model.ts';
import { onnxruntimeNode, onnxruntimeNodeDeferred } from '../src/runtime/onnxruntime-node.ts';
import { assertMatchesExpected, examples } from './edge-support.ts';

const loaded: ServedModelVersion[] = [];
after(async () => {
  for (const m of loaded) await m.dispose();
});

const MLP = new URL('../examples/mlp/1/model.onnx', import.meta.url).pathname;
const mlpFeeds = (): Tensor[] => [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Float32Array(784).fill(0.5) }];

describe('onnxruntime-node on the calling thread', () => {
  for (const ex of examples()) {
    it(`${ex.name}: the framework's predictions; metadata equals the public InferenceSession's`, async () => {
      const bytes = new Uint8Array(readFileSync(ex.model));
      const direct = await ServedModelVersion.load(ex.model, { name: ex.name, version: '1', backend: onnxruntimeNode });
      const deferred = await ServedModelVersion.load(bytes, { name: ex.name, version: '1', backend: onnxruntimeNodeDeferred });
      loaded.push(direct, deferred);
      assert.deepEqual(direct.metadata(), deferred.metadata());
      for (const r of ex.requests) {
        const response = await direct.infer(requestFromJson(r.body));
        const outputs = response.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: toJsonData(t) }));
        assertMatchesExpected(outputs, r.expected, `${ex.name}/${r.file}`);
      }
    });
  }

  it('reads a model from bytes as from a path', async () => {
    const fromBytes = await onnxruntimeNode.createSession(new Uint8Array(readFileSync(MLP)));
    const fromPath = await onnxruntimeNode.createSession(MLP);
    try {
      assert.deepEqual(fromBytes.inputs, fromPath.inputs);
      assert.deepEqual(await fromBytes.run(mlpFeeds(), ['probabilities']), await fromPath.run(mlpFeeds(), ['probabilities']));
    } finally {
      await fromBytes.dispose();
      await fromPath.dispose();
    }
  });

  it('has computed when run returns: an immediate queued before the call has not fired (the public API runs after it)', async () => {
    for (const [backend, synchronous] of [[onnxruntimeNode, true], [onnxruntimeNodeDeferred, false]] as const) {
      const session = await backend.createSession(MLP);
      try {
        assert.equal(session.synchronous === true, synchronous);
        const order: string[] = [];
        setImmediate(() => order.push('immediate'));
        await session.run(mlpFeeds(), ['probabilities']).then(() => order.push('run'));
        await new Promise((r) => setImmediate(r));
        assert.deepEqual(order, synchronous ? ['run', 'immediate'] : ['immediate', 'run'], backend === onnxruntimeNode ? 'direct' : 'deferred');
      } finally {
        await session.dispose();
      }
    }
  });

  it('refuses what is not a model as UNSUPPORTED, naming onnxruntime', async () => {
    await assert.rejects(onnxruntimeNode.createSession(new TextEncoder().encode('not an onnx model')), (e: unknown) => {
      assert.ok(e instanceof InferenceError);
      assert.equal(e.code, 'UNSUPPORTED');
      assert.match(e.message, /onnxruntime could not load the model/);
      return true;
    });
  });

  it('fails a run onnxruntime refuses, and a run after release, as INFERENCE_FAILED; the session keeps working', async () => {
    const session = await onnxruntimeNode.createSession(MLP);
    const wrongShape: Tensor[] = [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) }];
    await assert.rejects(session.run(wrongShape, ['probabilities']), (e: unknown) => e instanceof InferenceError && e.code === 'INFERENCE_FAILED' && /onnxruntime failed to run the model/.test(e.message));
    const [out] = await session.run(mlpFeeds(), ['probabilities']);
    assert.deepEqual(out.shape, [1, 10]);
    await session.dispose();
    await session.dispose(); // a second release is a no-op
    await assert.rejects(session.run(mlpFeeds(), ['probabilities']), (e: unknown) => e instanceof InferenceError && e.code === 'INFERENCE_FAILED' && /released/.test(e.message));
  });

  it("runNow: the synchronous session's outputs returned, not promised; its failures thrown as INFERENCE_FAILED", async () => {
    const direct = await onnxruntimeNode.createSession(MLP);
    const deferred = await onnxruntimeNodeDeferred.createSession(MLP);
    try {
      assert.equal(deferred.runNow, undefined);
      assert.ok(direct.runNow);
      assert.deepEqual(direct.runNow(mlpFeeds(), ['probabilities']), await deferred.run(mlpFeeds(), ['probabilities']));
      const wrongShape: Tensor[] = [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) }];
      assert.throws(() => direct.runNow!(wrongShape, ['probabilities']), (e: unknown) => e instanceof InferenceError && e.code === 'INFERENCE_FAILED');
    } finally {
      await direct.dispose();
      await deferred.dispose();
    }
  });

  it('inferNow: a lone request answered within the call, as infer answers it and counted as infer counts it; a request that would wait is left to infer', async () => {
    const direct = await ServedModelVersion.load(MLP, { name: 'mlp', version: '1', backend: onnxruntimeNode, runOn: 'main' });
    const deferred = await ServedModelVersion.load(MLP, { name: 'mlp', version: '1', backend: onnxruntimeNodeDeferred, runOn: 'main' });
    loaded.push(direct, deferred);
    const request = () => ({ inputs: mlpFeeds(), id: 'q' });
    const reference = await deferred.infer(request());
    assert.equal(deferred.inferNow(request()), undefined, 'a session whose runs leave the call');
    // The first requests a batcher sees count as overlapping: they go through infer until a run has taken one alone.
    await direct.infer(request());
    await new Promise((r) => setImmediate(r)); // the turn ends
    const before = direct.statistics.toJSON();
    const answer = direct.inferNow(request());
    assert.ok(answer, 'a lone request is answered within the call');
    assert.deepEqual(answer, reference);
    // A second request read in the same turn waits for the turn's end (it may batch with others): infer's queue.
    assert.equal(direct.inferNow(request()), undefined);
    await new Promise((r) => setImmediate(r));
    assert.throws(() => direct.inferNow({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) }] }), (e: unknown) => e instanceof InferenceError && e.code === 'SHAPE_MISMATCH');
    const after = direct.statistics.toJSON();
    assert.equal(after.inference_count - before.inference_count, 1);
    assert.equal(after.execution_count - before.execution_count, 1);
    assert.equal(after.inference_stats.success.count - before.inference_stats.success.count, 1);
    assert.equal(after.inference_stats.fail.count - before.inference_stats.fail.count, 1);
  });
});
