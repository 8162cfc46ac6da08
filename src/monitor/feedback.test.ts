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
