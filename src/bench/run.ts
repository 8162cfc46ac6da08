// `dais bench`: every target that exists, measured side by side in one run on one machine, with the limit
// (bare onnxruntime-node in process) and the peer (a hand-written node:http server) measured in the same run so
// the ratios mean something. Each target that cannot run here is listed with the reason, never left out silently.
import { cpus, loadavg, totalmem } from 'node:os';
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { runLoad, type LoadResult } from './load.ts';
import { measureLimit, type LimitResult } from './limit.ts';
import { resolveBenchModel, type BenchModel } from './requests.ts';
import { REPO_ROOT, startDais, startPeer, type ServerProcess } from './servers.ts';
import { rounded } from './stats.ts';
import { benchLambda, type LambdaBench } from './lambda.ts';
import { benchEdge, type EdgeBench } from './edge.ts';
import { benchContainer, type ContainerBench } from './container.ts';

export const TARGETS = ['server', 'container', 'lambda', 'edge-node', 'edge-browser'] as const;
export type BenchTarget = (typeof TARGETS)[number];

export interface BenchOptions {
  model: string;
  request?: string;
  targets: BenchTarget[];
  durationS: number;
  concurrency: number[];
  /** Lambda: cold and warm invocations. */
  cold: number;
  warm: number;
  progress?: (line: string) => void;
}

export interface SweepPoint {
  concurrency: number;
  requests: number;
  rps: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

export interface Sweep {
  server: 'dais' | 'peer';
  path: 'json' | 'binary';
  batching: boolean;
  batchingConfig?: { max_batch_size: number; max_queue_delay_ms: number };
  /** Rows per model run the batched server reported (from /metrics) over all its points, JSON and binary. */
  meanBatchRows?: number;
  points: SweepPoint[];
}

export interface Ratio {
  what: string;
  concurrency?: number;
  value: number;
}

export interface BenchResult {
  schema: 'dais-bench/1';
  createdAt: string;
  /** loadAvg: the 1-minute load average when the run started and ended; above the CPU count, other work shared the machine. */
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string; platform: string; arch: string; loadAvg: { start: number; end?: number } };
  model: { name: string; path: string; sizeBytes: number; requestFile: string };
  settings: { durationS: number; concurrency: number[]; targets: BenchTarget[]; cold: number; warm: number };
  server?: {
    peakRssMb?: number;
    requestBytes: { json: number; binary: number };
    responseBytes: { json: number; binary: number };
    sweeps: Sweep[];
  };
  peer?: { peakRssMb?: number; sweeps: Sweep[] };
  limit?: LimitResult;
  ratios?: Ratio[];
  container?: ContainerBench;
  lambda?: LambdaBench;
  edge?: EdgeBench;
  skipped: { target: string; reason: string }[];
}

const BATCHING = { max_batch_size: 64, max_queue_delay_ms: 1 };

function point(r: LoadResult): SweepPoint {
  return {
    concurrency: r.connections, requests: r.requests, rps: r.rps, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx,
    p50Ms: r.latencyMs.p50, p95Ms: r.latencyMs.p95, p99Ms: r.latencyMs.p99, meanMs: r.latencyMs.mean, maxMs: r.latencyMs.max,
  };
}

function inferUrl(s: ServerProcess): string {
  return `${s.url}/v2/models/${encodeURIComponent(s.model)}/infer`;
}

function bodyFor(m: BenchModel, path: 'json' | 'binary'): { headers: Record<string, string>; body: Buffer } {
  return path === 'json'
    ? { headers: { 'content-type': m.json.contentType }, body: Buffer.from(m.json.body) }
    : { headers: { 'content-type': m.binary.contentType, 'inference-header-content-length': String(m.binary.headerLength) }, body: Buffer.from(m.binary.body) };
}

