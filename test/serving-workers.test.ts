// `dais serve --workers N`: real processes sharing one HTTP and one gRPC port through node:cluster. Checks that
// requests reach every worker and get the right numbers, that /metrics and the statistics extension add up every
// worker, that load/unload asked of one worker reaches all, that a killed worker is replaced, and that SIGTERM to
// the primary drains every worker with zero lost requests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadInferenceService } from '../src/serve/grpc/server.ts';
import { REPO_ROOT } from './support/env.ts';
import { assertClose, assertResponseMatches, exampleCases } from './support/examples.ts';
import { parsePrometheusText } from './support/prometheus.ts';
import { call, sleep, tempRepository } from './support/serving.ts';
import { waitFor } from './support/wait.ts';
import { startServe, type Started } from './support/serve-cli.ts';

const digits = exampleCases('digits').find((c) => c.requestFile === 'single.json')!;
const mlp = exampleCases('mlp').find((c) => c.requestFile === 'single.json')!;

/** One request on its own connection (no keep-alive), so that the cluster hands it to the next worker. */
function fresh(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = httpRequest(url + path, { method, agent: false, headers: data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    // A connection the cluster hands to a worker at the moment it is killed is never answered: give up on it.
    req.setTimeout(5000, () => req.destroy(new Error(`no answer within 5 s: ${method} ${path}`)));
    req.end(data);
  });
}

const workersOf = (logs: Record<string, unknown>[], msg: string) => new Set(logs.filter((l) => l.msg === msg).map((l) => l.worker));

