// The monitoring dashboard in headless Chromium: `dais serve --dashboard`'s page and `dais monitor <url>`'s copy load,
// draw every chart from the server's data (throughput, latency, per-feature drift over time, live accuracy) on real
// canvases, show the drifting features, and leave a screenshot in the test's temp dir.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { Monitor } from '../src/monitor/monitor.ts';
import { serve } from '../src/serve/index.ts';
import { EXAMPLES_DIR, REPO_ROOT, requireTool } from './support/env.ts';
import { FIXTURES, maintenanceRepository, maintenanceRequest, rowsOf, sendRows } from './support/monitor.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dais-dashboard-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('the dashboard renders in Chromium with every chart drawn from live data', async (t) => {
  if (!requireTool(t, 'chromium', 'chromium')) return;
  const repo = await maintenanceRepository();
  // The clock is the test's: each step moves it on by more than a bucket, so the traffic lands in several buckets.
  let clock = Date.now();
  const monitor = new Monitor({ dashboard: true, evaluateIntervalMs: 3_600_000, bucketMs: 200, now: () => clock });
  const server = await serve({ model: repo.root, port: 0, monitor, warmUp: false });
  let child: ReturnType<typeof spawn> | undefined;
  const { chromium } = await import('playwright-core');
  const ctx = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    // Traffic over a few buckets: in-distribution rows, then the shifted copy; feedback on the way.
    const fresh = rowsOf(join(FIXTURES, 'maintenance-fresh.npy'));
    const shifted = rowsOf(join(FIXTURES, 'maintenance-shifted.csv'));
    const labels = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'maintenance', 'heldout.json'), 'utf8')).y as number[];
    const heldout = rowsOf(join(EXAMPLES_DIR, 'maintenance', 'heldout.csv'));
    for (let i = 0; i < 4; i++) {
      await sendRows(server.url, fresh.slice(i * 150, (i + 1) * 150), 25);
      monitor.evaluate();
      clock += 220;
    }
    for (let i = 0; i < 40; i++) {
      const res = await fetch(server.url + '/v2/models/maintenance/infer', { method: 'POST', body: JSON.stringify(maintenanceRequest([heldout[i]])) });
      await res.arrayBuffer();
      await fetch(server.url + '/v2/models/maintenance/feedback', { method: 'POST', body: JSON.stringify({ id: res.headers.get('x-request-id'), truth: labels[i] }) });
      if (i % 10 === 9) clock += 50;
    }
    for (let i = 0; i < 2; i++) {
      await sendRows(server.url, shifted.slice(i * 200, (i + 1) * 200), 25);
      monitor.evaluate();
      clock += 220;
    }

    const page = await ctx.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${server.url}/dashboard`);
    await page.waitForSelector('body[data-rendered]', { timeout: 15_000 });
    const charts = await page.evaluate(() => {
      const w = window as unknown as { __dais: { charts: Record<string, { data: { datasets: { label: string; data: { x: number; y: number }[] }[] } }> } };
      const out: Record<string, { datasets: number; points: number; labels: string[]; inked: number; width: number }> = {};
      for (const [id, c] of Object.entries(w.__dais.charts)) {
        const canvas = document.getElementById(id) as HTMLCanvasElement;
        const px = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] > 0) inked++;
        out[id] = { datasets: c.data.datasets.length, points: c.data.datasets.reduce((n, d) => n + d.data.length, 0), labels: c.data.datasets.map((d) => d.label), inked, width: canvas.getBoundingClientRect().width };
      }
      return out;
    });
    assert.deepEqual(Object.keys(charts).sort(), ['accuracy', 'drift', 'latency', 'throughput']);
    for (const [id, c] of Object.entries(charts)) {
      assert.ok(c.points > 0 && c.width > 200, `${id} has data: ${JSON.stringify(c)}`);
      assert.ok(c.inked > 2000, `${id} is drawn on its canvas (${c.inked} inked pixels)`);
    }
    assert.ok(charts.throughput.points >= 4, JSON.stringify(charts.throughput));
    assert.deepEqual(charts.latency.labels, ['maintenance v1 p50', 'maintenance v1 p95', 'maintenance v1 p99']);
    assert.equal(charts.drift.datasets, 10); // 6 input features + 4 output elements
    assert.ok(charts.drift.labels.includes('air_temperature_k'));
    assert.ok(charts.drift.points >= 30, `PSI over time: ${charts.drift.points} points`);
    assert.ok(charts.accuracy.points >= 1);
    const row = await page.locator('#status tbody tr').first().innerText();
    assert.match(row, /maintenance\s+1\s+drift\s+.*air_temperature_k.*vibration_mm_s/);
    assert.match(row, /\b40\b/); // feedback rows
    assert.ok(requests.every((u) => u.startsWith(server.url)), `no request leaves the server: ${requests.filter((u) => !u.startsWith(server.url))}`);
    assert.equal(errors.length, 0, errors.join('\n'));
    const shot = join(tmp, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot) && statSync(shot).size > 20_000);
    console.log(`dashboard screenshot: ${shot}`);

    // `dais monitor <url>` serves the same page from another process, with the data fetched through it.
    child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'dais.js'), 'monitor', server.url, '--port', '0', '--json', '--refresh-ms', '500'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => createInterface({ input: child!.stdout! }).once('line', resolve));
    const local = JSON.parse(line) as { url: string; server: string };
    assert.equal(local.server, server.url);
    const page2 = await ctx.newPage();
    page2.on('pageerror', (e) => errors.push(e.message));
    await page2.goto(local.url);
    await page2.waitForSelector('body[data-rendered]', { timeout: 15_000 });
    const drift2 = await page2.evaluate(() => (window as unknown as { __dais: { charts: Record<string, { data: { datasets: unknown[] } }> } }).__dais.charts.drift.data.datasets.length);
    assert.equal(drift2, 10);
    assert.equal(errors.length, 0, errors.join('\n'));
    await page2.screenshot({ path: join(tmp, 'dais-monitor.png'), fullPage: true });
  } finally {
    child?.kill('SIGTERM');
    await ctx.close();
    await server.close({ timeoutMs: 1000 });
    repo.remove();
  }
});
