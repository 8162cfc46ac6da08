// Live drift on a real server (127.0.0.1, port 0) serving the maintenance example with a profile of its training
// rows: fresh rows from the training distribution are not flagged (false alarms over many windows stay under the
// configured level), a shifted copy of heldout.csv is flagged on exactly the shifted features, the report and the
// Prometheus gauges agree, and the webhook fires once per crossing (retried when the receiver fails).
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DriftReport } from '../src/monitor/window.ts';
import { Monitor } from '../src/monitor/monitor.ts';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { EXAMPLES_DIR } from './support/env.ts';
import { FIXTURES, maintenanceRepository, rowsOf, sendRows, webhookReceiver } from './support/monitor.ts';
import { parsePrometheusText } from './support/prometheus.ts';
import { waitFor } from './support/wait.ts';

const fresh = rowsOf(join(FIXTURES, 'maintenance-fresh.npy'));
const heldout = rowsOf(join(EXAMPLES_DIR, 'maintenance', 'heldout.csv'));
const shifted = rowsOf(join(FIXTURES, 'maintenance-shifted.csv'));
const FEATURES = ['air_temperature_k', 'process_temperature_k', 'rotational_speed_rpm', 'torque_nm', 'tool_wear_min', 'vibration_mm_s'];
const SHIFTED = ['air_temperature_k', 'vibration_mm_s'];

async function driftReport(url: string, path = '/v2/models/maintenance/drift'): Promise<DriftReport> {
  const res = await fetch(url + path);
  assert.equal(res.status, 200);
  return (await res.json()) as DriftReport;
}

describe('live drift', () => {
  let repo: Awaited<ReturnType<typeof maintenanceRepository>>;
  let server: RunningServer;
  let monitor: Monitor;

  before(async () => {
    repo = await maintenanceRepository();
    monitor = new Monitor({ evaluateIntervalMs: 3_600_000 });
    server = await serve({ model: repo.root, port: 0, monitor, warmUp: false });
  });
  after(async () => {
    await server?.close({ timeoutMs: 1000 });
    repo?.remove();
  });

  it('says how many rows it still needs before 100 have arrived', async () => {
    await sendRows(server.url, fresh.slice(0, 50));
    const r = await driftReport(server.url);
    assert.equal(r.status, 'insufficient_data');
    assert.equal(r.window.rows, 50);
    assert.equal(r.window.minRows, 100);
    assert.equal(r.window.size, 500);
    assert.match(r.message!, /50 of the 100 rows/);
  });

  it('rows from the training distribution: false alarms over 56 windows stay under the configured level', async () => {
    await sendRows(server.url, fresh.slice(50, 500));
    const reports: DriftReport[] = [];
    for (let end = 500; end <= fresh.length; end += 100) {
      if (end > 500) await sendRows(server.url, fresh.slice(end - 100, end));
      reports.push(await driftReport(server.url));
    }
    assert.equal(reports.length, 56);
    const first = reports[0];
    assert.equal(first.window.rows, 500);
    assert.equal(first.features.length, 10); // 6 inputs + label + 3 probabilities (output drift)
    assert.deepEqual(
      first.features.filter((f) => f.side === 'input').map((f) => f.name),
      FEATURES,
    );
    assert.equal(first.thresholds.alpha, 0.01);
    assert.equal(first.thresholds.pValuePerFeature, 0.001); // Bonferroni over 10 features
    const flagged = reports.filter((r) => r.status === 'drift').length;
    assert.ok(flagged / reports.length <= first.thresholds.alpha, `${flagged} of ${reports.length} windows flagged: ${reports.filter((r) => r.status === 'drift').map((r) => r.drifted.join('+')).join(', ')}`);
    // Per feature, the tests are not anti-conservative: p < 0.05 in at most 5% of feature-windows.
    const tests = reports.flatMap((r) => r.features);
    const small = tests.filter((f) => f.pValue < 0.05).length;
    assert.ok(small / tests.length <= 0.05, `${small} of ${tests.length} feature tests had p < 0.05`);
    assert.ok(first.features.every((f) => f.psi < 0.1), JSON.stringify(first.features.map((f) => [f.name, f.psi])));
  });

  it('a shifted copy of heldout.csv is flagged on exactly the shifted features, with the drop in the outputs', async () => {
    await sendRows(server.url, shifted);
    const r = await driftReport(server.url);
    assert.equal(r.status, 'drift');
    const inputs = r.features.filter((f) => f.side === 'input');
    assert.deepEqual(
      inputs.filter((f) => f.status === 'drift').map((f) => f.name),
      SHIFTED,
    );
    for (const f of inputs) {
      if (SHIFTED.includes(f.name)) {
        assert.ok(f.ks!.pValue < 1e-10 && f.psi > 0.25, `${f.name}: ${JSON.stringify(f)}`);
        assert.ok(f.mean! > f.referenceMean!, `${f.name} moved up`);
      } else assert.equal(f.status, 'ok', `${f.name}: ${JSON.stringify(f)}`);
    }
    // The model sees hotter, rougher machines: more 'failure'/'wear' labels — output drift on the label.
    const label = r.features.find((f) => f.name === 'label')!;
    assert.equal(label.kind, 'categorical');
    assert.equal(label.status, 'drift');
    assert.ok(label.chiSquare!.pValue < 1e-6);
  });

  it('the Prometheus gauges carry the same values as the report', async () => {
    const r = await driftReport(server.url);
    const text = await (await fetch(server.url + '/metrics')).text();
    const families = parsePrometheusText(text);
    const psi = families.get('dais_drift_psi')!;
    const air = psi.samples.find((s) => s.labels.feature === 'air_temperature_k')!;
    assert.deepEqual(air.labels, { model: 'maintenance', version: '1', feature: 'air_temperature_k', side: 'input' });
    assert.ok(Math.abs(air.value - r.features.find((f) => f.name === 'air_temperature_k')!.psi) < 1e-9);
    assert.equal(families.get('dais_drift_status')!.samples[0].value, 1);
    assert.equal(families.get('dais_drift_window_rows')!.samples[0].value, 500);
    const drifting = families.get('dais_drift_feature_drifting')!.samples.filter((s) => s.value === 1 && s.labels.side === 'input').map((s) => s.labels.feature);
    assert.deepEqual(drifting.sort(), SHIFTED);
    assert.ok(families.get('dais_drift_p_value')!.samples.length === 10);
    assert.ok(families.get('dais_drift_ks_statistic')!.samples.length === 9); // not for the categorical label
  });

  it('unknown models get 404 from the drift endpoint', async () => {
    const r = await fetch(server.url + '/v2/models/nope/drift');
    assert.equal(r.status, 404);
    assert.match(((await r.json()) as { error: string }).error, /model 'nope' is not in the repository/);
  });
});

