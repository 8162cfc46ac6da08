import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseModelConfig, resolveModelConfig, selectVersions } from './model-config.ts';

describe('model config', () => {
  it('reads YAML and JSON with the same keys', () => {
    const yaml = parseModelConfig(
      `dynamic_batching:\n  max_batch_size: 32\n  max_queue_delay_ms: 2\n  preferred_batch_size: [16, 32]\nversion_policy:\n  latest: 2\ninstance_count: 2\nmax_queue_size: 10\ninputs:\n  - name: image\n    shape: [-1, 1, 8, 8]\n`,
      'config.yaml',
    );
    const json = parseModelConfig(
      JSON.stringify({
        dynamic_batching: { max_batch_size: 32, max_queue_delay_ms: 2, preferred_batch_size: [16, 32] },
        version_policy: { latest: 2 },
        instance_count: 2,
        max_queue_size: 10,
        inputs: [{ name: 'image', shape: [-1, 1, 8, 8] }],
      }),
      'config.json',
    );
    assert.deepEqual(yaml, json);
    const r = resolveModelConfig(json, { requestTimeoutMs: 5 });
    assert.deepEqual(r.batching, { maxBatchSize: 32, maxQueueDelayMs: 2, preferredBatchSizes: [16, 32] });
    assert.deepEqual(r.versionPolicy, { latest: 2 });
    assert.equal(r.instanceCount, 2);
    assert.equal(r.requestTimeoutMs, 5);
  });

  it('refuses unknown keys by name and reports every problem at once', () => {
    let err: ConfigError | undefined;
    try {
      parseModelConfig(
        JSON.stringify({ max_batch: 8, dynamic_batching: { max_batch_size: 0, delay: 1 }, instance_count: -1, inputs: [{ name: 'x', dtype: 'FP32' }] }),
        'm/config.json',
      );
    } catch (e) {
      err = e as ConfigError;
    }
    assert.ok(err instanceof ConfigError);
    const text = err.problems.join('\n');
    assert.match(text, /unknown key 'max_batch'/);
    assert.match(text, /unknown key 'dynamic_batching\.delay'/);
    assert.match(text, /'dynamic_batching\.max_batch_size' must be an integer from 1/);
    assert.match(text, /'instance_count' must be an integer from 1 to 256, got -1/);
    assert.match(text, /unknown key 'inputs\[0\]\.dtype'/);
    assert.equal(err.problems.length, 5);
    assert.match(err.message, /^m\/config\.json: 5 problems/);
  });

  it('isolation: none or process, the file over the server default, never with run_on: main', () => {
    assert.equal(resolveModelConfig(parseModelConfig('isolation: process\n', 'config.yaml')).isolation, 'process');
    assert.equal(resolveModelConfig(parseModelConfig('{}', 'config.json'), { isolation: 'process' }).isolation, 'process');
    assert.equal(resolveModelConfig(parseModelConfig('isolation: none\n', 'config.yaml'), { isolation: 'process' }).isolation, 'none');
    assert.equal(resolveModelConfig(parseModelConfig('{}', 'config.json')).isolation, 'none');
    assert.throws(() => parseModelConfig('isolation: thread\n', 'config.yaml'), /'isolation' must be one of none, process, got "thread"/);
    assert.throws(() => parseModelConfig('isolation: process\nrun_on: main\n', 'config.yaml'), /cannot be combined with 'run_on: main'/);
  });

  it('accepts Triton-style version policies and refuses malformed ones', () => {
    assert.deepEqual(parseModelConfig('{"version_policy": {"latest": {"num_versions": 3}}}', 'c.json').version_policy, { latest: 3 });
    assert.deepEqual(parseModelConfig('{"version_policy": {"all": {}}}', 'c.json').version_policy, { all: true });
    assert.deepEqual(parseModelConfig('{"version_policy": {"specific": {"versions": [1, 3]}}}', 'c.json').version_policy, { specific: ['1', '3'] });
    assert.throws(() => parseModelConfig('{"version_policy": {"newest": 1}}', 'c.json'), /unknown key 'version_policy\.newest'/);
    assert.throws(() => parseModelConfig('{"version_policy": {"latest": 0}}', 'c.json'), /latest' must be a whole number/);
    assert.throws(() => parseModelConfig('dynamic_batching: [1', 'c.yaml'), /cannot be parsed/);
    assert.throws(() => parseModelConfig('{"dynamic_batching": {"max_batch_size": 4, "preferred_batch_size": [8]}}', 'c.json'), /has 8, above max_batch_size 4/);
  });

  it('selects versions by policy', () => {
    const on = ['1', '2', '10', '3'];
    assert.deepEqual(selectVersions(on, { all: true }), ['1', '2', '3', '10']);
    assert.deepEqual(selectVersions(on, { latest: 2 }), ['3', '10']);
    assert.deepEqual(selectVersions(on, { specific: ['2', '7'] }), ['2']);
  });
});
