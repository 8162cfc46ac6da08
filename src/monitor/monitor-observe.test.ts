import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InferEvent } from '../core/index.ts';
import { Monitor } from './monitor.ts';

/** The served model's outputs, as the server's repository tells the monitor (predictions: argmax of 'scores'). */
const catalog = { resolve: () => ({ version: '1', metadata: () => ({ name: 'm', platform: 'onnxruntime_onnx', inputs: [], outputs: [{ name: 'scores', datatype: 'FP32' as const, shape: [-1, 3] }] }) }) };

/** A classifier's answer to one row, with hold/release counted. */
function event(requestId: string) {
  const counts = { holds: 0, releases: 0 };
  const e: InferEvent = {
    model: 'm',
    version: '1',
    request: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array([1, 2]) }] },
    response: { model_name: 'm', model_version: '1', outputs: [{ name: 'scores', datatype: 'FP32', shape: [1, 3], data: new Float32Array([0.1, 0.7, 0.2]) }] },
    durationMs: 1,
    requestId,
    hold: () => void counts.holds++,
    release: () => void counts.releases++,
  };
  return { e, counts };
}

test('a monitor with nothing to read later (no prediction log, no drift window) keeps no hold on the request, and still remembers its prediction', async () => {
  const monitor = new Monitor({ evaluateIntervalMs: 3_600_000 });
  monitor.attach({ repository: catalog });
  try {
    const { e, counts } = event('r1');
    monitor.observe(e);
    assert.deepEqual(counts, { holds: 0, releases: 0 });
    // The argmax of the scores is 1.
    const r = monitor.feedback('m', undefined, { id: 'r1', truth: 1 });
    assert.equal(r.rows, 1);
    assert.equal(r.correct, 1);
  } finally {
    await monitor.close();
  }
});

test('a monitor with a prediction log holds the request until its drain has read it, then lets go once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dais-monitor-observe-'));
  const monitor = await new Monitor({ evaluateIntervalMs: 3_600_000, log: { file: join(dir, 'log.sqlite') } }).open();
  monitor.attach({ repository: catalog });
  try {
    const { e, counts } = event('r1');
    monitor.observe(e);
    assert.deepEqual(counts, { holds: 1, releases: 0 });
    monitor.drain();
    assert.deepEqual(counts, { holds: 1, releases: 1 });
    assert.equal(monitor.feedback('m', undefined, { id: 'r1', truth: 2 }).correct, 0);
  } finally {
    await monitor.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('feedback for a request answered before its version was reloaded is scored as that answer was read', async () => {
  const monitor = new Monitor({ evaluateIntervalMs: 3_600_000 });
  monitor.attach({ repository: catalog });
  const { newRequestId } = await import('../node/request-id.ts');
  try {
    // This server's own ids (the feedback memory's ring) and a client's, both before the reload.
    const own = newRequestId();
    monitor.observe(event(own).e);
    monitor.observe(event('client-1').e);
    monitor.onLoad({ name: 'm', version: '1', path: join(tmpdir(), 'no-such-dir', 'model.onnx') });
    assert.equal(monitor.feedback('m', '1', { id: own, truth: 1 }).correct, 1);
    assert.equal(monitor.feedback('m', '1', { id: 'client-1', truth: 0 }).correct, 0);
    assert.throws(() => monitor.feedback('m', '1', { id: own, truth: 1 }), /already recorded/);
  } finally {
    await monitor.close();
  }
});

test("a request answered right after its version loaded is in the version's drift window", async () => {
  // onLoad reads the version's profile.json before it returns (the version serves its first request after it): a
  // read that finished later let the first rows after a start go uncounted.
  const dir = mkdtempSync(join(tmpdir(), 'dais-monitor-profile-'));
  copyFileSync(join(import.meta.dirname, '..', '..', 'examples', 'maintenance', '1', 'profile.json'), join(dir, 'profile.json'));
  const monitor = new Monitor({ evaluateIntervalMs: 3_600_000 });
  monitor.attach({ repository: { resolve: () => ({ version: '1', metadata: () => ({ name: 'maintenance', platform: 'onnxruntime_onnx', inputs: [], outputs: [] }) }) } });
  try {
    monitor.onLoad({ name: 'maintenance', version: '1', path: join(dir, 'model.onnx') });
    monitor.observe({
      model: 'maintenance',
      version: '1',
      request: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 6], data: new Float32Array([300, 310, 1500, 40, 100, 2]) }] },
      response: { model_name: 'maintenance', model_version: '1', outputs: [{ name: 'label', datatype: 'INT64', shape: [1], data: new BigInt64Array([0n]) }, { name: 'probabilities', datatype: 'FP32', shape: [1, 3], data: new Float32Array([0.9, 0.05, 0.05]) }] },
      durationMs: 1,
      requestId: 'r1',
    });
    const r = await monitor.report('maintenance', '1');
    assert.equal(r.status, 'insufficient_data');
    assert.equal(r.window.rows, 1);
  } finally {
    await monitor.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