describe('dais serve --workers 2', () => {
  const repo = tempRepository();
  let s: Started;
  before(async () => {
    repo.add('digits', '1');
    repo.add('mlp', '1');
    s = await startServe([repo.root, '--workers', '2', '--no-monitor', '--grpc-port', '0', '--log-level', 'debug', '--model-control', 'explicit']);
  });
  after(async () => {
    s?.child.kill('SIGTERM');
    await s?.exited;
    repo.remove();
  });

  it('serves from every worker with the right numbers, and /metrics and statistics add up all of them', async () => {
    assert.equal(s.info.workers, 2);
    assert.deepEqual([...workersOf(s.logs, 'worker serving')].sort(), [1, 2]);
    const n = 20;
    for (let i = 0; i < n; i++) {
      const r = await fresh(s.info.url, 'POST', '/v2/models/mlp/infer', mlp.request);
      assert.equal(r.status, 200);
      assertResponseMatches(r.json.outputs, mlp.expected, 'mlp');
    }
    const answered = await waitFor(() => {
      const lines = s.logs.filter((l) => l.msg === 'request' && l.path === '/v2/models/mlp/infer');
      return lines.length >= n && lines; // the last request's log line may follow its answer
    }, { what: `${n} request log lines` });
    assert.equal(answered.length, n);
    assert.deepEqual([...new Set(answered.map((l) => l.worker))].sort(), [1, 2], 'both workers answered requests');
    // Whichever worker answers a scrape, the numbers are the cluster's.
    for (let i = 0; i < 4; i++) {
      const stats = await fresh(s.info.url, 'GET', '/v2/models/mlp/stats');
      assert.equal(stats.status, 200);
      assert.equal(stats.json.model_stats.length, 1);
      assert.equal(stats.json.model_stats[0].inference_count, n);
      assert.equal(stats.json.model_stats[0].inference_stats.success.count, n);
      const metrics = parsePrometheusText((await call(s.info.url, 'GET', '/metrics', undefined, { connection: 'close' })).text);
      const ok = metrics.get('dais_inference_requests_total')!.samples.find((x) => x.labels.model === 'mlp' && x.labels.outcome === 'success');
      assert.equal(ok?.value, n);
      const load = metrics.get('dais_model_load_duration_seconds')!.samples.find((x) => x.labels.model === 'mlp')!;
      assert.ok(load.value > 0 && load.value < 60, `load duration is the longest worker's, not a sum: ${load.value}`);
    }
    const missing = await fresh(s.info.url, 'GET', '/v2/models/nope/stats');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.code, 'MODEL_NOT_FOUND');
  });

  it('unload and load asked of one worker reach every worker', async () => {
    const unloaded = await fresh(s.info.url, 'POST', '/v2/repository/models/digits/unload');
    assert.equal(unloaded.status, 200);
    for (let i = 0; i < 6; i++) {
      const r = await fresh(s.info.url, 'POST', '/v2/models/digits/infer', digits.request);
      assert.equal(r.status, 404, `request ${i} after unload: ${JSON.stringify(r.json)}`);
    }
    const loaded = await fresh(s.info.url, 'POST', '/v2/repository/models/digits/load');
    assert.equal(loaded.status, 200);
    for (let i = 0; i < 6; i++) {
      const r = await fresh(s.info.url, 'POST', '/v2/models/digits/infer', digits.request);
      assert.equal(r.status, 200, `request ${i} after load`);
      assertResponseMatches(r.json.outputs, digits.expected, 'digits');
    }
    const bad = await fresh(s.info.url, 'POST', '/v2/repository/models/nope/load');
    assert.equal(bad.status, 404);
    // A config override (Triton's load API) reaches every worker too; a load without one takes it back.
    const initial = (await fresh(s.info.url, 'GET', '/v2/models/digits/config')).json;
    assert.equal(initial.parameters.dynamic_batching_source.string_value, 'auto');
    const config = JSON.stringify({ max_batch_size: 4, dynamic_batching: { max_queue_delay_microseconds: 1000 } });
    assert.equal((await fresh(s.info.url, 'POST', '/v2/repository/models/digits/load', { parameters: { config } })).status, 200);
    for (let i = 0; i < 6; i++) {
      const c = (await fresh(s.info.url, 'GET', '/v2/models/digits/config')).json;
      assert.equal(c.max_batch_size, 4, `worker answering request ${i}`);
      assert.equal(c.parameters.dynamic_batching_source.string_value, 'configured', `worker answering request ${i}`);
    }
    assert.equal((await fresh(s.info.url, 'POST', '/v2/repository/models/digits/load')).status, 200);
    // Chosen again from each worker's own timing at load (run-plan.ts, autoMaxBatchSize): not always the number it
    // was before on a busy host (60 against 64 once), so the source says it was taken back.
    for (let i = 0; i < 6; i++) {
      const c = (await fresh(s.info.url, 'GET', '/v2/models/digits/config')).json;
      assert.equal(c.parameters.dynamic_batching_source.string_value, 'auto', `worker answering request ${i}`);
      assert.ok(c.max_batch_size > 4, `worker answering request ${i}: ${c.max_batch_size}`);
    }
  });

  it('gRPC on the shared port returns the same numbers as REST, and its statistics are the cluster\'s', async () => {
    const Service = loadInferenceService();
    const client = new Service(`127.0.0.1:${s.info.grpcPort}`, grpc.credentials.createInsecure()) as unknown as Record<string, (req: unknown, cb: (e: grpc.ServiceError | null, r: any) => void) => void> & grpc.Client; // eslint-disable-line @typescript-eslint/no-explicit-any
    const rpc = (method: string, req: unknown) => new Promise<any>((resolve, reject) => client[method](req, (e, r) => (e ? reject(e) : resolve(r)))); // eslint-disable-line @typescript-eslint/no-explicit-any
    try {
      const input = mlp.request.inputs[0];
      const raw = Buffer.from(new Float32Array(input.data.flat(Infinity) as number[]).buffer);
      const r = await rpc('ModelInfer', { model_name: 'mlp', inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape }], raw_input_contents: [raw] });
      const out = Buffer.from(r.raw_output_contents[0]);
      const name = r.outputs[0].name as string;
      assertClose(new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length)), mlp.expected[name].data as number[], 'gRPC mlp');
      const before = (await fresh(s.info.url, 'GET', '/v2/models/mlp/stats')).json.model_stats[0].inference_count;
      const stats = await rpc('ModelStatistics', { name: 'mlp' });
      assert.equal(Number(stats.model_stats[0].inference_count), before);
    } finally {
      client.close();
    }
  });

  it('a worker that dies is replaced, and the others keep serving; the replacement follows earlier unloads', async () => {
    assert.equal((await fresh(s.info.url, 'POST', '/v2/repository/models/digits/unload')).status, 200);
    const victim = s.logs.find((l) => l.msg === 'worker serving' && l.worker === 1)!.pid as number;
    process.kill(victim, 'SIGKILL');
    // Traffic keeps flowing (and succeeding) while the replacement starts.
    const statuses: number[] = [];
    await waitFor(
      async () => {
        const r = await fresh(s.info.url, 'POST', '/v2/models/mlp/infer', mlp.request).catch((e: Error) => e);
        if (!(r instanceof Error)) statuses.push(r.status);
        return workersOf(s.logs, 'worker serving').has(3);
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'a third worker started in place of the killed one' },
    );
    assert.deepEqual(statuses.filter((x) => x !== 200), [], 'answered while the replacement started');
    assert.ok(s.logs.some((l) => l.msg === 'a worker died unexpectedly: starting a new one'));
    for (let i = 0; i < 6; i++) assert.equal((await fresh(s.info.url, 'POST', '/v2/models/mlp/infer', mlp.request)).status, 200);
    await waitFor(() => s.logs.some((l) => l.worker === 3 && l.model === 'digits' && l.msg === 'model version unloaded (unload requested)'), { what: 'the replayed unload to reach the new worker' });
    // The new worker read the repository folder, where digits still is; the unload asked earlier was replayed to it.
    for (let i = 0; i < 6; i++) assert.equal((await fresh(s.info.url, 'POST', '/v2/models/digits/infer', digits.request)).status, 404, `request ${i}`);
  });

  it('SIGTERM to the primary drains every worker: zero lost in-flight requests, exit 0', async () => {
    // Requests that stay in flight ~400 ms: the digits batcher waits that long for company.
    const repo2 = tempRepository();
    repo2.add('digits', '1');
    repo2.config('digits', { dynamic_batching: { max_batch_size: 64, max_queue_delay_ms: 400 } });
    const t = await startServe([repo2.root, '--workers', '2', '--no-monitor', '--log-level', 'info', '--model-control', 'explicit']);
    try {
      let answered = 0;
      const inflight = Array.from({ length: 16 }, () =>
        fresh(t.info.url, 'POST', '/v2/models/digits/infer', digits.request)
          .catch((e: Error) => e)
          .finally(() => answered++),
      );
      // Every request reached a worker (queued there, or already answered) before the signal.
      const queued = async () => parsePrometheusText(await (await fetch(t.info.url + '/metrics')).text()).get('dais_inference_queue_size')?.samples.reduce((n, x) => n + x.value, 0) ?? 0;
      await waitFor(async () => answered + (await queued()) >= 16, { what: 'the 16 requests to reach the workers' });
      t.child.kill('SIGTERM');
      const results = await Promise.all(inflight);
      const lost = results.filter((r) => r instanceof Error || r.status !== 200);
      assert.equal(lost.length, 0, `lost: ${lost.map((r) => (r instanceof Error ? r.message : `${r.status}`)).join('; ')}`);
      for (const r of results) if (!(r instanceof Error)) assertResponseMatches(r.json.outputs, digits.expected, 'digits');
      const code = await Promise.race([t.exited, sleep(15_000).then(() => 'timeout')]);
      assert.equal(code, 0);
      assert.equal(t.logs.filter((l) => l.msg === 'worker stopped' && l.code === 0).length, 2, 'both workers exited 0');
    } finally {
      t.child.kill('SIGKILL');
      repo2.remove();
    }
  });
});

