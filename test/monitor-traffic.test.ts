// Canary, shadow and feedback on a real server: a 90/10 split over 1,000 requests, a shadow version whose answers
// are logged and compared but never returned, and ground truth turning into live accuracy (and MAE).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DatabaseSync as Database } from '@photostructure/sqlite';
import { createModel, writeOnnx } from '../src/formats/onnx/onnx.ts';
import { node, tensor, valueInfo } from '../src/formats/onnx/graph.ts';
import { Monitor } from '../src/monitor/monitor.ts';
import { WeightedRoundRobin } from '../src/serve/traffic.ts';
import { ConfigError, parseModelConfig } from '../src/layout/model-config.ts';
import { serve } from '../src/serve/index.ts';
import { EXAMPLES_DIR } from './support/env.ts';
import { maintenanceRepository, maintenanceRequest, rowsOf } from './support/monitor.ts';
import { parsePrometheusText } from './support/prometheus.ts';
import { waitFor } from './support/wait.ts';

const heldout = rowsOf(join(EXAMPLES_DIR, 'maintenance', 'heldout.csv'));
const heldoutLabels = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'maintenance', 'heldout.json'), 'utf8')).y as number[];
const expected = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'maintenance', 'expected.json'), 'utf8'));
const batch8 = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'maintenance', 'requests', 'batch-8.json'), 'utf8'));
const FLOAT = 1;

/** Same interface as the maintenance forest, but every row is 'failure' (2) with probabilities [0, 0, 1]. */
function alwaysFailureModel(): Uint8Array {
  return writeOnnx(
    createModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'always_failure',
        node: [node('MatMul', ['input', 'w'], ['m']), node('Add', ['m', 'b'], ['probabilities']), node('ArgMax', ['probabilities'], ['label'], { axis: 1, keepdims: 0 })],
        initializer: [tensor('w', [6, 3], new Float32Array(18)), tensor('b', [3], new Float32Array([0, 0, 1]))],
        input: [valueInfo('input', FLOAT, ['N', 6])],
        output: [valueInfo('label', 7, ['N']), valueInfo('probabilities', FLOAT, ['N', 3])],
      },
    }),
  );
}

/** y = Σ x (a regression model): [N, 6] → [N, 1]. */
function sumModel(): Uint8Array {
  return writeOnnx(
    createModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'sum',
        node: [node('MatMul', ['input', 'w'], ['y'])],
        initializer: [tensor('w', [6, 1], new Float32Array(6).fill(1))],
        input: [valueInfo('input', FLOAT, ['N', 6])],
        output: [valueInfo('y', FLOAT, ['N', 1])],
      },
    }),
  );
}

async function infer(url: string, body: unknown, path = '/v2/models/maintenance/infer') {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as { model_version: string; outputs: { name: string; data: number[] }[]; error?: string };
  assert.equal(res.status, 200, json.error);
  return { ...json, id: res.headers.get('x-request-id')! }; // the x-request-id, not the body's echo of the request's own id
}

