// The model repository over real HTTP: config files, version policy, hot reload while clients keep sending
// (zero failed requests), a corrupt new version refused while the old one keeps answering, and Triton's repository
// extension (index, load, unload).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { serve } from '../src/serve/index.ts';
import { assertResponseMatches, exampleCases } from './support/examples.ts';
import { call, exampleModel, logCapture, tempRepository } from './support/serving.ts';
import { waitFor } from './support/wait.ts';

const digits = exampleCases('digits').find((c) => c.requestFile === 'single.json')!;

describe('model repository', () => {
  it('hot-reloads a new version under load with zero failed requests, then refuses a corrupt one and keeps serving', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    repo.config('digits', { version_policy: { latest: 1 }, dynamic_batching: { max_batch_size: 16, max_queue_delay_ms: 1 } });
    const logs = logCapture();
    const s = await serve({ model: repo.root, port: 0, watch: { pollIntervalMs: 40 }, modelControl: 'explicit', logger: pino({ level: 'info' }, logs.stream) });
    const failures: string[] = [];
    const versions = new Map<string, number>();
    let sent = 0;
    let stop = false;
    const client = async () => {
      while (!stop) {
        sent++;
        try {
          const r = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request);
          if (r.status !== 200) {
            failures.push(`${r.status} ${r.text}`);
            continue;
          }
          const body = r.json();
          assertResponseMatches(body.outputs, digits.expected, 'digits');
          versions.set(body.model_version, (versions.get(body.model_version) ?? 0) + 1);
        } catch (e) {
          failures.push(String(e));
        }
      }
    };
    const clients = [client(), client(), client(), client()];
    try {
      const until = (what: string, ok: () => boolean) => waitFor(ok, { what });
      await until('version 1 to answer', () => (versions.get('1') ?? 0) > 0);
      repo.add('digits', '2'); // same network, new version folder
      await until('version 2 to answer', () => (versions.get('2') ?? 0) > 20);
      assert.deepEqual(s.repository.versionsOf('digits'), ['2'], 'latest-1 policy: version 1 unloaded after version 2 went live');

      // A changed file for the serving version is reloaded in place.
      const before = s.repository.resolveModel('digits');
      const v2 = join(repo.root, 'digits', '2', 'model.onnx');
      writeFileSync(v2, readFileSync(v2));
      utimesSync(v2, new Date(), new Date(Date.now() + 5000));
      await until('version 2 to be reloaded', () => s.repository.resolveModel('digits') !== before);

      // A corrupt version 3 is refused; version 2 keeps answering.
      repo.write('digits', '3', 'this is not an ONNX model');
      await until('version 3 to be refused', () => logs.lines.some((l) => l.msg === 'model version refused' && l.version === '3'));
      const after = sent;
      await until('more requests after the refusal', () => sent > after + 40);
      stop = true;
      await Promise.all(clients);
      assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
      assert.ok((versions.get('1') ?? 0) > 0 && (versions.get('2') ?? 0) > 0, JSON.stringify([...versions]));
      assert.deepEqual(s.repository.versionsOf('digits'), ['2']);
      const refused = logs.lines.find((l) => l.msg === 'model version refused' && l.version === '3')!;
      assert.equal(refused.level, 50, 'logged as an error');
      assert.match(String(refused.error), /onnxruntime could not load the model|not a valid ONNX|protobuf|parse/i);
      const index = (await call(s.url, 'POST', '/v2/repository/index')).json();
      assert.deepEqual(
        index.map((e: { version: string; state: string }) => [e.version, e.state]),
        [
          ['1', 'UNAVAILABLE'],
          ['2', 'READY'],
          ['3', 'UNAVAILABLE'],
        ],
      );
      assert.equal(index[0].reason, 'not selected by the version policy');
      assert.match(index[2].reason, /could not load|ONNX|parse/i);
      assert.equal((await call(s.url, 'POST', '/v2/models/digits/versions/3/infer', digits.request)).status, 404);
    } finally {
      stop = true;
      await Promise.all(clients);
      await s.close();
      repo.remove();
    }
  });

  it('with file-system events (--watch) a new version goes live without polling', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    const s = await serve({ model: repo.root, port: 0, watch: { fsEvents: true } });
    try {
      repo.add('digits', '2');
      await waitFor(() => s.repository.versionsOf('digits').length >= 2, { what: 'version 2 to go live' });
      assert.deepEqual(s.repository.versionsOf('digits'), ['1', '2']);
      const r = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request);
      assert.equal(r.json().model_version, '2');
      assertResponseMatches(r.json().outputs, digits.expected, 'digits v2');
    } finally {
      await s.close();
      repo.remove();
    }
  });

  it('a changed config that does not fit the model is refused, and the running config keeps serving', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    const logs = logCapture();
    const s = await serve({ model: repo.root, port: 0, logger: pino({ level: 'info' }, logs.stream) });
    try {
      repo.config('digits', { inputs: [{ name: 'image', shape: [-1, 1, 28, 28] }] });
      const report = await s.repository.refresh({ models: ['digits'] }).catch((e) => e);
      assert.equal(report.failed.length, 1);
      assert.match(report.failed[0].error, /config input 'image' has shape \[-1, 1, 28, 28\], which does not fit the model's \[-1, 1, 8, 8\]/);
      const r = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request);
      assert.equal(r.status, 200);
      repo.config('digits', { max_batch_size: 4 });
      const bad = await s.repository.refresh();
      assert.match(bad.failed[0].error, /unknown key 'max_batch_size'/);
      assert.equal((await call(s.url, 'POST', '/v2/models/digits/infer', digits.request)).status, 200);
    } finally {
      await s.close();
      repo.remove();
    }
  });

  it('refuses to start on config errors, naming every problem', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    repo.config('digits', { instance_count: 0, dynamic_batching: { max_batch_size: 8, wait_ms: 3 } });
    try {
      await assert.rejects(serve({ model: repo.root, port: 0 }), (e: Error) => {
        assert.match(e.message, /config\.json: 2 problems/);
        assert.match(e.message, /'instance_count' must be an integer from 1 to 256, got 0/);
        assert.match(e.message, /unknown key 'dynamic_batching\.wait_ms'/);
        return true;
      });
    } finally {
      repo.remove();
    }
  });

  it('follows the version policy and the input constraints of the config', async () => {
    const repo = tempRepository();
    for (const v of ['1', '2', '3']) repo.add('digits', v);
    repo.config('digits', { version_policy: { specific: [1, 3] }, inputs: [{ name: 'image', shape: [1, 1, 8, 8] }] });
    const s = await serve({ model: repo.root, port: 0 });
    try {
      assert.deepEqual(s.repository.versionsOf('digits'), ['1', '3']);
      const meta = (await call(s.url, 'GET', '/v2/models/digits')).json();
      assert.deepEqual(meta.versions, ['1', '3']);
      assert.deepEqual(meta.inputs[0].shape, [1, 1, 8, 8], 'metadata shows the narrower contract');
      assert.equal((await call(s.url, 'POST', '/v2/models/digits/versions/2/infer', digits.request)).status, 404);
      const batch = exampleCases('digits').find((c) => c.requestFile !== 'single.json')!;
      const r = await call(s.url, 'POST', '/v2/models/digits/infer', batch.request);
      assert.equal(r.status, 400);
      assert.equal(r.json().code, 'SHAPE_MISMATCH');
      assert.equal(r.json().model_version, undefined);
    } finally {
      await s.close();
      repo.remove();
    }
  });

  it('unloads and loads a model through the repository extension', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    repo.add('mlp', '1', exampleModel('mlp'));
    const s = await serve({ model: repo.root, port: 0, modelControl: 'explicit' });
    try {
      assert.equal((await call(s.url, 'POST', '/v2/repository/models/digits/unload')).status, 200);
      const gone = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request);
      assert.equal(gone.status, 404);
      assert.match(gone.json().error, /unloaded.*\/v2\/repository\/models\/digits\/load/);
      const index = (await call(s.url, 'POST', '/v2/repository/index', {})).json();
      assert.deepEqual(index.find((e: { name: string }) => e.name === 'digits'), { name: 'digits', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' });
      assert.deepEqual((await call(s.url, 'POST', '/v2/repository/index', { ready: true })).json().map((e: { name: string }) => e.name), ['mlp']);
      assert.equal((await call(s.url, 'POST', '/v2/repository/models/digits/load')).status, 200);
      const back = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request);
      assert.equal(back.status, 200);
      assertResponseMatches(back.json().outputs, digits.expected, 'digits');
      const missing = await call(s.url, 'POST', '/v2/repository/models/nope/load');
      assert.equal(missing.status, 404);
      assert.match(missing.json().error, /'nope' is not in the repository/);
      // A config override is applied (test/triton-compat.test.ts); model files in the request are not.
      const override = await call(s.url, 'POST', '/v2/repository/models/digits/load', { parameters: { 'file:1/model.onnx': 'AAAA' } });
      assert.equal(override.status, 501);
    } finally {
      await s.close();
      repo.remove();
    }
  });
});
