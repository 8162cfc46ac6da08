// A bench result as Markdown (for READMEs and pull requests) and as one self-contained HTML page with charts.
import type { BenchResult, Sweep } from './run.ts';
import { barChart, CHART_CSS, emptyChart, esc, lineChart, type LineSeries } from './svg-chart.ts';

/** The cost side of the report, computed by the caller from `dais cost` (bench does not depend on cost). */
export interface CostSection {
  requestsPerMonth: number;
  note: string;
  inputs: Record<string, string>;
  targets: { target: string; label: string; kind: string; monthlyUsd: number; notes: string[] }[];
  breakEven: { serverless: string; alwaysOn: string; requestsPerMonth: number | null; summary: string }[];
  curves: { requestsPerMonth: number[]; series: { target: string; usd: number[] }[] };
}

const n0 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v < 10 ? v.toFixed(3) : v.toFixed(1));
const kib = (v: number | undefined) => (v === undefined ? '–' : v < 1024 * 1024 ? `${(v / 1024).toFixed(1)} KiB` : `${(v / 1024 / 1024).toFixed(2)} MiB`);

function sweepName(s: Sweep): string {
  return `${s.server} ${s.path}${s.batching ? ' batched' : ''}`;
}

function allSweeps(r: BenchResult): Sweep[] {
  return [...(r.server?.sweeps ?? []), ...(r.peer?.sweeps ?? [])];
}

/** Sizes per target: the model, the Lambda zip, the edge bundle (raw and gzip). */
function sizes(r: BenchResult): { label: string; value: number; group: string }[] {
  const out = [{ label: 'model file', value: r.model.sizeBytes, group: 'model' }];
  if (r.container) {
    out.push({ label: 'image compressed', value: r.container.compressedBytes, group: 'container' });
    out.push({ label: 'image unpacked', value: r.container.unpackedBytes, group: 'container' });
  }
  if (r.lambda?.packageBytes.zip) out.push({ label: 'lambda zip', value: r.lambda.packageBytes.zip, group: 'lambda' });
  if (r.lambda?.packageBytes.unzipped) out.push({ label: 'lambda unzipped', value: r.lambda.packageBytes.unzipped, group: 'lambda' });
  if (r.edge?.bundle) {
    out.push({ label: 'edge bundle', value: r.edge.bundle.totalBytes, group: 'edge' });
    out.push({ label: 'edge gzip', value: r.edge.bundle.totalGzipBytes, group: 'edge' });
  }
  return out;
}

/** One latency per runtime: the floor, each target, at one request in flight. */
function latencyPerTarget(r: BenchResult): { label: string; value: number; group: string }[] {
  const out: { label: string; value: number; group: string }[] = [];
  if (r.limit) out.push({ label: 'limit (ort-node)', value: r.limit.sequential.latencyMs.p50, group: 'in process' });
  const c1 = (s?: Sweep) => s?.points.find((p) => p.concurrency === 1)?.p50Ms;
  const dj = r.server?.sweeps.find((s) => s.path === 'json' && !s.batching);
  const db = r.server?.sweeps.find((s) => s.path === 'binary' && !s.batching);
  if (c1(dj) !== undefined) out.push({ label: 'dais JSON', value: c1(dj)!, group: 'over HTTP' });
  if (c1(db) !== undefined) out.push({ label: 'dais binary', value: c1(db)!, group: 'over HTTP' });
  if (c1(r.peer?.sweeps[0]) !== undefined) out.push({ label: 'peer JSON', value: c1(r.peer?.sweeps[0])!, group: 'over HTTP' });
  if (r.lambda) out.push({ label: 'lambda warm', value: r.lambda.warm.durationMs.p50, group: 'lambda' });
  if (r.edge?.node) out.push({ label: 'wasm Node', value: r.edge.node.latencyMs.p50, group: 'in process' });
  if (r.edge?.browser) out.push({ label: 'wasm Chromium', value: r.edge.browser.latencyMs.p50, group: 'in process' });
  return out;
}

