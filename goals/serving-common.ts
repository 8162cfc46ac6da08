// The pieces goals/serving.goal.ts and its parts share: servers in their own processes, the shared load client
// (src/bench/load.ts: wrk, autocannon where wrk is absent), interleaved rounds and paired ratios.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeInferRequest, requestFromJson } from '../src/core/index.ts';
import { WRK, loadPoint } from '../src/bench/load.ts';
import { PEER_SERVER, TYPESCRIPT_LOADER } from '../src/bench/servers.ts';

export { WRK };
import { median, pooledRoundsQuartiles, pooledRoundsRatio } from '../src/bench/stats.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './paths.ts';

export const SECONDS = Number(process.env.DAIS_SERVING_BENCH_S ?? 2);
export const CONNECTIONS = 64;
export const ROUNDS = Number(process.env.DAIS_SERVING_BENCH_ROUNDS ?? 9);
export const PART = process.env.DAIS_SERVING_BENCH_PART;
export const tmp = mkdtempSync(join(tmpdir(), 'dais-serving-bench-'));
export const running = new Set<Server>();

export interface Server {
  url: string;
  child: ChildProcess;
}

export async function start(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code} before listening`)));
  });
  const info = JSON.parse(line) as { url?: string; port?: number };
  const server = { url: info.url ?? `http://127.0.0.1:${info.port}`, child };
  running.add(server);
  return server;
}

export async function stop(s: Server): Promise<void> {
  running.delete(s);
  if (s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

export const dais = (model: string, ...flags: string[]) =>
  start([join(REPO_ROOT, 'bin', 'dais.js'), 'serve', model, '--port', '0', '--json', '--log-level', 'warn', '--drain-grace-ms', '0', ...flags]);
/** A reference server (src/bench/peer-server.ts, the one `dais bench` measures against); `flags`: --threads N, --workers N. */
export const baseline = (mode: 'hello' | 'ort' | 'batch', model?: string, ...flags: string[]) => start(['--import', TYPESCRIPT_LOADER, PEER_SERVER, mode, ...(model ? [model] : []), ...flags]);

export interface Body {
  file: string;
  headers: Record<string, string>;
}

export function bodies(model: string): { json: Body; binary: Body } {
  return bodiesOf(model, JSON.parse(readFileSync(join(EXAMPLES_DIR, model, 'requests', 'single.json'), 'utf8')));
}

/** A JSON and a binary request body of the same request (v2 JSON form), written to files for the load generator. */
export function bodiesOf(model: string, request: object): { json: Body; binary: Body } {
  const jsonFile = join(tmp, `${model}.json`);
  writeFileSync(jsonFile, JSON.stringify(request));
  const decoded = requestFromJson({ ...request, parameters: { binary_data_output: true } });
  const enc = encodeInferRequest(decoded, () => true);
  const binFile = join(tmp, `${model}.bin`);
  writeFileSync(binFile, enc.body);
  return {
    json: { file: jsonFile, headers: { 'content-type': 'application/json' } },
    binary: { file: binFile, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(enc.headerLength) } },
  };
}

export interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
  /** Server CPU time (user + system, the process and its children) per request, µs; median over the rounds. */
  cpuUs?: number;
  /** Requests/s of every round, in round order (for paired ratios). */
  rounds?: number[];
  /** p50 of every round, ms. */
  p50Rounds?: number[];
}

// CPU a server spent, read from /proc (Linux): it says how much work each server does per request whatever the
// other processes on the machine were doing, which the requests/s alone cannot.
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const c of children ? children.split(' ') : []) ticks += cpuTicks(Number(c)) ?? 0;
    }
    return ticks;
  } catch {
    return undefined;
  }
}

/** One measurement with the shared load client (src/bench/load.ts): wrk where installed, else autocannon. */
export async function loadTest(url: string, body: Body, seconds: number, connections = CONNECTIONS): Promise<Load> {
  const r = await loadPoint({ url, method: 'POST', headers: body.headers, bodyBase64: readFileSync(body.file).toString('base64'), connections, durationS: seconds });
  return { rps: r.rps, p50: r.latencyMs.p50, p99: r.latencyMs.p99, errors: r.errors, non2xx: r.non2xx, total: r.requests + r.non2xx };
}

async function check(url: string, r: Load): Promise<Load> {
  if (r.errors || r.non2xx) throw new Error(`${url}: ${r.errors} errors and ${r.non2xx} non-2xx answers of ${r.total}`);
  return r;
}

/**
 * Waits until a server has worked off what the load generator left queued when it stopped (a slow model at 64
 * connections holds seconds of it), so that the next round, often another server's, does not share the cores with
 * it: one more request with the same body, answered after everything before it.
 */
async function settled(url: string, body: Body): Promise<void> {
  await fetch(url, { method: 'POST', headers: body.headers, body: readFileSync(body.file), signal: AbortSignal.timeout(300_000) }).then((r) => r.arrayBuffer());
}