/** One request before the sweep: the server must answer it with 200, and its size is recorded. */
async function preflight(s: ServerProcess, m: BenchModel, path: 'json' | 'binary', warmups: number): Promise<number> {
  const { headers, body } = bodyFor(m, path);
  let size = 0;
  for (let i = 0; i < warmups; i++) {
    const res = await fetch(inferUrl(s), { method: "POST", headers, body: new Uint8Array(body) });
    const buf = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`${s.url} answered ${res.status} to the ${path} request: ${new TextDecoder().decode(buf).slice(0, 200)}`);
    size = buf.length;
  }
  return size;
}

/** Rows and runs so far, from the server's Prometheus batch-size histogram (there once serving has batching). */
async function batchCounters(s: ServerProcess): Promise<{ rows: number; runs: number } | undefined> {
  try {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const sum = /^dais_inference_batch_size_sum(?:\{[^}]*\})?\s+([\d.e+]+)/m.exec(text);
    const count = /^dais_inference_batch_size_count(?:\{[^}]*\})?\s+([\d.e+]+)/m.exec(text);
    if (!sum || !count) return undefined;
    return { rows: Number(sum[1]), runs: Number(count[1]) };
  } catch {
    return undefined;
  }
}

/** Whether this checkout's server reads <repo>/<model>/config.json with dynamic_batching (issue 3). */
function servingSupportsBatching(): boolean {
  return existsSync(join(REPO_ROOT, 'src/serve/model-config.ts')) && existsSync(join(REPO_ROOT, 'src/core/batcher.ts'));
}

/** A one-model repository in a temp folder, with or without a dynamic-batching config. */
function repositoryFor(m: BenchModel, batching: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'dais-bench-repo-'));
  mkdirSync(join(dir, m.name, '1'), { recursive: true });
  copyFileSync(m.path, join(dir, m.name, '1', 'model.onnx'));
  // Without a config the server batches automatically now: the unbatched lane says max_batch_size 1 (off).
  const dynamic = batching ? BATCHING : { max_batch_size: 1 };
  if (batching || servingSupportsBatching()) writeFileSync(join(dir, m.name, 'config.json'), JSON.stringify({ dynamic_batching: dynamic }));
  return dir;
}

interface Lane {
  who: 'dais' | 'peer';
  path: 'json' | 'binary';
  batching: boolean;
  server: ServerProcess;
}

/**
 * dais (batching off, and on where serving has it) and the peer run side by side, and the load visits them in
 * turn at each concurrency (dais JSON, dais binary, …, peer JSON, then the next concurrency): on a machine whose
 * background load drifts, the points compared in a ratio are measured minutes apart at most, not a whole sweep.
 */