it('--workers with monitoring checks the monitoring flags in the primary, before any worker starts', async () => {
  // Monitoring itself under --workers N is tested in monitor-workers.test.ts.
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'serve', 'examples', '--workers', '2', '--drift-window', '3', '--port', '0'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.notEqual(code, 0);
  assert.match(stderr, /--drift-window must be an integer from 10/);
  assert.doesNotMatch(stderr, /worker/);
});

it('--workers auto starts one worker per CPU this process may use; a bad count names what is allowed', async () => {
  const s = await startServe([join(REPO_ROOT, 'examples/mlp/1/model.onnx'), '--workers', 'auto', '--no-monitor']);
  try {
    assert.equal(s.info.workers, availableParallelism());
    const r = await fresh(s.info.url, 'GET', '/v2/health/ready');
    assert.equal(r.status, 200);
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
  }
  const bad = spawn(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'serve', 'examples', '--workers', 'many', '--port', '0'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  bad.stderr.on('data', (d) => (stderr += d));
  assert.equal(await new Promise<number | null>((resolve) => bad.on('exit', resolve)), 1);
  assert.match(stderr, /--workers must be an integer from 1 to 256 or 'auto', got 'many'/);
});

it('--workers 2 on a missing model exits 1 promptly with the cause, not hanging on its workers', async () => {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'serve', '/nonexistent-dais-model', '--workers', '2', '--no-monitor', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await Promise.race([new Promise<number | null>((resolve) => child.on('exit', resolve)), sleep(30_000).then(() => 'hung')]);
  child.kill('SIGKILL');
  assert.equal(code, 1, stderr);
  assert.match(stderr, /no such file or directory: \/nonexistent-dais-model/);
  assert.match(stderr, /a worker exited before it was serving/);
});

it('--workers 2: workers that keep dying are replaced after a growing delay, never given up on', async () => {
  // Issue 22: six crashing requests used to stop the whole server. Past 5 deaths in a minute, each replacement waits
  // (1 s, then 2 s, …), and the server keeps serving from the worker that is alive meanwhile.
  const s = await startServe([join(REPO_ROOT, 'examples/mlp/1/model.onnx'), '--workers', '2', '--no-monitor', '--log-level', 'info']);
  try {
    const serving = () => s.logs.filter((l) => l.msg === 'worker serving');
    for (let kill = 1; kill <= 7; kill++) {
      const before = serving().length;
      const victim = serving().at(-1)!.pid as number;
      process.kill(victim, 'SIGKILL');
      await waitFor(() => serving().length > before, { timeoutMs: 30_000, intervalMs: 50, what: `a worker in place of the one killed (kill ${kill})` });
    }
    const delayed = s.logs.filter((l) => l.msg === 'workers keep dying: starting a new one after a delay').map((l) => l.delayMs);
    assert.deepEqual(delayed, [1000, 2000]);
    const r = await fresh(s.info.url, 'POST', '/v2/models/model/infer', mlp.request);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assertResponseMatches(r.json.outputs, mlp.expected, 'after the restarts');
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
  }
});
