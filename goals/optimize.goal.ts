// `npm run goals optimize`: dais optimize on the examples, every mode, measured in one run.
// Targets (issue 7): on the digits CNN and the 784-128-10 MLP, int8 size ≤ 0.3 × fp32 and accuracy drop ≤ 1 point
// on the held-out set; latency and peak memory before and after come from child processes, one per model.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLES_DIR } from './paths.ts';
import { optimizeModel, parseEvalData, type OptimizeOptions, type OptimizeReport } from '../src/optimize/index.ts';

interface Case {
  model: string;
  options: OptimizeOptions;
  /** Targets checked for this case. */
  maxRatio?: number;
  maxDrop?: number;
}

const cases: Case[] = [
  { model: 'digits', options: { quantize: 'int8-weights' }, maxRatio: 0.3, maxDrop: 0.01 },
  { model: 'digits', options: { quantize: 'int8-dynamic' }, maxRatio: 0.3, maxDrop: 0.01 },
  { model: 'digits', options: { quantize: 'fp16' }, maxDrop: 0.01 },
  { model: 'mlp', options: { quantize: 'int8-weights' }, maxRatio: 0.3, maxDrop: 0.01 },
  { model: 'mlp', options: { quantize: 'int8-dynamic' }, maxRatio: 0.3, maxDrop: 0.01 },
  { model: 'mlp', options: { quantize: 'fp16' }, maxDrop: 0.01 },
  { model: 'keyword', options: { quantize: 'int8-weights' } },
  { model: 'keyword', options: { quantize: 'int8-dynamic' } },
  { model: 'keyword', options: { quantize: 'fp16' } },
  { model: 'maintenance', options: { pruneTrees: 'auto' } },
];

const pct = (x: number | null) => (x === null ? '   -  ' : `${(x * 100).toFixed(2)}%`);
const us = (x: number) => `${(x * 1000).toFixed(0)} µs`;
const mib = (x: number) => `${(x / 1024 / 1024).toFixed(1)}`;

let misses = 0;
const header = ['model', 'mode', 'size ratio', 'acc before', 'acc after', 'drop (pts)', 'latency 1 row', 'batch', 'peak RSS MiB', 'model RSS MiB', 'node/web', 'target'];
const rows: string[][] = [header];
for (const c of cases) {
  const bytes = new Uint8Array(readFileSync(join(EXAMPLES_DIR, c.model, '1', 'model.onnx')));
  const data = parseEvalData(JSON.parse(readFileSync(join(EXAMPLES_DIR, c.model, 'heldout.json'), 'utf8')), `${c.model}/heldout.json`);
  let report: OptimizeReport;
  try {
    report = (await optimizeModel(bytes, { ...c.options, eval: data, measure: { runtime: 'onnxruntime-node', minMs: 500 } })).report;
  } catch (e) {
    rows.push([c.model, String(c.options.quantize ?? c.options.pruneTrees), `error: ${(e as Error).message}`]);
    misses++;
    continue;
  }
  const m = report.measurements!;
  const problems: string[] = [];
  if (c.maxRatio !== undefined && report.size.ratio > c.maxRatio) problems.push(`size ${report.size.ratio.toFixed(3)} > ${c.maxRatio}`);
  if (c.maxDrop !== undefined && (report.drop ?? 1) > c.maxDrop) problems.push(`drop > ${c.maxDrop * 100} pt`);
  if (!report.runtimes.every((r) => r.ok)) problems.push('does not run everywhere');
  if (!report.accepted) problems.push(`refused: ${report.refusal}`);
  misses += problems.length ? 1 : 0;
  rows.push([
    c.model,
    report.mode,
    report.size.ratio.toFixed(3),
    pct(report.comparison.accuracyBefore),
    pct(report.comparison.accuracyAfter),
    ((report.drop ?? 0) * 100).toFixed(2),
    `${us(m.before.latencyMs.median)} → ${us(m.after.latencyMs.median)}`,
    `${m.before.batch.ms.toFixed(1)} → ${m.after.batch.ms.toFixed(1)} ms (${m.before.batch.rows})`,
    `${mib(m.before.peakRssBytes)} → ${mib(m.after.peakRssBytes)}`,
    `${mib(m.before.modelRssBytes)} → ${mib(m.after.modelRssBytes)}`,
    report.runtimes.map((r) => (r.ok ? 'ok' : 'FAIL')).join('/'),
    problems.length ? `MISS: ${problems.join('; ')}` : c.maxRatio !== undefined || c.maxDrop !== undefined ? 'met' : '',
  ]);
}
const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
for (const r of rows) process.stdout.write(r.map((cell, i) => (cell ?? '').padEnd(widths[i])).join('  ').trimEnd() + '\n');
process.stdout.write(
  `\nlatency: median of single-row runs, onnxruntime-node, 1 intra-op thread; batch: median of 5 runs over all held-out rows;\n` +
    `peak RSS: the measuring child process's peak (runtime included); model RSS: what the session added. ${misses ? `${misses} target(s) missed` : 'all targets met'}\n`,
);
process.exit(misses ? 1 : 0);
