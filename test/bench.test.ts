// dais bench end to end on the MLP example, every target, kept short (0.3 s per point, two concurrencies, 2 cold +
// 3 warm Lambda runs): the result file holds real measurements for server, peer, limit, Lambda and edge; the Markdown has the tables; the HTML report loads in headless
// Chromium with every chart drawn from the data, and a screenshot is saved. Unit checks for the pieces below.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, percentile, percentileOf, pooledRoundsQuartiles, pooledRoundsRatio, summarize } from '../src/bench/stats.ts';
import { parseReportLines } from '../src/bench/lambda.ts';
import { barChart, lineChart } from '../src/bench/svg-chart.ts';
import { renderHtml } from '../src/bench/report.ts';
import { EXAMPLES_DIR, REPO_ROOT, requireTool } from './support/env.ts';
import type { BenchResult } from '../src/bench/run.ts';

const OUT = mkdtempSync(join(tmpdir(), 'dais-bench-test-'));
let run: { status: number | null; stdout: string; stderr: string };
let result: BenchResult;

before(() => {
  run = spawnSync(process.execPath, [
    join(REPO_ROOT, 'bin/dais.js'), 'bench', join(EXAMPLES_DIR, 'mlp'),
    '--duration', '0.3', '--concurrency', '1,4', '--cold', '2', '--warm', '3', '--out', OUT,
  ], { encoding: 'utf8', timeout: 240_000 });
  if (run.status === 0) result = JSON.parse(readFileSync(join(OUT, 'results.json'), 'utf8'));
});

test('percentiles are nearest-rank', () => {
  const s = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(s, 50), 50);
  assert.equal(percentile(s, 95), 95);
  assert.equal(percentile(s, 99), 99);
  assert.deepEqual(summarize([3, 1, 2]), { n: 3, min: 1, mean: 2, p50: 2, p95: 3, p99: 3, max: 3 });
  assert.equal(percentileOf([30, 10, 20, 40], 50), 20, 'unsorted samples are sorted first');
  assert.ok(Number.isNaN(percentileOf([], 50)));
  assert.equal(median([4, 1, 3, 2]), 3, 'the goal checks\' median of an even count is the upper middle');
});

test('pooled ratios sum each round over the processes before the median of rounds', () => {
  // Round by round: (10+14)/(12+12) = 1, (9+9)/(10+10) = 0.9, (12+12)/(10+10) = 1.2, (8+12)/(10+10) = 1 -> median of
  // [1, 0.9, 1.2, 1] is the upper middle, 1 (the medians of each process, summed, would read 22/20 = 1.1).
  assert.equal(pooledRoundsRatio([[10, 9, 12, 8], [14, 9, 12, 12]], [[12, 10, 10, 10], [12, 10, 10, 10]]), 1);
  assert.equal(pooledRoundsRatio([[3, 6, 9]], [[1, 2, 3]]), 3);
  assert.throws(() => pooledRoundsRatio([[1, 2]], [[1]]), /same number of rounds/);
  assert.throws(() => pooledRoundsRatio([[]], [[]]), /at least one/);
  assert.throws(() => pooledRoundsRatio([], [[1]]), /a process on each side/);
  assert.throws(() => pooledRoundsRatio([[1]], []), /a process on each side/);
  // The middle half of the same per-round ratios [0.9, 1, 1, 1.2]: the first and third of four (nearest rank).
  assert.deepEqual(pooledRoundsQuartiles([[10, 9, 12, 8], [14, 9, 12, 12]], [[12, 10, 10, 10], [12, 10, 10, 10]]), [0.9, 1]);
  // Nine rounds 1..9 over 1s: the 3rd and the 7th.
  assert.deepEqual(pooledRoundsQuartiles([[9, 1, 8, 2, 7, 3, 6, 4, 5]], [[1, 1, 1, 1, 1, 1, 1, 1, 1]]), [3, 7]);
  assert.deepEqual(pooledRoundsQuartiles([[2]], [[1]]), [2, 2]);
  assert.throws(() => pooledRoundsQuartiles([[1, 2]], [[1]]), /same number of rounds/);
});

