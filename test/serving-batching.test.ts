// Dynamic batching over real HTTP: the same requests sent concurrently to a batching server and to an unbatched
// one give byte-identical outputs, the batches really formed (Triton statistics), and the results still equal the
// training framework's predictions.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeInferResponse, encodeInferRequest, requestFromJson } from '../src/core/index.ts';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { assertResponseMatches, exampleCases } from './support/examples.ts';
import { call, exampleModel, fixedShapeModel, heldoutRequests, tempRepository, type CallResult } from './support/serving.ts';

describe('dynamic batching', () => {
  let batched: RunningServer;
  let unbatched: RunningServer;
  before(async () => {
    [batched, unbatched] = await Promise.all([
      serve({ model: exampleModel('digits'), port: 0, defaults: { batching: { maxBatchSize: 64, maxQueueDelayMs: 50 } } }),
      serve({ model: exampleModel('digits'), port: 0 }),
    ]);
  });
  after(async () => {
    await Promise.all([batched?.close(), unbatched?.close()]);
  });

  it('joins concurrent requests and answers each exactly as an unbatched run does', async () => {
    const requests = heldoutRequests('digits', 48);
    // Binary outputs, so the comparison is bit for bit rather than through JSON's decimal text.
    const send = (s: RunningServer, r: object) => {
      const enc = encodeInferRequest(requestFromJson({ ...r, parameters: { binary_data_output: true } }), () => true);
      return call(s.url, 'POST', '/v2/models/model/infer', enc.body, {
        'content-type': enc.contentType,
        'inference-header-content-length': String(enc.headerLength),
      });
    };
    const b = await Promise.all(requests.map((r) => send(batched, r)));
    const u: CallResult[] = [];
    for (const r of requests) u.push(await send(unbatched, r)); // one at a time: never batched
    for (let i = 0; i < requests.length; i++) {
      assert.equal(b[i].status, 200, b[i].text);
      const bo = decodeInferResponse(b[i].bytes, Number(b[i].headers.get('inference-header-content-length'))).outputs[0];
      const uo = decodeInferResponse(u[i].bytes, Number(u[i].headers.get('inference-header-content-length'))).outputs[0];
      assert.deepEqual(bo.shape, [1, 10]);
      assert.deepEqual(Buffer.from((bo.data as Float32Array).buffer, (bo.data as Float32Array).byteOffset, 40), Buffer.from((uo.data as Float32Array).buffer, (uo.data as Float32Array).byteOffset, 40), `request ${i}`);
    }
    const stats = (await call(batched.url, 'GET', '/v2/models/model/stats')).json().model_stats[0];
    assert.equal(stats.inference_count, 48);
    assert.ok(stats.execution_count <= 24, `48 requests ran in ${stats.execution_count} runs: batches formed (average of 2 rows or more)`);
    assert.ok(stats.batch_stats.some((s: { batch_size: number }) => s.batch_size > 1));
    const plain = (await call(unbatched.url, 'GET', '/v2/models/model/stats')).json().model_stats[0];
    assert.equal(plain.execution_count, 48);
    assert.deepEqual(plain.batch_stats.map((s: { batch_size: number }) => s.batch_size), [1]);
  });

  it('a request that is itself a batch counts its rows and still matches the framework', async () => {
    const cases = exampleCases('digits');
    const results = await Promise.all(cases.flatMap((c) => [c, c, c].map(() => call(batched.url, 'POST', '/v2/models/model/infer', c.request))));
    results.forEach((r, i) => {
      assert.equal(r.status, 200, r.text);
      assertResponseMatches(r.json().outputs, cases[Math.floor(i / 3)].expected, `digits/${cases[Math.floor(i / 3)].requestFile}`);
    });
  });

  it('the ONNX-ML forest batches too, and still gives scikit-learn\'s predictions', async () => {
    const s = await serve({ model: exampleModel('maintenance'), port: 0, defaults: { batching: { maxBatchSize: 64, maxQueueDelayMs: 10 } } });
    try {
      const cases = exampleCases('maintenance');
      const rs = await Promise.all(cases.flatMap((c) => [c, c, c].map(() => call(s.url, 'POST', '/v2/models/model/infer', c.request))));
      rs.forEach((r, i) => assertResponseMatches(r.json().outputs, cases[Math.floor(i / 3)].expected, 'maintenance'));
      const stats = (await call(s.url, 'GET', '/v2/models/model/stats')).json().model_stats[0];
      assert.ok(stats.execution_count < rs.length, `${rs.length} requests in ${stats.execution_count} runs`);
    } finally {
      await s.close();
    }
  });

  it('with no flags (main thread, runs that end within the call), a burst after a lone request is batched again', async () => {
    // The main thread's session computes within the call, so a queue never forms behind a run; after a run of one
    // request the batcher must still notice that others arrive in the same turn, or every later request runs alone.
    const s = await serve({ model: exampleModel('digits'), port: 0 });
    try {
      const config = (await call(s.url, 'GET', '/v2/models/model/config')).json();
      assert.equal(config.parameters.execution_thread.string_value, 'main', 'the case this test is about');
      const [request] = heldoutRequests('digits', 1);
      const burst = () => Promise.all(Array.from({ length: 48 }, () => call(s.url, 'POST', '/v2/models/model/infer', request)));
      const stats = async () => (await call(s.url, 'GET', '/v2/models/model/stats')).json().model_stats[0];
      await burst(); // opens the connections
      assert.equal((await call(s.url, 'POST', '/v2/models/model/infer', request)).status, 200); // a lone request: a run of one
      const before = await stats();
      const answers = await burst();
      for (const r of answers) assert.equal(r.status, 200, r.text);
      const after = await stats();
      const runs = after.execution_count - before.execution_count;
      assert.equal(after.inference_count - before.inference_count, 48);
      assert.ok(runs <= 24, `48 requests after a lone one ran in ${runs} runs: batches formed again (average of 2 rows or more)`);
    } finally {
      await s.close();
    }
  });

  it('with batching off on the main thread, a burst runs one request after another at the turn\'s end, each answered with its own outputs', async () => {
    // The turn's requests run back to back before any is answered (batcher.ts, runsInCall): the answers must still
    // go to their own requests.
    const s = await serve({ model: exampleModel('digits'), port: 0, defaults: { batching: { maxBatchSize: 1, maxQueueDelayMs: 0 } } });
    try {
      const config = (await call(s.url, 'GET', '/v2/models/model/config')).json();
      assert.equal(config.parameters.execution_thread.string_value, 'main', 'the case this test is about');
      assert.equal(config.max_batch_size, 0);
      const requests = heldoutRequests('digits', 48);
      const one: unknown[] = [];
      for (const r of requests) one.push((await call(s.url, 'POST', '/v2/models/model/infer', r)).json().outputs);
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(requests.map((r) => call(s.url, 'POST', '/v2/models/model/infer', r)));
        answers.forEach((a, i) => assert.deepEqual(a.json().outputs, one[i], `request ${i}, round ${round}`));
      }
      const stats = (await call(s.url, 'GET', '/v2/models/model/stats')).json().model_stats[0];
      assert.equal(stats.execution_count, 48 * 4);
      assert.deepEqual(stats.batch_stats.map((b: { batch_size: number }) => b.batch_size), [1]);
    } finally {
      await s.close();
    }
  });

  it('a model whose dimension 0 is fixed runs unbatched even when batching is asked for', async () => {
    const repo = tempRepository();
    repo.write('fixed', '1', await fixedShapeModel());
    const notes: string[] = [];
    const s = await serve({ model: repo.root, port: 0, defaults: { batching: { maxBatchSize: 8, maxQueueDelayMs: 20 } }, onLoad: (e) => notes.push(...e.notes) });
    try {
      assert.ok(notes.some((n) => /batching is off for this model: input 'x' has a fixed dimension 0/.test(n)), notes.join('; '));
      const body = { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [-1, 2, -3, 4, -5, 6] }] };
      const rs = await Promise.all([1, 2, 3, 4].map(() => call(s.url, 'POST', '/v2/models/fixed/infer', body)));
      for (const r of rs) assert.deepEqual(r.json().outputs[0].data, [0, 2, 0, 4, 0, 6]);
      const stats = (await call(s.url, 'GET', '/v2/models/fixed/stats')).json().model_stats[0];
      assert.equal(stats.execution_count, 4);
    } finally {
      await s.close();
      repo.remove();
    }
  });
});
