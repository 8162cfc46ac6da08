// Child process of measure.ts: loads one model and times it, alone in its process so that its peak memory is
// its own. Prints one JSON line (a Measurement) on stdout.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { EvalData } from './evaluate.ts';

const [modelPath, dataPath, runtime, minMs] = process.argv.slice(2);

/**
 * Peak resident memory of this process. Linux's getrusage maxrss (process.resourceUsage) carries the parent's
 * high-water mark across fork+exec, so it would report the parent's size; /proc's VmHWM belongs to this
 * process's own address space.
 */
function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}
const ort = runtime === 'onnxruntime-web' ? await import('onnxruntime-web') : await import('onnxruntime-node');
const data = JSON.parse(readFileSync(dataPath, 'utf8')) as EvalData;
const tensorOf = (datatype: EvalData['datatype'], flat: number[], dims: number[]) => {
  if (datatype === 'INT64') return new ort.Tensor('int64', BigInt64Array.from(flat, (v) => BigInt(Math.round(v))), dims);
  if (datatype === 'INT32') return new ort.Tensor('int32', Int32Array.from(flat), dims);
  if (datatype === 'FP64') return new ort.Tensor('float64', Float64Array.from(flat), dims);
  return new ort.Tensor('float32', Float32Array.from(flat), dims);
};
// Every input: the per-row ones sliced together, fixed ones (a scalar, a state for one row) as they are.
const feeds = (rows: number) => ({
  ...Object.fromEntries((data.fixed ?? []).map((f) => [f.name, tensorOf(f.datatype, f.data, f.shape)])),
  ...Object.fromEntries([data, ...(data.extra ?? [])].map((e) => [e.input, tensorOf(e.datatype, e.x.slice(0, rows).flat(), [Math.min(rows, e.x.length), ...e.rowShape])])),
});
const one = feeds(data.batchSize ?? 1);
// A batch of every row, where the model takes one (not with a fixed batch or inputs shaped for one row).
const batchRows = data.fixed?.length || data.batchSize ? (data.batchSize ?? 1) : data.x.length;
const all = feeds(batchRows);
const baselineRss = peakRss();
const rssBefore = process.memoryUsage().rss;

const t0 = performance.now();
const bytes = new Uint8Array(readFileSync(modelPath));
const session = await ort.InferenceSession.create(bytes, runtime === 'onnxruntime-web' ? {} : { intraOpNumThreads: 1 });
// For onnxruntime-web this includes compiling the wasm runtime, the same for both models.
const loadMs = performance.now() - t0;
for (let i = 0; i < 5; i++) await session.run(one);
const times: number[] = [];
const budget = Number(minMs || 300);
const start = performance.now();
while (times.length < 20 || (performance.now() - start < budget && times.length < 5000)) {
  const s = performance.now();
  await session.run(one);
  times.push(performance.now() - s);
}
times.sort((a, b) => a - b);
await session.run(all);
const batchTimes: number[] = [];
for (let i = 0; i < 5; i++) {
  const b0 = performance.now();
  await session.run(all);
  batchTimes.push(performance.now() - b0);
}
const batchMs = batchTimes.sort((a, b) => a - b)[2];
const rssAfter = process.memoryUsage().rss;
const peak = peakRss();
process.stdout.write(
  JSON.stringify({
    runtime,
    loadMs,
    latencyMs: { median: times[Math.floor(times.length / 2)], p95: times[Math.floor(times.length * 0.95)], runs: times.length },
    batch: { rows: batchRows, ms: batchMs },
    peakRssBytes: peak,
    // What loading and running this model added to the process, over a process that had loaded the runtime.
    modelRssBytes: Math.max(0, rssAfter - rssBefore),
    peakOverBaselineBytes: Math.max(0, peak - baselineRss),
  }) + '\n',
);