test("Lambda's REPORT lines parse into durations, memory and init", () => {
  const text = [
    'START RequestId: a Version: $LATEST',
    'REPORT RequestId: a\tDuration: 3.21 ms\tBilled Duration: 4 ms\tMemory Size: 1024 MB\tMax Memory Used: 88 MB\tInit Duration: 141.75 ms',
    'REPORT RequestId: b\tDuration: 0.88 ms\tBilled Duration: 1 ms\tMemory Size: 1024 MB\tMax Memory Used: 89 MB',
  ].join('\n');
  assert.deepEqual(parseReportLines(text), [
    { durationMs: 3.21, billedMs: 4, memorySizeMb: 1024, maxMemoryUsedMb: 88, initMs: 141.75 },
    { durationMs: 0.88, billedMs: 1, memorySizeMb: 1024, maxMemoryUsedMb: 89, initMs: undefined },
  ]);
});

test('charts carry their data on every mark', () => {
  const svg = lineChart({ id: 'c', title: 'T <x>', xLabel: 'x', yLabel: 'y', xLog: true, series: [{ name: 'a&b', points: [[1, 10], [4, 30], [16, 35]] }] });
  assert.equal((svg.match(/<circle /g) ?? []).length, 3);
  assert.match(svg, /data-series="a&amp;b"/);
  assert.match(svg, /T &lt;x&gt;/);
  assert.match(svg, /data-x="16" data-y="35"/);
  const bars = barChart({ id: 'b', title: 'B', yLabel: 'bytes', yLog: true, bars: [{ label: 'zip', value: 2048 }, { label: 'model', value: 400_000 }] });
  assert.equal((bars.match(/<rect [^>]*data-y/g) ?? []).length, 2);
});

