// Production behaviour over real HTTP: backpressure (503 + Retry-After), request timeouts (504), bearer auth,
// request ids, Prometheus /metrics, and SIGTERM draining of a real `dais serve` process with zero lost requests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { serve } from '../src/serve/index.ts';
import { REPO_ROOT } from './support/env.ts';
import { assertResponseMatches, exampleCases } from './support/examples.ts';
import { parsePrometheusText } from './support/prometheus.ts';
import { call, logCapture, sleep, tempRepository } from './support/serving.ts';
import { waitFor } from './support/wait.ts';

/** Requests waiting in digits' queue of an in-process server. */
const queuedOf = (s: { repository: { endpoints(): { name: string; queued: number }[] } }) => s.repository.endpoints().find((m) => m.name === 'digits')?.queued;

const digits = exampleCases('digits').find((c) => c.requestFile === 'single.json')!;

describe('backpressure and timeouts', () => {
  it('a full queue answers 503 with Retry-After at once, and the queued request still succeeds', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    // The batcher holds the first request for 400 ms waiting for company; the queue holds one.
    repo.config('digits', { max_queue_size: 1, dynamic_batching: { max_batch_size: 64, max_queue_delay_ms: 400 } });
    const s = await serve({ model: repo.root, port: 0 });
    try {
      const first = call(s.url, 'POST', '/v2/models/digits/infer', digits.request);
      await waitFor(() => queuedOf(s) === 1, { what: 'the first request to be queued' });
      const t0 = performance.now();
      const second = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request);
      assert.ok(performance.now() - t0 < 300, 'refused without waiting');
      assert.equal(second.status, 503);
      assert.equal(second.headers.get('retry-after'), '1');
      assert.equal(second.json().code, 'QUEUE_FULL');
      assert.match(second.json().error, /queue is full \(1 requests waiting\)/);
      const r1 = await first;
      assert.equal(r1.status, 200);
      assertResponseMatches(r1.json().outputs, digits.expected, 'digits');
      const metrics = parsePrometheusText((await call(s.url, 'GET', '/metrics')).text);
      const outcomes = metrics.get('dais_inference_requests_total')!.samples.map((x) => [x.labels.outcome, x.value]);
      assert.deepEqual(outcomes.sort(), [
        ['queue_full', 1],
        ['success', 1],
      ]);
    } finally {
      await s.close();
      repo.remove();
    }
  });

  it('a request that waits past the request timeout gets 504', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    repo.config('digits', { request_timeout_ms: 50, dynamic_batching: { max_batch_size: 64, max_queue_delay_ms: 2000 } });
    const s = await serve({ model: repo.root, port: 0 });
    try {
      const r = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request);
      assert.equal(r.status, 504);
      assert.equal(r.json().code, 'TIMEOUT');
      assert.match(r.json().error, /request timeout of 50 ms/);
    } finally {
      await s.close();
      repo.remove();
    }
  });
});