async function benchServers(m: BenchModel, o: BenchOptions, result: BenchResult): Promise<void> {
  const log = o.progress ?? (() => {});
  const repos: string[] = [];
  const daisServers: { batching: boolean; server: ServerProcess }[] = [];
  let peer: ServerProcess | undefined;
  const requestBytes = { json: Buffer.byteLength(m.json.body), binary: m.binary.body.length };
  const responseBytes = { json: 0, binary: 0 };
  try {
    const modes = servingSupportsBatching() ? [false, true] : [false];
    if (modes.length === 1) result.skipped.push({ target: 'server batching on', reason: "this checkout's dais serve has no dynamic batching (issue 3)" });
    for (const batching of modes) {
      const repo = repositoryFor(m, batching);
      repos.push(repo);
      log(`server: dais serve (${batching ? `dynamic batching ${JSON.stringify(BATCHING)}` : 'no batching'})`);
      const server = await startDais(repo);
      daisServers.push({ batching, server });
      for (const path of ['json', 'binary'] as const) responseBytes[path] = await preflight(server, m, path, 20);
    }
    log('peer: node:http + onnxruntime-node, one request one run (JSON)');
    try {
      peer = await startPeer(m.path);
      await preflight(peer, m, 'json', 20);
    } catch (e) {
      await peer?.stop();
      peer = undefined;
      skip(result, 'peer', e, log);
    }
    const lanes: Lane[] = daisServers.flatMap(({ batching, server }) => (['json', 'binary'] as const).map((path) => ({ who: 'dais' as const, path, batching, server })));
    if (peer) lanes.push({ who: 'peer', path: 'json', batching: false, server: peer });
    const before = await Promise.all(daisServers.map((d) => batchCounters(d.server)));
    const configs = o.concurrency.flatMap((c) => lanes.map((l) => {
      const { headers, body } = bodyFor(m, l.path);
      return { url: inferUrl(l.server), method: 'POST' as const, headers, bodyBase64: body.toString('base64'), connections: c, durationS: o.durationS };
    }));
    let i = 0;
    const results = await runLoad(configs, (r) => {
      const l = lanes[i++ % lanes.length];
      const p = point(r);
      log(`  ${l.who} ${l.path}${l.batching ? ' batched' : ''} c=${String(p.concurrency).padStart(2)}: ${p.rps.toFixed(0).padStart(6)} req/s  p50 ${p.p50Ms.toFixed(2)} ms  p95 ${p.p95Ms.toFixed(2)} ms  p99 ${p.p99Ms.toFixed(2)} ms  errors ${p.errors + p.non2xx + p.timeouts}`);
    });
    const after = await Promise.all(daisServers.map((d) => batchCounters(d.server)));
    const sweeps: Sweep[] = lanes.map((l, k) => ({
      server: l.who, path: l.path, batching: l.batching, ...(l.batching ? { batchingConfig: BATCHING } : {}),
      points: results.filter((_, j) => j % lanes.length === k).map(point),
    }));
    daisServers.forEach((d, k) => {
      const b = before[k];
      const a = after[k];
      // Rows per model run over the whole run of this server (its JSON and binary points together).
      if (d.batching && a && b && a.runs > b.runs) for (const sw of sweeps) if (sw.server === 'dais' && sw.batching) sw.meanBatchRows = (a.rows - b.rows) / (a.runs - b.runs);
    });
    for (const d of daisServers) await d.server.stop();
    if (peer) await peer.stop();
    const peaks = daisServers.map((d) => d.server.peakRssMb()).filter((x): x is number => x !== undefined);
    result.server = { peakRssMb: peaks.length ? Math.max(...peaks) : undefined, requestBytes, responseBytes, sweeps: sweeps.filter((x) => x.server === 'dais') };
    if (peer) result.peer = { peakRssMb: peer.peakRssMb(), sweeps: sweeps.filter((x) => x.server === 'peer') };
    log(`server: peak RSS dais ${result.server.peakRssMb?.toFixed(0) ?? '?'} MB, peer ${result.peer?.peakRssMb?.toFixed(0) ?? '?'} MB`);
  } finally {
    for (const d of daisServers) await d.server.stop();
    await peer?.stop();
    for (const r of repos) rmSync(r, { recursive: true, force: true });
  }

  log(`limit: onnxruntime-node in process, ${o.durationS} s sequential + ${o.durationS} s with ${Math.max(...o.concurrency)} in flight`);
  try {
    result.limit = await measureLimit(m.path, m.request, o.durationS, Math.max(...o.concurrency));
    log(`  limit: ${result.limit.sequential.latencyMs.p50.toFixed(3)} ms p50 one at a time; ${result.limit.concurrent.rps.toFixed(0)} runs/s with ${result.limit.concurrent.inFlight} in flight`);
  } catch (e) {
    skip(result, 'limit', e, log);
  }
  result.ratios = ratios(result);
  for (const r of result.ratios) log(`  ${r.what}${r.concurrency ? ` (c=${r.concurrency})` : ''}: ${r.value.toFixed(2)}`);
}

function skip(result: BenchResult, target: string, e: unknown, log: (l: string) => void) {
  const reason = (e as Error).message.split('\n')[0];
  result.skipped.push({ target, reason });
  log(`  ${target}: not measured: ${reason}`);
}