test('dais bench measures server, peer and limit in one run and writes JSON, Markdown and HTML', () => {
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /dais json c= 1: +\d+ req\/s/); // progress on stderr
  assert.equal(result.schema, 'dais-bench/1');
  assert.equal(result.model.name, 'mlp');
  const dj = result.server!.sweeps.find((s) => s.path === 'json' && !s.batching)!;
  const db = result.server!.sweeps.find((s) => s.path === 'binary' && !s.batching)!;
  for (const sw of [dj, db, result.peer!.sweeps[0]]) {
    assert.deepEqual(sw.points.map((p) => p.concurrency), [1, 4]);
    for (const p of sw.points) {
      assert.ok(p.requests > 0 && p.rps > 0, `${sw.server} ${sw.path} c=${p.concurrency}`);
      assert.equal(p.errors + p.non2xx + p.timeouts, 0);
      assert.ok(p.p50Ms > 0 && p.p50Ms <= p.p95Ms && p.p95Ms <= p.p99Ms && p.p99Ms <= p.maxMs);
    }
  }
  assert.ok(result.server!.peakRssMb! > 30, 'server peak RSS from VmHWM');
  assert.ok(result.peer!.peakRssMb! > 30);
  // The binary body carries the 784 floats as 3,136 raw bytes; JSON spells them out.
  assert.ok(result.server!.requestBytes.binary < result.server!.requestBytes.json);
  assert.ok(result.server!.responseBytes.json > 0 && result.server!.responseBytes.binary > 0);
  assert.ok(result.limit!.sequential.runs > 10 && result.limit!.sequential.latencyMs.p50 > 0);
  assert.ok(result.limit!.concurrent.rps > 0);
  const names = result.ratios!.map((r) => r.what);
  assert.ok(names.includes('dais/peer throughput'));
  assert.ok(names.some((n) => n.startsWith('dais/limit throughput')));
  assert.ok(names.some((n) => n.startsWith('dais/limit p50 latency')));
  assert.ok(result.edge!.node!.runs > 0 && result.edge!.node!.latencyMs.p50 > 0);
  // Container: the OCI image's layers, compressed smaller than unpacked.
  const c = result.container!;
  assert.ok(c.layers.length >= 1 && c.compressedBytes > 1e6 && c.compressedBytes < c.unpackedBytes);
  assert.equal(c.platform, `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`);
  // Lambda through dais invoke: 2 cold starts with INIT, 3 warm invocations, the zip's size.
  const l = result.lambda!;
  assert.equal(l.cold.n, 2);
  assert.equal(l.warm.n, 3);
  assert.ok(l.cold.initMs.p50 > 0 && l.warm.durationMs.p50 > 0 && l.memoryMb >= 128);
  assert.ok(l.packageBytes.zip! > 100_000 && l.packageBytes.unzipped > l.packageBytes.zip!);
  // Edge: the browser bundle's sizes always; its in-page latency where Chromium is installed.
  assert.ok(result.edge!.bundle!.totalGzipBytes > 0 && result.edge!.bundle!.totalGzipBytes < result.edge!.bundle!.totalBytes);
  if (existsSync('/usr/bin/chromium')) assert.ok(result.edge!.browser!.runs > 0 && result.edge!.browser!.latencyMs.p50 > 0);
  else assert.ok(result.skipped.some((x) => x.target === 'edge-browser'));
  const md = readFileSync(join(OUT, 'report.md'), 'utf8');
  assert.match(md, /\| dais json \| 4 \| [\d,]+ \|/);
  assert.match(md, /## Ratios \(same run\)/);
  assert.match(md, /## Monthly cost at 10,000,000 requests/);
});

test('the HTML report renders in headless Chromium with every chart drawn from data', async (t) => {
  assert.equal(run.status, 0, run.stderr);
  if (!requireTool(t, 'chromium', 'chromium')) return;
  const { chromium } = await import('playwright-core');
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'dais-chromium-')), {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`file://${join(OUT, 'report.html')}`);
    const charts = await page.evaluate(() => [...document.querySelectorAll('svg.chart')].map((s) => ({
      id: s.id,
      marks: s.querySelectorAll('[data-y]').length,
      ys: [...s.querySelectorAll('[data-y]')].map((e) => Number(e.getAttribute('data-y'))),
      width: s.getBoundingClientRect().width,
      empty: s.classList.contains('empty'),
    })));
    const byId = Object.fromEntries(charts.map((c) => [c.id, c]));
    for (const id of ['chart-throughput', 'chart-latency', 'chart-latency-p99', 'chart-targets', 'chart-cold-warm', 'chart-sizes', 'chart-cost']) {
      assert.ok(byId[id], `${id} present`);
      assert.ok(!byId[id].empty && byId[id].marks > 0 && byId[id].width > 100, `${id} drawn`);
      assert.ok(byId[id].ys.every((y: number) => Number.isFinite(y) && y > 0), `${id} values`);
    }
    // Throughput chart: dais json/binary (+ batched when serving has it), peer, limit; two concurrencies each.
    assert.ok(byId['chart-throughput'].marks >= 8);
    assert.equal(byId['chart-cold-warm'].marks, 5);
    assert.ok(byId['chart-sizes'].marks >= 7); // model, image, lambda zip and unzipped, edge bundle and gzip
    const embedded = await page.evaluate(() => JSON.parse(document.getElementById('bench-result')!.textContent!));
    assert.equal(embedded.model.name, 'mlp');
    assert.deepEqual(errors, []);
    const shot = join(OUT, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot) && statSync(shot).size > 10_000);
    console.log(`report screenshot: ${shot}`);
  } finally {
    await ctx.close();
  }
});

test('the report renders without server data, naming what was not measured', () => {
  const r = { ...result, server: undefined, peer: undefined, limit: undefined, ratios: undefined, skipped: [{ target: 'lambda', reason: "no 'dais invoke'" }] } as BenchResult;
  const html = renderHtml(r);
  assert.match(html, /server not measured in this run/);
  assert.match(html, /no &#39;dais invoke&#39;/);
});

test('dais bench refuses bad input with one line naming the cause', () => {
  const dais = (args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'bench', ...args], { encoding: 'utf8' });
  let r = dais([join(EXAMPLES_DIR, 'mlp'), '--targets', 'server,gpu']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--targets: unknown target 'gpu'/);
  r = dais(['/nonexistent/model.onnx']);
  assert.match(r.stderr, /model not found: \/nonexistent\/model.onnx/);
  r = dais([join(EXAMPLES_DIR, 'mlp', '1', 'model.onnx'), '--duration', '0']);
  assert.match(r.stderr, /--duration must be seconds/);
});

