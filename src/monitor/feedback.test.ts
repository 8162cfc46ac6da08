import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecentPredictions, scoreFeedback, type PredictionOwner } from './feedback.ts';

const OWNER: PredictionOwner = { model: 'm', version: '1', spec: { output: 'p', task: 'classification', how: 'argmax' } as never };
/** What get() found under a key: its predictions, or undefined. */
const found = (r: RecentPredictions, key: string) => r.get(key)?.predictions;

test('recent predictions: at least the last `cap` keys are found, older ones are forgotten', () => {
  const r = new RecentPredictions(100);
  for (let i = 0; i < 1000; i++) r.set(`k${i}`, OWNER, [i]);
  for (let i = 900; i < 1000; i++) assert.deepEqual(found(r, `k${i}`), [i], `k${i}`);
  assert.equal(r.get('k0'), undefined);
  assert.equal(r.get('k799'), undefined);
});

test('recent predictions: ids this server gave go to a ring by their count; the last `cap` are found, with client keys beside them', async () => {
  const { newRequestId, ownRequestCount } = await import('../node/request-id.ts');
  const r = new RecentPredictions(100, ownRequestCount);
  const ids: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const id = newRequestId();
    ids.push(id);
    // One-row numeric predictions as bare numbers (the monitor's common case), every third as cells.
    r.set(id, OWNER, i % 3 === 0 ? [i, 'x'] : i);
    // A client's own x-request-id, and a request's own "id", interleaved: kept in the maps, not in the ring's slots.
    r.set(`client-${i}`, OWNER, -i);
    r.set(`id:${i}`, OWNER, [10_000 + i], id);
  }
  // Every one of the last 100 own ids, whatever else came between them; the maps' last 100 keys (50 requests' two).
  for (let i = 900; i < 1000; i++) assert.deepEqual(found(r, ids[i]), i % 3 === 0 ? [i, 'x'] : [i], ids[i]);
  for (let i = 950; i < 1000; i++) {
    assert.deepEqual(found(r, `client-${i}`), [-i]);
    assert.deepEqual(r.get(`id:${i}`), { model: 'm', version: '1', spec: OWNER.spec, predictions: [10_000 + i], requestId: ids[i] }, 'a request\'s own "id" names its x-request-id');
  }
  assert.deepEqual(r.get(ids[998]), { model: 'm', version: '1', spec: OWNER.spec, predictions: [998], requestId: ids[998], feedback: false });
  // Overwritten slots answer for the id now in them only.
  assert.equal(r.get(ids[0]), undefined);
  assert.equal(r.get(ids[899]), undefined);
  // An id in the same layout from another process (another prefix) is a client key like any other.
  const foreign = `${'0'.repeat(8)}-0000-0000-0000-${ids[950].slice(24)}`;
  assert.equal(ownRequestCount(foreign), -1);
  assert.equal(r.get(foreign), undefined);
  r.set(foreign, OWNER, 7);
  assert.deepEqual(found(r, foreign), [7]);
  assert.deepEqual(found(r, ids[950]), [950]);
});

test('ownRequestCount: the count of ids this process gave, -1 for anything else', async () => {
  const { newRequestId, ownRequestCount } = await import('../node/request-id.ts');
  const a = newRequestId();
  const b = newRequestId();
  assert.equal(ownRequestCount(b), ownRequestCount(a) + 1);
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  for (const other of ['', 'abc', a.slice(0, -1), `${a}0`, `${a.slice(0, -1)}g`, `${a.slice(0, -1)}A`, a.toUpperCase() === a ? `x${a.slice(1)}` : a.toUpperCase()]) {
    assert.equal(ownRequestCount(other), -1, other);
  }
});

test('feedback is taken once per remembered prediction, in the ring and in the maps; a reused slot starts without', async () => {
  const { newRequestId, ownRequestCount } = await import('../node/request-id.ts');
  const r = new RecentPredictions(2, ownRequestCount);
  const a = newRequestId();
  r.set(a, OWNER, 3);
  r.set('id:mine', OWNER, [1], a);
  assert.deepEqual(scoreFeedback(r, 'm', '1', { id: a, truth: 3 }).scores, [1]);
  assert.throws(() => scoreFeedback(r, 'm', '1', { id: a, truth: 3 }), /already recorded/);
  assert.deepEqual(scoreFeedback(r, 'm', undefined, { id: 'mine', truth: 2 }).scores, [0]);
  assert.throws(() => scoreFeedback(r, 'm', undefined, { id: 'mine', truth: 1 }), /already recorded/);
  assert.throws(() => scoreFeedback(r, 'other', undefined, { id: a, truth: 3 }), /no recent prediction of model 'other'/);
  // Two more ids later, a's slot holds another request, which has had no feedback.
  newRequestId();
  const c = newRequestId();
  r.set(c, OWNER, 5);
  assert.throws(() => scoreFeedback(r, 'm', '1', { id: a, truth: 3 }), /no recent prediction/);
  assert.deepEqual(scoreFeedback(r, 'm', '1', { id: c, truth: 5 }).scores, [1]);
});

test('onePrediction reads a one-row answer as predictionsOf does, and leaves every other answer to it', async () => {
  const { onePrediction, predictionsOf } = await import('./model-profile.ts');
  const argmax = { output: 'p', task: 'classification', how: 'argmax' } as never;
  const value = { output: 'y', task: 'regression', how: 'value' } as never;
  const t = (name: string, datatype: string, shape: number[], data: unknown) => ({ name, datatype, shape, data }) as never;
  const cases: [never, never[]][] = [
    [argmax, [t('p', 'FP32', [1, 4], new Float32Array([0.1, 0.7, 0.05, 0.15]))]],
    [argmax, [t('other', 'FP32', [1, 2], new Float32Array([1, 0])), t('p', 'FP64', [1, 3], new Float64Array([-3, -1, -2]))]],
    [argmax, [t('p', 'FP32', [], new Float32Array([5]))]],
    [value, [t('y', 'FP32', [1, 1], new Float32Array([2.5]))]],
    [value, [t('y', 'INT64', [1], new BigInt64Array([7n]))]],
  ];
  cases.forEach(([spec, outputs], i) => assert.deepEqual([onePrediction(spec, outputs)], predictionsOf(spec, outputs), `case ${i}`));
  // Two rows, integer scores, a missing output, a string value: predictionsOf's, not onePrediction's.
  assert.equal(onePrediction(argmax, [t('p', 'FP32', [2, 2], new Float32Array([1, 0, 0, 1]))]), undefined);
  assert.equal(onePrediction(argmax, [t('p', 'INT32', [1, 2], new Int32Array([0, 1]))]), undefined);
  assert.equal(onePrediction(argmax, [t('q', 'FP32', [1, 2], new Float32Array([0, 1]))]), undefined);
  assert.equal(onePrediction(value, [t('y', 'BYTES', [1], [new TextEncoder().encode('cat')])]), undefined);
});
