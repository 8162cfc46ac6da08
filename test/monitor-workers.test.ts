// Monitoring under `dais serve --workers 2` answers as one process does: the same request stream (fixed
// x-request-ids, each request on its own connection so both workers serve) sent to a one-process server and to a
// two-worker server gives the same canary split, the same shadow comparison, the same drift reports, the same live
// accuracy from feedback and the same prediction log rows. Real processes, real SQLite files.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DatabaseSync as Database } from '@photostructure/sqlite';
import { startServe } from './support/serve-cli.ts';
import { FIXTURES, maintenanceRepository, maintenanceRequest, rowsOf } from './support/monitor.ts';
import { parsePrometheusText } from './support/prometheus.ts';
import { waitFor } from './support/wait.ts';

const shifted = rowsOf(join(FIXTURES, 'maintenance-shifted.csv'));
const ROWS_PER_REQUEST = 4;
const REQUESTS = shifted.length / ROWS_PER_REQUEST; // 100 requests, 400 rows: within the drift window of 500

interface Server {
  child: ChildProcess;
  url: string;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

async function serveCli(args: string[]): Promise<Server> {
  const { child, info, logs, exited } = await startServe([...args, '--log-level', 'debug']);
  return { child, url: info.url, logs, exited };
}

/** One POST/GET on its own connection (no keep-alive), so node:cluster hands consecutive requests to different workers. */
function once(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const h = { ...headers, ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}) };
    const req = httpRequest(url + path, { method, agent: false, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

interface Observed {
  versions: string[];
  feedback: unknown[];
  drift: Record<string, unknown>;
  series: unknown;
  metrics: Record<string, number>;
  log: unknown[];
  workers: Set<unknown>;
}

/** The same stream, the same questions: everything that must not depend on the number of worker processes. */
async function observe(extra: string[], repoRoot: string, db: string): Promise<Observed> {
  const s = await serveCli([repoRoot, '--log-db', db, '--drift-window', '500', '--drift-min-rows', '100', ...extra]);
  const versions: string[] = [];
  const feedback: unknown[] = [];
  const drift: Record<string, unknown> = {};
  let series: unknown;
  let metrics: Record<string, number> = {};
  try {
    for (let i = 0; i < REQUESTS; i++) {
      const r = await once(s.url, 'POST', '/v2/models/maintenance/infer', maintenanceRequest(shifted.slice(i * ROWS_PER_REQUEST, (i + 1) * ROWS_PER_REQUEST)), { 'x-request-id': `stream-${i}` });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      versions.push(r.json.model_version);
    }
    // Shadow runs finish after their client's answer: wait until the monitor has seen all of them.
    await waitFor(async () => ((await once(s.url, 'GET', '/v2/monitor/series')).json.versions as { version: string; shadow?: { requests: number } }[]).find((v) => v.version === '3')?.shadow?.requests === REQUESTS, { what: `${REQUESTS} shadow runs of version 3` });
    // Feedback for the first 60 requests (truth 0 for every row), each on a fresh connection: the prediction is
    // often held by the other worker.
    for (let i = 0; i < 60; i++) {
      const r = await once(s.url, 'POST', '/v2/models/maintenance/feedback', { id: `stream-${i}`, truth: [0, 0, 0, 0] });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      feedback.push(r.json);
    }
    for (const v of ['1', '2', '3']) {
      const r = await once(s.url, 'GET', `/v2/models/maintenance/versions/${v}/drift`);
      assert.equal(r.status, 200);
      const { generatedAt: _, ...report } = r.json;
      drift[v] = report;
    }
    const sr = await once(s.url, 'GET', '/v2/monitor/series');
    series = (sr.json.versions as Record<string, unknown>[]).map((v) => ({ model: v.model, version: v.version, status: v.status, drifted: v.drifted, performance: { ...(v.performance as object), history: undefined }, shadow: v.shadow }));
    const text = await (await fetch(s.url + '/metrics')).text();
    const parsed = parsePrometheusText(text);
    for (const name of ['dais_drift_status', 'dais_live_accuracy', 'dais_shadow_agreement_ratio', 'dais_drift_window_rows']) {
      for (const sample of parsed.get(name)?.samples ?? []) metrics[`${name}${JSON.stringify(sample.labels)}`] = sample.value;
    }
  } finally {
    s.child.kill('SIGTERM');
  }
  assert.equal(await s.exited, 0);
  const sqlite = new Database(db, { readOnly: true });
  const log = sqlite.prepare('SELECT request_id, role, version, inputs, outputs, error FROM predictions ORDER BY request_id, role').all();
  const truths = sqlite.prepare('SELECT request_id, version, truth FROM feedback ORDER BY request_id').all();
  sqlite.close();
  const workers = new Set(s.logs.filter((l) => l.msg === 'request').map((l) => l.worker));
  return { versions, feedback, drift, series, metrics, log: [...log, ...truths], workers };
}

/** The stream alone (no monitoring): the versions that answered, and how many requests version 3 (the shadow) ran. */
async function routeOnly(extra: string[], repoRoot: string): Promise<{ versions: string[]; shadowRuns: number }> {
  const s = await serveCli([repoRoot, '--no-monitor', ...extra]);
  try {
    const versions: string[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const r = await once(s.url, 'POST', '/v2/models/maintenance/infer', maintenanceRequest(shifted.slice(i * ROWS_PER_REQUEST, (i + 1) * ROWS_PER_REQUEST)), { 'x-request-id': `stream-${i}` });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      versions.push(r.json.model_version);
    }
    const shadowRuns = async () => (await once(s.url, 'GET', '/v2/models/maintenance/versions/3/stats')).json.model_stats[0].inference_stats.success.count as number;
    await waitFor(async () => (await shadowRuns()) >= REQUESTS, { what: `${REQUESTS} shadow runs of version 3` });
    return { versions, shadowRuns: await shadowRuns() };
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
  }
}

describe('monitoring under --workers 2', () => {
  let repo: Awaited<ReturnType<typeof maintenanceRepository>>;
  let one: Observed;
  let two: Observed;
  before(async () => {
    repo = await maintenanceRepository(['1', '2', '3']);
    writeFileSync(join(repo.root, 'maintenance', 'config.json'), JSON.stringify({ traffic: { '1': 60, '2': 40 }, shadow: '3' }));
    one = await observe([], repo.root, join(repo.root, 'one.sqlite'));
    two = await observe(['--workers', '2'], repo.root, join(repo.root, 'two.sqlite'));
  });
  after(() => repo?.remove());

  it('both workers served the stream', () => {
    assert.deepEqual(two.workers, new Set([1, 2]));
  });

  it('the canary split and the shadow comparison are the same as one process', () => {
    assert.deepEqual(two.versions, one.versions);
    assert.deepEqual(new Set(one.versions), new Set(['1', '2']));
    assert.deepEqual(two.series, one.series);
    const shadow = (one.series as { version: string; shadow?: { requests: number; rows: number; agree: number } }[]).find((v) => v.version === '3')!.shadow!;
    assert.deepEqual([shadow.requests, shadow.rows, shadow.agree], [REQUESTS, shifted.length, shifted.length]); // the same model: it always agrees
  });

  it('drift reports are the same as one process (and flag the shifted features)', () => {
    assert.deepEqual(two.drift, one.drift);
    assert.equal((one.drift['1'] as { status: string }).status, 'drift');
  });

  it('feedback answers and live accuracy are the same as one process', () => {
    assert.deepEqual(two.feedback, one.feedback);
    assert.deepEqual(two.metrics, one.metrics);
    assert.ok(Object.keys(one.metrics).some((k) => k.startsWith('dais_live_accuracy')), JSON.stringify(one.metrics));
  });

  it('with --no-monitor the canary split and the shadow runs still happen, the same under --workers 2', async () => {
    const routed = await routeOnly(['--workers', '2'], repo.root);
    assert.deepEqual(routed.versions, one.versions);
    assert.equal(routed.shadowRuns, REQUESTS);
  });

  it('the prediction log holds the same rows as one process', () => {
    assert.equal((one.log as { role: string }[]).filter((r) => r.role === 'primary').length, REQUESTS);
    assert.deepEqual(two.log, one.log);
  });
});