async function feedback(url: string, body: unknown, path = '/v2/models/maintenance/feedback') {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe('canary and shadow', () => {
  it('weighted round-robin is exact over each cycle of the weights and skips versions not serving', () => {
    const rr = new WeightedRoundRobin([
      { key: '1', weight: 90 },
      { key: '2', weight: 10 },
    ]);
    const picks = Array.from({ length: 100 }, () => rr.next()!);
    assert.equal(picks.filter((p) => p === '2').length, 10);
    assert.ok(picks.slice(0, 10).includes('2'), 'the small version is spread out, not bunched at the end');
    assert.deepEqual(new Set(Array.from({ length: 20 }, () => rr.next((k) => k !== '2'))), new Set(['1']));
  });

  it('config: traffic and shadow are validated with the field named', () => {
    assert.deepEqual(parseModelConfig(JSON.stringify({ traffic: { '1': 90, '02': 10 }, shadow: 3 }), 'c.json'), { traffic: { '1': 90, '2': 10 }, shadow: '3' });
    let err: ConfigError | undefined;
    try {
      parseModelConfig(JSON.stringify({ traffic: { v1: 90, '2': -1 }, shadow: 'latest' }), 'm/config.json');
    } catch (e) {
      err = e as ConfigError;
    }
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /'traffic\.v1': keys must be version numbers/);
    assert.match(err.message, /'traffic\.2' must be a weight ≥ 0, got -1/);
    assert.match(err.message, /'shadow' must be one version number/);
    assert.throws(() => parseModelConfig(JSON.stringify({ traffic: { '1': 50, '2': 50 }, shadow: '2' }), 'c.json'), /version 2 is both 'shadow' and in 'traffic'/);
  });

  it('a 90/10 canary serves within a few percent of 90/10 over 1,000 requests; a named version is always that version', async () => {
    const repo = await maintenanceRepository(['1', '2'], { profile: false });
    writeFileSync(join(repo.root, 'maintenance', 'config.json'), JSON.stringify({ traffic: { '1': 90, '2': 10 } }));
    const monitor = new Monitor();
    const server = await serve({ model: repo.root, port: 0, monitor, warmUp: false });
    try {
      await monitor.ready();
      const counts: Record<string, number> = {};
      let next = 0;
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          while (next < 1000) {
            const i = next++;
            const r = await infer(server.url, maintenanceRequest([heldout[i % heldout.length]]));
            counts[r.model_version] = (counts[r.model_version] ?? 0) + 1;
          }
        }),
      );
      assert.equal(counts['1'] + counts['2'], 1000);
      assert.ok(Math.abs(counts['1'] / 1000 - 0.9) <= 0.03, JSON.stringify(counts));
      assert.ok(Math.abs(counts['2'] / 1000 - 0.1) <= 0.03, JSON.stringify(counts));
      for (let i = 0; i < 20; i++) assert.equal((await infer(server.url, maintenanceRequest([heldout[i]]), '/v2/models/maintenance/versions/2/infer')).model_version, '2');
      // Metadata and readiness calls do not move the split.
      assert.equal((await fetch(server.url + '/v2/models/maintenance')).status, 200);
    } finally {
      await server.close({ timeoutMs: 1000 });
      repo.remove();
    }
  });

  it("shadow outputs never reach the client: they are logged and compared with the serving version's", async () => {
    const repo = await maintenanceRepository(['1'], { profile: false });
    mkdirSync(join(repo.root, 'maintenance', '2'));
    writeFileSync(join(repo.root, 'maintenance', '2', 'model.onnx'), alwaysFailureModel());
    writeFileSync(join(repo.root, 'maintenance', 'config.json'), JSON.stringify({ traffic: { '1': 1 }, shadow: '2' }));
    const db = join(repo.root, '..', `${repo.root.split('/').pop()}-shadow.sqlite`);
    const monitor = await new Monitor({ log: { file: db } }).open();
    const server = await serve({ model: repo.root, port: 0, monitor, warmUp: false });
    let primaryFailures = 0;
    const ids: string[] = [];
    try {
      await monitor.ready();
      const known = await infer(server.url, batch8);
      assert.equal(known.model_version, '1');
      assert.deepEqual(known.outputs.find((o) => o.name === 'label')!.data, expected['batch-8.json'].outputs.label.data); // scikit-learn's, not the shadow's all-2s
      ids.push(known.id);
      primaryFailures += (known.outputs.find((o) => o.name === 'label')!.data as number[]).filter((v) => v === 2).length;
      for (const row of heldout.slice(0, 100)) {
        const r = await infer(server.url, maintenanceRequest([row]));
        assert.equal(r.model_version, '1');
        const label = r.outputs.find((o) => o.name === 'label')!.data[0];
        const probs = r.outputs.find((o) => o.name === 'probabilities')!.data;
        assert.notDeepEqual(probs, [0, 0, 1], 'the shadow answer leaked');
        if (label === 2) primaryFailures++;
        ids.push(r.id);
      }
      // Shadow runs finish after the client's answer: wait until the monitor has seen all 101.
      type Series = { versions: { version: string; shadow?: { requests: number; rows: number; agree: number; agreement: number; against: string } }[] };
      const shadowOf = () => (monitor.series() as Series).versions.find((v) => v.version === '2')?.shadow;
      const shadow = await waitFor(() => (shadowOf()?.requests === 101 ? shadowOf() : undefined), { what: '101 shadow runs' });
      assert.equal(shadow.requests, 101);
      assert.equal(shadow.rows, 108);
      assert.equal(shadow.against, '1');
      assert.equal(shadow.agree, primaryFailures); // the shadow says 'failure' for every row
      const metrics = parsePrometheusText(await (await fetch(server.url + '/metrics')).text());
      const ratio = metrics.get('dais_shadow_agreement_ratio')!.samples[0];
      assert.deepEqual(ratio.labels, { model: 'maintenance', version: '2', primary_version: '1' });
      assert.ok(Math.abs(ratio.value - primaryFailures / 108) < 1e-12);
    } finally {
      await server.close({ timeoutMs: 1000 });
    }
    const sqlite = new Database(db, { readOnly: true });
    const rows = sqlite.prepare('SELECT role, version, request_id, outputs FROM predictions').all() as unknown as { role: string; version: string; request_id: string; outputs: string }[];
    sqlite.close();
    repo.remove();
    const shadows = rows.filter((r) => r.role === 'shadow');
    assert.equal(shadows.length, 101);
    const shadowIds = new Set(shadows.map((r) => r.request_id));
    assert.deepEqual(ids.filter((id) => !shadowIds.has(id)), [], `of ${JSON.stringify(shadows.slice(0, 3).map((r) => r.request_id))}`);
    assert.ok(shadows.every((r) => r.version === '2' && (JSON.parse(r.outputs).label.data as number[]).every((v) => v === 2)));
    assert.equal(rows.filter((r) => r.role === 'primary' && r.version === '1').length, 101);
  });
});