export function ratios(r: BenchResult): Ratio[] {
  const out: Ratio[] = [];
  const dais = r.server?.sweeps.find((s) => s.path === 'json' && !s.batching);
  const peer = r.peer?.sweeps[0];
  if (!dais) return out;
  for (const p of dais.points) {
    const q = peer?.points.find((x) => x.concurrency === p.concurrency);
    if (q && q.rps > 0) out.push({ what: 'dais/peer throughput', concurrency: p.concurrency, value: p.rps / q.rps });
    if (q && q.p50Ms > 0) out.push({ what: 'dais/peer p50 latency', concurrency: p.concurrency, value: p.p50Ms / q.p50Ms });
  }
  if (r.limit) {
    const best = dais.points.reduce((a, b) => (b.rps > a.rps ? b : a));
    // The ceiling is the faster of one-at-a-time and many-in-flight: on few cores, runs in flight can contend.
    const ceiling = Math.max(r.limit.sequential.rps, r.limit.concurrent.rps);
    out.push({ what: 'dais/limit throughput (best dais JSON point vs the in-process ceiling)', concurrency: best.concurrency, value: best.rps / ceiling });
    const c1 = dais.points.find((p) => p.concurrency === 1);
    if (c1) out.push({ what: 'dais/limit p50 latency (one at a time)', concurrency: 1, value: c1.p50Ms / r.limit.sequential.latencyMs.p50 });
  }
  const batched = r.server?.sweeps.find((s) => s.path === 'json' && s.batching);
  if (batched) {
    for (const p of batched.points) {
      const q = dais.points.find((x) => x.concurrency === p.concurrency);
      if (q && q.rps > 0) out.push({ what: 'batched/unbatched throughput', concurrency: p.concurrency, value: p.rps / q.rps });
    }
  }
  return out;
}

export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const m = resolveBenchModel(o.model, o.request);
  const cpu = cpus();
  const result: BenchResult = {
    schema: 'dais-bench/1',
    createdAt: new Date().toISOString(),
    machine: { cpus: cpu.length, cpuModel: cpu[0]?.model ?? 'unknown', memoryGb: totalmem() / 1024 ** 3, node: process.version, platform: process.platform, arch: process.arch, loadAvg: { start: loadavg()[0] } },
    model: { name: m.name, path: relative(process.cwd(), m.path) || m.path, sizeBytes: m.sizeBytes, requestFile: relative(process.cwd(), m.requestFile) },
    settings: { durationS: o.durationS, concurrency: o.concurrency, targets: o.targets, cold: o.cold, warm: o.warm },
    skipped: [],
  };
  o.progress?.(`dais bench ${m.name}: ${m.path} (${(m.sizeBytes / 1024).toFixed(1)} KiB), request ${m.requestFile}`);
  const log = o.progress ?? (() => {});
  if (o.targets.includes('server')) {
    try {
      await benchServers(m, o, result);
    } catch (e) {
      skip(result, 'server', e, log);
    }
  }
  if (o.targets.includes('container')) {
    const c = await benchContainer(m, o.progress).catch((e: Error) => ({ skipped: e.message }));
    if ('skipped' in c) result.skipped.push({ target: 'container', reason: c.skipped });
    else result.container = c;
  }
  if (o.targets.includes('lambda')) {
    const l = await benchLambda(m, o.cold, o.warm, o.progress).catch((e: Error) => ({ skipped: e.message }));
    if ('skipped' in l) result.skipped.push({ target: 'lambda', reason: l.skipped });
    else result.lambda = l;
  }
  if (o.targets.includes('edge-node') || o.targets.includes('edge-browser')) {
    const e = await benchEdge(m, { node: o.targets.includes('edge-node'), browser: o.targets.includes('edge-browser'), durationS: o.durationS }, o.progress);
    result.edge = e.result;
    result.skipped.push(...e.skipped);
  }
  result.machine.loadAvg.end = loadavg()[0];
  return rounded(result);
}