export function renderMarkdown(r: BenchResult, cost?: CostSection): string {
  let md = `# dais bench: ${r.model.name}\n\n`;
  md += `Model \`${r.model.path}\` (${kib(r.model.sizeBytes)}), request \`${r.model.requestFile}\`. `;
  md += `Measured ${r.createdAt.slice(0, 10)} on ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGb.toFixed(1)} GB, Node ${r.machine.node}; ${r.settings.durationS} s per point; 1-minute load average ${r.machine.loadAvg.start.toFixed(1)} at the start, ${r.machine.loadAvg.end?.toFixed(1) ?? '?'} at the end.\n\n`;
  const lat = latencyPerTarget(r);
  if (lat.length) {
    md += '## Latency per target (one request in flight, p50)\n\n| target | p50 ms |\n|---|---:|\n';
    for (const l of lat) md += `| ${l.label} | ${ms(l.value)} |\n`;
    md += '\n';
  }
  const sweeps = allSweeps(r);
  if (sweeps.length) {
    md += '## Server sweep (load from a separate autocannon process, servers visited in turn at each concurrency)\n\n| server | concurrency | req/s | p50 ms | p95 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|---:|\n';
    for (const s of sweeps) for (const p of s.points) md += `| ${sweepName(s)} | ${p.concurrency} | ${n0(p.rps)} | ${ms(p.p50Ms)} | ${ms(p.p95Ms)} | ${ms(p.p99Ms)} | ${p.errors + p.non2xx + p.timeouts} |\n`;
    md += `\nPeak RSS: dais ${n0(r.server?.peakRssMb)} MB, peer ${n0(r.peer?.peakRssMb)} MB. `;
    md += `Body sizes: JSON request ${r.server?.requestBytes.json} B / response ${r.server?.responseBytes.json} B; binary request ${r.server?.requestBytes.binary} B / response ${r.server?.responseBytes.binary} B.\n`;
    const batched = r.server?.sweeps.filter((s) => s.batching) ?? [];
    const b = batched.find((x) => x.meanBatchRows !== undefined);
    if (b) md += `The batched server (${JSON.stringify(b.batchingConfig)}) ran ${b.meanBatchRows!.toFixed(2)} rows per model run on average over its JSON and binary points.\n`;
    md += '\n';
  }
  if (r.limit) {
    md += `Limit (onnxruntime-node in process): ${ms(r.limit.sequential.latencyMs.p50)} ms p50 one at a time (${n0(r.limit.sequential.rps)} runs/s); ${n0(r.limit.concurrent.rps)} runs/s with ${r.limit.concurrent.inFlight} in flight.\n\n`;
  }
  if (r.ratios?.length) {
    md += '## Ratios (same run)\n\n| ratio | concurrency | value |\n|---|---:|---:|\n';
    for (const x of r.ratios) md += `| ${x.what} | ${x.concurrency ?? ''} | ${x.value.toFixed(2)} |\n`;
    md += '\n';
  }
  if (r.container) {
    md += `## Container image (${r.container.platform})\n\n${kib(r.container.compressedBytes)} compressed (pulled), ${kib(r.container.unpackedBytes)} unpacked, in ${r.container.layers.length} layers; it runs the dais serve measured above.\n\n`;
  }
  if (r.lambda) {
    const l = r.lambda;
    md += `## Lambda (local emulator, ${l.memoryMb} MB)\n\n| | n | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|\n`;
    md += `| cold: init | ${l.cold.n} | ${ms(l.cold.initMs.p50)} | ${ms(l.cold.initMs.p95)} | ${ms(l.cold.initMs.max)} |\n`;
    md += `| cold: duration | ${l.cold.n} | ${ms(l.cold.durationMs.p50)} | ${ms(l.cold.durationMs.p95)} | ${ms(l.cold.durationMs.max)} |\n`;
    md += `| warm: duration | ${l.warm.n} | ${ms(l.warm.durationMs.p50)} | ${ms(l.warm.durationMs.p95)} | ${ms(l.warm.durationMs.max)} |\n`;
    md += `\nMax memory used ${n0(l.maxMemoryUsedMb)} MB; function.zip ${kib(l.packageBytes.zip)}, unzipped ${kib(l.packageBytes.unzipped)}.\n\n`;
  }
  if (r.edge) {
    md += '## Edge\n\n';
    if (r.edge.node) md += `- WebAssembly in Node (${r.edge.node.backend}): p50 ${ms(r.edge.node.latencyMs.p50)} ms, p95 ${ms(r.edge.node.latencyMs.p95)} ms over ${r.edge.node.runs} runs\n`;
    if (r.edge.browser) md += `- WebAssembly in headless Chromium: p50 ${ms(r.edge.browser.latencyMs.p50)} ms, p95 ${ms(r.edge.browser.latencyMs.p95)} ms over ${r.edge.browser.runs} calls (samples of ${r.edge.browser.callsPerSample} calls: the page clock is 0.1 ms coarse); load ${n0(r.edge.browser.loadMs)} ms\n`;
    if (r.edge.bundle) md += `- browser bundle: ${kib(r.edge.bundle.totalBytes)}, ${kib(r.edge.bundle.totalGzipBytes)} gzipped\n`;
    md += '\n';
  }
  const sz = sizes(r);
  md += '## Sizes\n\n| artefact | size |\n|---|---:|\n';
  for (const s of sz) md += `| ${s.label} | ${kib(s.value)} |\n`;
  md += '\n';
  if (cost) {
    md += `## Monthly cost at ${cost.requestsPerMonth.toLocaleString('en-US')} requests (\`dais cost\`)\n\n${cost.note}\n\n| target | kind | USD / month |\n|---|---|---:|\n`;
    for (const t of [...cost.targets].sort((a, b) => a.monthlyUsd - b.monthlyUsd)) md += `| ${t.target} | ${t.kind} | ${t.monthlyUsd.toFixed(2)} |\n`;
    md += '\nBreak-even:\n\n';
    for (const b of cost.breakEven) md += `- ${b.summary}\n`;
    md += '\nMeasured inputs:\n\n';
    for (const [k, v] of Object.entries(cost.inputs)) md += `- ${k}: ${v}\n`;
    md += '\n';
  }
  if (r.skipped.length) {
    md += '## Not measured in this run\n\n';
    for (const s of r.skipped) md += `- ${s.target}: ${s.reason}\n`;
    md += '\n';
  }
  return md;
}

