import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebhookNotifier } from './alerts.ts';

const event = { model: 'm', version: '1', at: '2026-11-24T00:00:00Z', drifted: ['x'], features: [], window: { rows: 100, size: 500 }, report: '/v2/models/m/versions/1/drift' };

test('a webhook that keeps failing is tried 1 + retries times with doubling waits, then reported failed once', async () => {
  const times: number[] = [];
  const server = createServer((req, res) => {
    times.push(performance.now());
    req.resume();
    req.on('end', () => res.writeHead(503).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const failures: unknown[] = [];
  try {
    const n = new WebhookNotifier({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, retries: 2, backoffMs: 40 }, (r) => !r.ok && failures.push(r));
    const result = await n.update('drift', event);
    assert.equal(result!.ok, false);
    assert.equal(result!.attempts, 3);
    assert.equal(result!.status, 503);
    assert.equal(times.length, 3);
    assert.ok(times[1] - times[0] >= 35 && times[2] - times[1] >= 75, `waits ${times[1] - times[0]}, ${times[2] - times[1]}`);
    assert.equal(failures.length, 1);
    // The state moved to drift all the same: no second alert while it holds.
    assert.equal(n.update('drift', event), undefined);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('an unreachable webhook fails with the network error, and does not throw into the caller', async () => {
  const n = new WebhookNotifier({ url: 'http://127.0.0.1:9/', retries: 0, timeoutMs: 1000 });
  const r = await n.update('drift', event);
  assert.equal(r!.ok, false);
  assert.match(r!.error!, /fetch failed|ECONNREFUSED/);
  assert.equal(n.update('ok', event) !== undefined, true); // back to ok is a crossing too
  await n.flush();
});
