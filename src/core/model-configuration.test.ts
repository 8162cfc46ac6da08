import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelConfiguration } from './model-configuration.ts';
import type { ModelMetadata } from './protocol.ts';

const meta: ModelMetadata = {
  name: 'kw',
  platform: 'onnxruntime_onnx',
  inputs: [
    { name: 'text', datatype: 'BYTES', shape: [-1, 1] },
    { name: 'ids', datatype: 'INT64', shape: [-1, 16] },
  ],
  outputs: [{ name: 'label', datatype: 'BOOL', shape: [-1] }],
};

test('metadata alone: no batching (full shapes), one instance, no version policy or batcher', () => {
  const c = modelConfiguration(meta);
  assert.equal(c.max_batch_size, 0);
  assert.deepEqual(
    c.input.map((i) => [i.name, i.data_type, i.dims]),
    [
      ['text', 'TYPE_STRING', [-1, 1]],
      ['ids', 'TYPE_INT64', [-1, 16]],
    ],
  );
  assert.deepEqual(c.output, [{ name: 'label', data_type: 'TYPE_BOOL', dims: [-1] }]);
  assert.deepEqual(c.instance_group, [{ name: 'kw_0', kind: 'KIND_CPU', count: 1 }]);
  assert.equal(c.backend, 'onnxruntime');
  assert.equal(c.version_policy, undefined);
  assert.equal(c.dynamic_batching, undefined);
});

test('served settings: batching drops dimension 0 from dims; delays in µs; each version policy maps to its oneof', () => {
  const c = modelConfiguration(meta, { batching: { maxBatchSize: 8, maxQueueDelayMs: 0.25 }, instanceCount: 3, maxQueueSize: 10, requestTimeoutMs: 0, versionPolicy: { specific: ['1', '3'] } });
  assert.equal(c.max_batch_size, 8);
  assert.deepEqual(c.input.map((i) => i.dims), [[1], [16]]);
  assert.deepEqual(c.output[0].dims, []);
  assert.equal(c.instance_group[0].count, 3);
  assert.deepEqual(c.dynamic_batching, {
    preferred_batch_size: [],
    max_queue_delay_microseconds: 250,
    default_queue_policy: { timeout_action: 'REJECT', default_timeout_microseconds: 0, allow_timeout_override: false, max_queue_size: 10 },
  });
  assert.deepEqual(c.version_policy, { specific: { versions: [1, 3] } });
  assert.deepEqual(modelConfiguration(meta, { versionPolicy: { latest: 2 } }).version_policy, { latest: { num_versions: 2 } });
  assert.deepEqual(modelConfiguration(meta, { versionPolicy: { all: true } }).version_policy, { all: {} });
  // max_batch_size 0 (batching off) keeps the full shapes even with settings.
  assert.deepEqual(modelConfiguration(meta, { batching: { maxBatchSize: 0, maxQueueDelayMs: 0 } }).input[1].dims, [-1, 16]);
});