describe('profiles', () => {
  it('a version without a profile reports no_profile with the command that makes one, and picks up one written later', async () => {
    const withProfile = await maintenanceRepository();
    const repo = await maintenanceRepository(['1'], { profile: false });
    const monitor = new Monitor({ evaluateIntervalMs: 3_600_000 });
    const server = await serve({ model: repo.root, port: 0, monitor, warmUp: false });
    try {
      let r = await driftReport(server.url);
      assert.equal(r.status, 'no_profile');
      assert.match(r.message!, /run 'dais profile .*maintenance\/1 --data <reference data>' to write .*maintenance\/1\/profile\.json/);
      copyFileSync(join(withProfile.root, 'maintenance', '1', 'profile.json'), join(repo.root, 'maintenance', '1', 'profile.json'));
      monitor.evaluate(); // sees the new file and loads it: the version then has a window (status insufficient_data)
      await waitFor(() => (monitor.series().versions as { status: string }[]).some((v) => v.status === 'insufficient_data'), { what: 'the profile written later to be loaded' });
      await sendRows(server.url, fresh.slice(0, 200));
      r = await driftReport(server.url);
      assert.equal(r.status, 'ok');
      assert.equal(r.window.rows, 200);
    } finally {
      await server.close({ timeoutMs: 1000 });
      repo.remove();
      withProfile.remove();
    }
  });
});

describe('drift alerts', () => {
  it('POSTs once per crossing (drift, resolved, drift), not again while the state holds, retrying a failed delivery', async () => {
    const repo = await maintenanceRepository();
    const hook = await webhookReceiver([500]); // the first delivery fails once, then succeeds on retry
    const monitor = new Monitor({ evaluateIntervalMs: 3_600_000, webhook: { url: hook.url, retries: 3, backoffMs: 20 } });
    const server = await serve({ model: repo.root, port: 0, monitor, warmUp: false });
    try {
      const step = async (rows: number[][]) => {
        await sendRows(server.url, rows);
        monitor.evaluate();
        await monitor.notifier!.flush();
      };
      await step(fresh.slice(0, 500)); // ok → ok: nothing to say
      assert.equal(hook.received.length, 0);
      await step(shifted); // 400 shifted rows of 500: drift
      const first = hook.received.filter((r) => r.status === 200);
      assert.equal(first.length, 1);
      assert.equal(hook.received.length, 2, 'one failed attempt, one retry');
      assert.equal(first[0].body.event, 'drift');
      assert.deepEqual((first[0].body.drifted as string[]).filter((f) => FEATURES.includes(f)), SHIFTED);
      assert.equal(first[0].body.model, 'maintenance');
      assert.equal(first[0].body.report, '/v2/models/maintenance/versions/1/drift');
      await step(shifted.slice(0, 200)); // still drifting: no repeat
      await step(heldout.slice(0, 100));
      assert.equal(hook.received.length, 2);
      await step(fresh.slice(500, 1000)); // the window holds only in-distribution rows again
      assert.equal(hook.received.length, 3);
      assert.equal(hook.received[2].body.event, 'resolved');
      await step(fresh.slice(1000, 1200));
      assert.equal(hook.received.length, 3);
      await step(shifted);
      assert.equal(hook.received.length, 4);
      assert.equal(hook.received[3].body.event, 'drift');
      assert.deepEqual(
        monitor.notifier!.deliveries.map((d) => [d.event.event, d.ok, d.attempts]),
        [
          ['drift', true, 2],
          ['resolved', true, 1],
          ['drift', true, 1],
        ],
      );
      const metrics = parsePrometheusText(await (await fetch(server.url + '/metrics')).text());
      assert.equal(metrics.get('dais_drift_alerts_total')!.samples.find((s) => s.labels.outcome === 'delivered')!.value, 3);
    } finally {
      await server.close({ timeoutMs: 1000 });
      await hook.close();
      repo.remove();
    }
  });
});