test("the goals' batching peer answers each request's rows as torch did, joining requests read together", async () => {
  // src/bench/peer-server.ts mode batch: the bound the hello-world goal is read against (goals/serving-defaults.ts).
  const { spawn } = await import('node:child_process');
  const { connect } = await import('node:net');
  const { createInterface } = await import('node:readline');
  const { encodeInferRequest, requestFromJson } = await import('../src/core/index.ts');
  const child = spawn(process.execPath, ['--import', join(REPO_ROOT, 'bin', 'typescript.mjs'), join(REPO_ROOT, 'src', 'bench', 'peer-server.ts'), 'batch', join(EXAMPLES_DIR, 'mlp', '1', 'model.onnx')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const { port } = JSON.parse(await new Promise<string>((r) => createInterface({ input: child.stdout! }).once('line', r))) as { port: number };
    const batch = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'requests', 'batch-10.json'), 'utf8')) as { inputs: { data: number[] | number[][] }[] };
    const expected = (JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'expected.json'), 'utf8')) as Record<string, { outputs: { probabilities: { data: number[] } } }>)['batch-10.json'].outputs.probabilities.data;
    const x = (batch.inputs[0].data as number[][]).flat();
    // Row i alone, JSON for even rows and binary for odd ones; row 9 as the first two rows' batch (shape [2, 784]).
    const requests = Array.from({ length: 10 }, (_, i) => {
      const rows = i === 9 ? [0, 1] : [i];
      const json = { inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 784], data: rows.flatMap((r) => x.slice(r * 784, (r + 1) * 784)) }] };
      if (i % 2 === 0) return { rows, head: 'content-type: application/json\r\n', body: Buffer.from(JSON.stringify(json)) };
      const enc = encodeInferRequest(requestFromJson(json), () => true);
      return { rows, head: `content-type: application/octet-stream\r\ninference-header-content-length: ${enc.headerLength}\r\n`, body: Buffer.from(enc.body) };
    });
    let joined = false;
    for (let attempt = 0; attempt < 3 && !joined; attempt++) {
      const before = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { runs: number; requests: number };
      const sockets = await Promise.all(requests.map(() => new Promise<import('node:net').Socket>((r) => { const s = connect(port, '127.0.0.1', () => r(s)); })));
      // Every request written in one go, so that the server reads them in the same turn of its event loop.
      const answers = sockets.map((s) => new Promise<Buffer>((resolve) => { const chunks: Buffer[] = []; s.on('data', (c) => chunks.push(c)); s.on('end', () => resolve(Buffer.concat(chunks))); }));
      sockets.forEach((s, i) => s.write(Buffer.concat([Buffer.from(`POST /v2/models/mlp/infer HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n${requests[i].head}content-length: ${requests[i].body.length}\r\n\r\n`), requests[i].body])));
      const bodies = await Promise.all(answers);
      bodies.forEach((raw, i) => {
        const split = raw.indexOf('\r\n\r\n');
        const head = raw.subarray(0, split).toString();
        assert.match(head, /^HTTP\/1.1 200/, head);
        let body = raw.subarray(split + 4);
        if (/transfer-encoding: chunked/i.test(head)) body = dechunk(body);
        let data: number[];
        const binary = /inference-header-content-length: (\d+)/i.exec(head);
        if (binary) data = Array.from(new Float32Array(body.buffer.slice(body.byteOffset + Number(binary[1]), body.byteOffset + body.length)));
        else data = (JSON.parse(body.toString()) as { outputs: { data: number[] }[] }).outputs[0].data;
        const want = requests[i].rows.flatMap((r) => expected.slice(r * 10, (r + 1) * 10));
        assert.equal(data.length, want.length, `request ${i}`);
        data.forEach((v, j) => assert.ok(Math.abs(v - want[j]) <= 1e-4 * Math.abs(want[j]) + 1e-7, `request ${i} value ${j}: ${v} against torch's ${want[j]}`));
      });
      const after = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { runs: number; requests: number };
      assert.equal(after.requests - before.requests, requests.length);
      joined = after.runs - before.runs < requests.length;
    }
    assert.ok(joined, 'requests written together were never joined into one run in three tries');
  } finally {
    child.kill();
  }
});

/** An HTTP/1.1 chunked body's bytes. */
function dechunk(b: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    const size = parseInt(b.subarray(at, eol).toString(), 16);
    if (!size) return Buffer.concat(parts);
    parts.push(b.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