export function renderHtml(r: BenchResult, cost?: CostSection): string {
  const sweeps = allSweeps(r);
  const conc = (metric: 'rps' | 'p50Ms' | 'p99Ms'): LineSeries[] => sweeps.map((s) => ({ name: sweepName(s), points: s.points.map((p) => [p.concurrency, p[metric]] as [number, number]), dashed: s.server === 'peer' }));
  const charts: string[] = [];
  if (sweeps.length) {
    const rpsSeries = conc('rps');
    if (r.limit) {
      const ceiling = Math.max(r.limit.sequential.rps, r.limit.concurrent.rps);
      rpsSeries.push({ name: 'limit (in process)', points: r.settings.concurrency.map((c) => [c, ceiling] as [number, number]), dashed: true });
    }
    charts.push(lineChart({ id: 'chart-throughput', title: 'Throughput vs concurrency', xLabel: 'concurrent connections', yLabel: 'requests / s', series: rpsSeries, xLog: true, xTicks: r.settings.concurrency }));
    charts.push(lineChart({ id: 'chart-latency', title: 'p50 latency vs concurrency', xLabel: 'concurrent connections', yLabel: 'ms', series: conc('p50Ms'), xLog: true, xTicks: r.settings.concurrency }));
    charts.push(lineChart({ id: 'chart-latency-p99', title: 'p99 latency vs concurrency', xLabel: 'concurrent connections', yLabel: 'ms', series: conc('p99Ms'), xLog: true, xTicks: r.settings.concurrency }));
  } else charts.push(emptyChart('chart-throughput', 'Throughput vs concurrency', 'server not measured in this run'));
  const lat = latencyPerTarget(r);
  charts.push(lat.length ? barChart({ id: 'chart-targets', title: 'Latency per target, one request in flight (p50)', yLabel: 'ms', bars: lat, yLog: true }) : emptyChart('chart-targets', 'Latency per target', 'nothing measured'));
  if (r.lambda) {
    const l = r.lambda;
    charts.push(barChart({
      id: 'chart-cold-warm', title: 'Lambda: cold vs warm', yLabel: 'ms', yLog: true,
      bars: [
        { label: 'init p50', value: l.cold.initMs.p50, group: 'cold' }, { label: 'init p95', value: l.cold.initMs.p95, group: 'cold' },
        { label: 'cold dur p50', value: l.cold.durationMs.p50, group: 'cold' },
        { label: 'warm dur p50', value: l.warm.durationMs.p50, group: 'warm' }, { label: 'warm dur p95', value: l.warm.durationMs.p95, group: 'warm' },
      ],
    }));
  } else charts.push(emptyChart('chart-cold-warm', 'Lambda: cold vs warm', r.skipped.find((s) => s.target === 'lambda')?.reason ?? 'lambda not asked for'));
  charts.push(barChart({ id: 'chart-sizes', title: 'Size per target', yLabel: 'bytes', bars: sizes(r), yLog: true }));
  if (cost) {
    charts.push(lineChart({
      id: 'chart-cost', title: 'Monthly cost vs volume (break-even)', xLabel: 'requests a month', yLabel: 'USD / month', xLog: true, yLog: true,
      series: cost.curves.series.map((s) => ({ name: s.target, points: cost.curves.requestsPerMonth.map((x, i) => [x, s.usd[i]] as [number, number]), dashed: /fargate|ec2/.test(s.target) })),
      markers: cost.breakEven.filter((b) => b.requestsPerMonth !== null && b.serverless.startsWith('aws-lambda') && !b.serverless.includes('http-api')).map((b) => ({ x: b.requestsPerMonth!, label: `${b.serverless} = ${b.alwaysOn}` })),
    }));
  }
  const md = renderMarkdown(r, cost);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dais bench: ${esc(r.model.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:14px/1.45 system-ui,sans-serif;max-width:980px;margin:24px auto;padding:0 16px;color:#222}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px}td{text-align:right}td:first-child{text-align:left}h1{font-size:22px}h2{font-size:17px;margin-top:28px}code{background:#f4f4f4;padding:0 3px}${CHART_CSS}</style>
</head><body>
<section id="charts">${charts.join('\n')}</section>
<section id="tables">${markdownToHtml(md)}</section>
<script type="application/json" id="bench-result">${JSON.stringify(r).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}

/** Enough Markdown for the report's own output: headings, tables, lists, paragraphs, inline code. */
function markdownToHtml(md: string): string {
  const inline = (s: string) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');
  const out: string[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.startsWith('## ')) out.push(`<h2>${inline(l.slice(3))}</h2>`);
    else if (l.startsWith('# ')) out.push(`<h1>${inline(l.slice(2))}</h1>`);
    else if (l.startsWith('|')) {
      const rows: string[][] = [];
      while (i < lines.length && lines[i].startsWith('|')) {
        if (!/^\|[-:|]+\|$/.test(lines[i])) rows.push(lines[i].slice(1, -1).split('|').map((c) => c.trim()));
        i++;
      }
      i--;
      out.push(`<table><thead><tr>${rows[0].map((c) => `<th>${inline(c)}</th>`).join('')}</tr></thead><tbody>${rows.slice(1).map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`);
    } else if (l.startsWith('- ')) {
      const items: string[] = [];
      while (i < lines.length && lines[i].startsWith('- ')) items.push(`<li>${inline(lines[i++].slice(2))}</li>`);
      i--;
      out.push(`<ul>${items.join('')}</ul>`);
    } else if (l.trim()) out.push(`<p>${inline(l)}</p>`);
  }
  return out.join('\n');
}