/**
 * Waits until a server's process is idle: under 5 % of a core over two consecutive 200 ms looks (at most 2 min).
 * `settled` alone is not enough: a server that fell behind at 64 connections (the hand-written one with 3 MB JSON
 * bodies of ResNet-50) still ran the requests of connections the load generator had given up on after it answered
 * the settling one, and the next round — another server's — shared the two cores with that backlog (seen
 * 2026-12-06: dais's binary c1 round on ResNet-50 measured 20 req/s after the peer's JSON c64 round, 37-39 alone).
 */
async function quiet(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  const lookMs = 200;
  let calm = 0;
  for (let waited = 0; waited < 120_000 && calm < 2; waited += lookMs) {
    const before = cpuTicks(pid);
    await new Promise((r) => setTimeout(r, lookMs));
    const after = cpuTicks(pid);
    if (before === undefined || after === undefined) return;
    calm = ((after - before) * 1000) / CLK_TCK < 0.05 * lookMs ? calm + 1 : 0;
  }
}

/**
 * Measures every (server, body) pair ROUNDS times, interleaved, and keeps each pair's median round and every round's
 * requests/s (see pairedRatio): other work on this machine then weighs on all of them alike instead of on whichever
 * ran during a busy spell.
 */
export async function interleaved(pairs: { label: string; url: string; body: Body; pid?: number; connections?: number }[], warmUpSeconds = 2): Promise<Map<string, Load>> {
  for (const p of pairs) {
    await check(p.url, await loadTest(p.url, p.body, warmUpSeconds, p.connections)); // warm-up: JIT, pools, arenas
    await settled(p.url, p.body);
    await quiet(p.pid);
  }
  const runs = new Map<string, Load[]>(pairs.map((p) => [p.label, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of pairs) {
      const before = p.pid === undefined ? undefined : cpuTicks(p.pid);
      const r = await check(p.url, await loadTest(p.url, p.body, SECONDS, p.connections));
      const after = p.pid === undefined ? undefined : cpuTicks(p.pid);
      if (before !== undefined && after !== undefined && r.total > 0) r.cpuUs = ((after - before) * 1e6) / CLK_TCK / r.total;
      runs.get(p.label)!.push(r);
      await settled(p.url, p.body);
      await quiet(p.pid);
    }
  }
  const out = new Map<string, Load>();
  for (const [label, rs] of runs) {
    const m = median(rs.map((r) => r.rps));
    const cpu = rs.every((r) => r.cpuUs !== undefined) ? median(rs.map((r) => r.cpuUs!)) : undefined;
    out.set(label, { ...rs.find((r) => r.rps === m)!, cpuUs: cpu, rounds: rs.map((r) => r.rps), p50Rounds: rs.map((r) => r.p50) });
  }
  return out;
}

/** A goal's measured ratio: two decimals, or three where two would round it onto the threshold. */
export const shown = (x: number, threshold: number) => x.toFixed(x.toFixed(2) === threshold.toFixed(2) ? 3 : 2);

/** a ÷ b as the median of the per-round ratios (both measured in every round, seconds apart). */
export function pairedRatio(a: Load, b: Load): number {
  return pooledRatio([a], [b]);
}

/**
 * Several processes of one server against several of another: per round, the requests/s of the first group summed
 * over the second's, and the median of those ratios. Two processes of one and the same server differ here by more
 * than the goals' margins at one connection (see goals/serving-defaults.ts), so a single pair of processes reads
 * partly which process was luckier; a sum over several of each reads the servers.
 */
export function pooledRatio(a: readonly Load[], b: readonly Load[]): number {
  return pooledRoundsRatio(a.map((l) => l.rounds!), b.map((l) => l.rounds!));
}

/**
 * A requests/s verdict's figure: the ratio (pooledRatio of `a` over `b`, computed by the caller for its verdict) and
 * the middle half of its rounds, so that a reader can tell a miss by a margin the rounds share from one they do not.
 */
export function ratioWithSpread(ratio: number, a: readonly Load[], b: readonly Load[], threshold: number): string {
  const [lo, hi] = pooledRoundsQuartiles(a.map((l) => l.rounds!), b.map((l) => l.rounds!));
  return `${shown(ratio, threshold)} × (middle half of the rounds ${lo.toFixed(2)}–${hi.toFixed(2)})`;
}

export const fmt = (n: number) => n.toFixed(0).padStart(8);
export const ratio = (a: number, b: number) => (a / b).toFixed(2);
export const row = (label: string, r: Load, extra = '') =>
  `   ${label.padEnd(40)}${fmt(r.rps)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${(r.cpuUs === undefined ? '—' : r.cpuUs.toFixed(0)).padStart(10)}${extra}\n`;
export const HEADER = '   server                                     req/s   p50 ms   p99 ms  CPU µs/req\n';

export type Goal = [string, boolean, string];
export const PATH = '/v2/models/model/infer';