describe('feedback', () => {
  it('ground truth turns into live accuracy per version (in the report and /metrics), and wrong answers lower it', async () => {
    const repo = await maintenanceRepository(['1']);
    const monitor = new Monitor({ evaluateIntervalMs: 3_600_000 });
    const server = await serve({ model: repo.root, port: 0, monitor, warmUp: false });
    try {
      const ids: string[] = [];
      for (const row of heldout) ids.push((await infer(server.url, maintenanceRequest([row]))).id);
      for (let i = 0; i < ids.length; i++) {
        const r = await feedback(server.url, { id: ids[i], truth: heldoutLabels[i] });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      let report = (await (await fetch(server.url + '/v2/models/maintenance/drift')).json()) as { performance: { task: string; feedback: number; accuracy: number } };
      assert.equal(report.performance.task, 'classification');
      assert.equal(report.performance.feedback, 400);
      assert.equal(report.performance.accuracy, 0.895); // examples/maintenance/README.md: 89.5% held-out accuracy
      // 100 more answers whose ground truth disagrees with every prediction.
      for (const row of heldout.slice(0, 100)) {
        const r = await infer(server.url, maintenanceRequest([row]));
        const predicted = r.outputs.find((o) => o.name === 'label')!.data[0];
        const fb = await feedback(server.url, { id: r.id, truth: (predicted + 1) % 3 });
        assert.equal(fb.body.correct, 0);
      }
      report = (await (await fetch(server.url + '/v2/models/maintenance/drift')).json()) as typeof report;
      assert.equal(report.performance.feedback, 500);
      assert.equal(report.performance.accuracy, 358 / 500);
      const metrics = parsePrometheusText(await (await fetch(server.url + '/metrics')).text());
      assert.equal(metrics.get('dais_live_accuracy')!.samples[0].value, 358 / 500);
      assert.equal(metrics.get('dais_feedback_rows_total')!.samples[0].value, 500);
      // A batch takes one truth per row, by the request's own id too.
      const b = await infer(server.url, batch8);
      const fb = await feedback(server.url, { id: 'maintenance-batch-8', truth: expected['batch-8.json'].outputs.label.data });
      assert.equal(fb.status, 200, JSON.stringify(fb.body));
      assert.equal(fb.body.correct, 8);
      assert.ok(b.id);
      // Refusals name the cause.
      let r = await feedback(server.url, { id: ids[0], truth: 1 });
      assert.equal(r.status, 400);
      assert.match(r.body.error, /already recorded/);
      r = await feedback(server.url, { id: 'no-such-request', truth: 1 });
      assert.equal(r.status, 404);
      assert.match(r.body.error, /no recent prediction of model 'maintenance' with id 'no-such-request'/);
      const c = await infer(server.url, maintenanceRequest(heldout.slice(0, 8)));
      r = await feedback(server.url, { id: c.id, truth: [1, 2] });
      assert.equal(r.status, 400);
      assert.match(r.body.error, /had 8 rows; "truth" has 2/);
      r = await feedback(server.url, { truth: 1 });
      assert.match(r.body.error, /feedback needs "id"/);
    } finally {
      await server.close({ timeoutMs: 1000 });
      repo.remove();
    }
  });

  it('a regression model gets live MAE', async () => {
    const repo = await maintenanceRepository(['1'], { profile: false });
    mkdirSync(join(repo.root, 'sum', '1'), { recursive: true });
    writeFileSync(join(repo.root, 'sum', '1', 'model.onnx'), sumModel());
    const monitor = new Monitor();
    const server = await serve({ model: repo.root, port: 0, monitor, warmUp: false });
    try {
      const errors = [1, -3, 0.5, 2];
      for (let i = 0; i < errors.length; i++) {
        const row = heldout[i];
        const r = await infer(server.url, maintenanceRequest([row]), '/v2/models/sum/infer');
        const predicted = r.outputs[0].data[0];
        assert.ok(Math.abs(predicted - row.reduce((a, b) => a + b)) < 1e-2);
        assert.equal((await feedback(server.url, { id: r.id, truth: predicted + errors[i] }, '/v2/models/sum/feedback')).status, 200);
      }
      const metrics = parsePrometheusText(await (await fetch(server.url + '/metrics')).text());
      const mae = metrics.get('dais_live_mae')!.samples.find((s) => s.labels.model === 'sum')!;
      assert.ok(Math.abs(mae.value - 6.5 / 4) < 1e-3, String(mae.value));
    } finally {
      await server.close({ timeoutMs: 1000 });
      repo.remove();
    }
  });
});
