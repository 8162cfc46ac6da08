import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecentPredictions } from './feedback.ts';

test('recent predictions: at least the last `cap` keys are found, older ones are forgotten', () => {
  const r = new RecentPredictions(100);
  const entry = (i: number) => ({ i }) as never;
  for (let i = 0; i < 1000; i++) r.set(`k${i}`, entry(i));
  for (let i = 900; i < 1000; i++) assert.deepEqual(r.get(`k${i}`), { i }, `k${i}`);
  assert.equal(r.get('k0'), undefined);
  assert.equal(r.get('k799'), undefined);
});

test('recent predictions: ids this server gave go to a ring by their count; the last `cap` are found, with client keys beside them', async () => {
  const { newRequestId, ownRequestCount } = await import('../node/request-id.ts');
  const r = new RecentPredictions(100, ownRequestCount);
  const entry = (i: number) => ({ i }) as never;
  const ids: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const id = newRequestId();
    ids.push(id);
    r.set(id, entry(i));
    // A client's own x-request-id, and a request's own "id", interleaved: kept in the maps, not in the ring's slots.
    r.set(`client-${i}`, entry(-i));
    r.set(`id:${i}`, entry(10_000 + i));
  }
  // Every one of the last 100 own ids, whatever else came between them; the maps' last 100 keys (50 requests' two).
  for (let i = 900; i < 1000; i++) assert.deepEqual(r.get(ids[i]), { i }, ids[i]);
  for (let i = 950; i < 1000; i++) {
    assert.deepEqual(r.get(`client-${i}`), { i: -i });
    assert.deepEqual(r.get(`id:${i}`), { i: 10_000 + i });
  }
  // Overwritten slots answer for the id now in them only.
  assert.equal(r.get(ids[0]), undefined);
  assert.equal(r.get(ids[899]), undefined);
  // An id in the same layout from another process (another prefix) is a client key like any other.
  const foreign = `${'0'.repeat(8)}-0000-0000-0000-${ids[950].slice(24)}`;
  assert.equal(ownRequestCount(foreign), -1);
  assert.equal(r.get(foreign), undefined);
  r.set(foreign, entry(7));
  assert.deepEqual(r.get(foreign), { i: 7 });
  assert.deepEqual(r.get(ids[950]), { i: 950 });
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