describe('auth, request ids and metrics', () => {
  it('enforces the bearer token on everything but health', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    const s = await serve({ model: repo.root, port: 0, authToken: 's3cret' });
    try {
      assert.equal((await call(s.url, 'GET', '/v2/health/live')).status, 200);
      assert.equal((await call(s.url, 'GET', '/v2/health/ready')).status, 200);
      for (const [method, path] of [
        ['GET', '/v2'],
        ['GET', '/v2/models/digits'],
        ['POST', '/v2/models/digits/infer'],
        ['GET', '/metrics'],
        ['GET', '/v2/models/stats'],
        ['POST', '/v2/repository/index'],
      ]) {
        const none = await call(s.url, method, path, method === 'POST' ? digits.request : undefined);
        assert.equal(none.status, 401, `${method} ${path}`);
        assert.equal(none.headers.get('www-authenticate'), 'Bearer');
        assert.equal(none.json().code, 'UNAUTHORIZED');
        const wrong = await call(s.url, method, path, method === 'POST' ? digits.request : undefined, { authorization: 'Bearer s3cre' });
        assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
      }
      const ok = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request, { authorization: 'Bearer s3cret' });
      assert.equal(ok.status, 200);
      assertResponseMatches(ok.json().outputs, digits.expected, 'digits');
    } finally {
      await s.close();
      repo.remove();
    }
  });

  it('returns a request id on every response and logs with it; /metrics parses as Prometheus text', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    const logs = logCapture();
    const s = await serve({ model: repo.root, port: 0, logger: pino({ level: 'debug' }, logs.stream), defaults: { batching: { maxBatchSize: 8, maxQueueDelayMs: 5 } } });
    try {
      const a = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request);
      assert.match(a.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
      const b = await call(s.url, 'POST', '/v2/models/digits/infer', digits.request, { 'x-request-id': 'client-chosen-42' });
      assert.equal(b.headers.get('x-request-id'), 'client-chosen-42');
      assert.ok(logs.lines.some((l) => l.requestId === 'client-chosen-42' && l.path === '/v2/models/digits/infer' && l.status === 200));
      const bad = await call(s.url, 'GET', '/v2/models/nope');
      assert.ok(bad.headers.get('x-request-id'));
      await Promise.all([1, 2, 3, 4, 5, 6].map(() => call(s.url, 'POST', '/v2/models/digits/infer', digits.request)));
      const m = await call(s.url, 'GET', '/metrics');
      assert.equal(m.status, 200);
      assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const families = parsePrometheusText(m.text);
      const one = (name: string, labels: Record<string, string>) =>
        families.get(name.replace(/_(count|sum|bucket)$/, ''))!.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value;
      assert.equal(one('dais_inference_requests_total', { model: 'digits', version: '1', outcome: 'success' }), 8);
      assert.equal(one('dais_inference_request_duration_seconds_count', { model: 'digits' }), 8);
      assert.equal(one('dais_inference_queue_duration_seconds_count', { model: 'digits' }), 8);
      const runs = one('dais_inference_compute_duration_seconds_count', { model: 'digits' })!;
      const rows = one('dais_inference_batch_size_sum', { model: 'digits' })!;
      assert.equal(rows, 8, 'every request row, run through the batcher (the warm-up run bypasses it)');
      assert.ok(runs >= 2 && runs <= 9);
      assert.equal(one('dais_inference_requests_in_flight', { model: 'digits' }), 0);
      assert.ok(one('dais_model_load_duration_seconds', { model: 'digits', version: '1' })! > 0);
      assert.equal(families.get('dais_inference_requests_total')!.type, 'counter');
      assert.equal(families.get('dais_inference_batch_size')!.type, 'histogram');
      assert.ok(families.has('process_cpu_user_seconds_total'), 'default process metrics');
    } finally {
      await s.close();
      repo.remove();
    }
  });
});

describe('graceful shutdown', () => {
  it('closing turns readiness false at once and lets in-flight requests finish', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    repo.config('digits', { dynamic_batching: { max_batch_size: 64, max_queue_delay_ms: 300 } });
    const s = await serve({ model: repo.root, port: 0 });
    try {
      const inflight = [1, 2, 3].map(() => call(s.url, 'POST', '/v2/models/digits/infer', digits.request));
      await waitFor(() => queuedOf(s) === 3, { what: 'the three requests to be queued' });
      const closing = s.close();
      assert.equal(s.repository.isReady(), false);
      const results = await Promise.all(inflight);
      assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
      assert.equal(await closing, true);
      await assert.rejects(call(s.url, 'GET', '/v2/health/live'), 'no longer accepting connections');
    } finally {
      await s.close();
      repo.remove();
    }
  });

  it('SIGTERM to `dais serve` loses no in-flight request and exits 0', async () => {
    const repo = tempRepository();
    repo.add('digits', '1');
    // In-flight for ~400 ms: each request waits in the batcher for company.
    repo.config('digits', { dynamic_batching: { max_batch_size: 64, max_queue_delay_ms: 400 } });
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'serve', repo.root, '--port', '0', '--json', '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const first = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', () => reject(new Error(`dais serve exited before it was ready: ${stderr}`)));
      });
      const { url } = JSON.parse(first) as { url: string };
      let answered = 0;
      const inflight = Array.from({ length: 16 }, () =>
        call(url, 'POST', '/v2/models/digits/infer', digits.request)
          .catch((e: Error) => e)
          .finally(() => answered++),
      );
      // Every request reached the server (queued there, or already answered) before the signal.
      await waitFor(async () => answered + (parsePrometheusText(await (await fetch(url + '/metrics')).text()).get('dais_inference_queue_size')?.samples[0]?.value ?? 0) >= 16, { what: 'the 16 requests to reach the server' });
      child.kill('SIGTERM');
      const results = await Promise.all(inflight);
      const lost = results.filter((r) => r instanceof Error || r.status !== 200);
      assert.equal(lost.length, 0, `lost: ${lost.map((r) => (r instanceof Error ? r.message : `${r.status} ${r.text}`)).join('; ')}`);
      for (const r of results) if (!(r instanceof Error)) assertResponseMatches(r.json().outputs, digits.expected, 'digits');
      const code = await Promise.race([exited, sleep(10_000).then(() => 'timeout')]);
      assert.equal(code, 0, `exit code (stderr: ${stderr})`);
    } finally {
      child.kill('SIGKILL');
      repo.remove();
    }
  });
});
