// Serving throughput, measured with wrk (autocannon where wrk is absent) from its own process against servers in their own processes.
//  1. Dynamic batching on the digits CNN at 64 concurrent clients: requests/s batched ÷ unbatched (goal ≥ 2), and
//     p50 latency against max_queue_delay_ms + 2 × one batch's compute (from the server's own statistics).
//  2. The 784→128→10 MLP, 64 connections, batch-1 requests, JSON and binary bodies separately: dais ÷ a hello-world
//     node:http server (goal ≥ 0.7) and dais ÷ a hand-written node:http + onnxruntime-node server (goal ≥ 2).
// Every ratio comes from one run on this machine; misses are printed, not hidden.
// Ratios are paired: each round measures every server once, a ratio is taken within each round, and the median of
// those per-round ratios is reported, so that a slow spell of the machine weighs on both sides of a ratio alike.
//   DAIS_SERVING_BENCH_S=2 (seconds per measurement), DAIS_SERVING_BENCH_ROUNDS=9 (interleaved rounds),
//   DAIS_SERVING_BENCH_PART=digits|mlp|monitor (one part only; all by default)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeInferRequest, requestFromJson } from '../src/core/index.ts';
import { EXAMPLES_DIR, REPO_ROOT } from '../test/support/env.ts';

const SECONDS = Number(process.env.DAIS_SERVING_BENCH_S ?? 2);
const CONNECTIONS = 64;
const ROUNDS = Number(process.env.DAIS_SERVING_BENCH_ROUNDS ?? 9);
const BATCH_DELAY_MS = 2;
const PART = process.env.DAIS_SERVING_BENCH_PART;
const tmp = mkdtempSync(join(tmpdir(), 'dais-serving-bench-'));
const running = new Set<Server>();

interface Server {
  url: string;
  child: ChildProcess;
}

async function start(args: string[]): Promise<Server> {
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

async function stop(s: Server): Promise<void> {
  running.delete(s);
  if (s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

const dais = (model: string, ...flags: string[]) =>
  start([join(REPO_ROOT, 'bin', 'dais.js'), 'serve', model, '--port', '0', '--json', '--log-level', 'warn', '--drain-grace-ms', '0', ...flags]);
const baseline = (mode: 'hello' | 'ort', model?: string) => start(['--import', 'tsx', join(REPO_ROOT, 'bench', 'serving-baselines.ts'), mode, ...(model ? [model] : [])]);

interface Body {
  file: string;
  headers: Record<string, string>;
}

function bodies(model: string): { json: Body; binary: Body } {
  const request = JSON.parse(readFileSync(join(EXAMPLES_DIR, model, 'requests', 'single.json'), 'utf8'));
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

interface Load {
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

function cpuTicks(pid: number): number | undefined {
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

// wrk (C, one thread) is the load generator when it is installed: autocannon, in Node, needs about a core of its
// own on this machine, which the servers then do not get. Without wrk the bench falls back to autocannon and says so.
const WRK = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((f) => existsSync(f));

function wrkScript(body: Body): string {
  const file = body.file + '.lua';
  const headers = Object.entries(body.headers)
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join('\n');
  writeFileSync(file, `local f = assert(io.open(${JSON.stringify(body.file)}, "rb"))\nwrk.method = "POST"\nwrk.body = f:read("*a")\nf:close()\n${headers}\n`);
  return file;
}

/** wrk's "50%    2.17ms" lines, in milliseconds. */
function wrkMs(out: string, label: string): number {
  const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out);
  if (!m) throw new Error(`wrk printed no ${label} latency:\n${out}`);
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'];
}

function runWrk(url: string, body: Body, seconds: number): Promise<Load> {
  return new Promise((resolve, reject) => {
    const child = spawn(WRK!, ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', wrkScript(body), url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk failed (${code}): ${out}`));
      const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
      const secs = Number(/requests in ([\d.]+)s/.exec(out)?.[1] ?? NaN);
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const errors = socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      resolve({ rps: total / secs, p50: wrkMs(out, '50%'), p99: wrkMs(out, '99%'), errors, non2xx, total });
    });
  });
}

function loadTest(url: string, body: Body, seconds: number): Promise<Load> {
  if (WRK) return runWrk(url, body, seconds);
  const spec = JSON.stringify({ url, bodyFile: body.file, headers: body.headers, connections: CONNECTIONS, seconds });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench', 'serving-load.ts'), spec], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Load) : reject(new Error(`the load generator failed (${code}): ${err}`))));
  });
}

async function check(url: string, r: Load): Promise<Load> {
  if (r.errors || r.non2xx) throw new Error(`${url}: ${r.errors} errors and ${r.non2xx} non-2xx answers of ${r.total}`);
  return r;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Measures every (server, body) pair ROUNDS times, interleaved, and keeps each pair's median round and every round's
 * requests/s (see pairedRatio): other work on this machine then weighs on all of them alike instead of on whichever
 * ran during a busy spell.
 */
async function interleaved(pairs: { label: string; url: string; body: Body; pid?: number }[]): Promise<Map<string, Load>> {
  for (const p of pairs) await check(p.url, await loadTest(p.url, p.body, 2)); // warm-up: JIT, pools, arenas
  const runs = new Map<string, Load[]>(pairs.map((p) => [p.label, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of pairs) {
      const before = p.pid === undefined ? undefined : cpuTicks(p.pid);
      const r = await check(p.url, await loadTest(p.url, p.body, SECONDS));
      const after = p.pid === undefined ? undefined : cpuTicks(p.pid);
      if (before !== undefined && after !== undefined && r.total > 0) r.cpuUs = ((after - before) * 1e6) / CLK_TCK / r.total;
      runs.get(p.label)!.push(r);
    }
  }
  const out = new Map<string, Load>();
  for (const [label, rs] of runs) {
    const m = median(rs.map((r) => r.rps));
    const cpu = rs.every((r) => r.cpuUs !== undefined) ? median(rs.map((r) => r.cpuUs!)) : undefined;
    out.set(label, { ...rs.find((r) => r.rps === m)!, cpuUs: cpu, rounds: rs.map((r) => r.rps) });
  }
  return out;
}

/** A goal's measured ratio: two decimals, or three where two would round it onto the threshold. */
const shown = (x: number, threshold: number) => x.toFixed(x.toFixed(2) === threshold.toFixed(2) ? 3 : 2);

/** a ÷ b as the median of the per-round ratios (both measured in every round, seconds apart). */
function pairedRatio(a: Load, b: Load): number {
  return median(a.rounds!.map((x, i) => x / b.rounds![i]));
}

const fmt = (n: number) => n.toFixed(0).padStart(8);
const ratio = (a: number, b: number) => (a / b).toFixed(2);
const row = (label: string, r: Load, extra = '') =>
  `   ${label.padEnd(40)}${fmt(r.rps)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${(r.cpuUs === undefined ? '—' : r.cpuUs.toFixed(0)).padStart(10)}${extra}\n`;
const HEADER = '   server                                     req/s   p50 ms   p99 ms  CPU µs/req\n';

type Goal = [string, boolean, string];
const PATH = '/v2/models/model/infer';

// 1. Batching on the digits CNN.
async function digitsPart(goals: Goal[]) {
  const digitsModel = join(EXAMPLES_DIR, 'digits', '1', 'model.onnx');
  const digits = bodies('digits');
  const workers = cpus().length;
  const batching = ['--max-batch-size', '64', '--max-queue-delay-ms', String(BATCH_DELAY_MS)];
  process.stdout.write(`\n1. digits CNN, single-image JSON requests; one process with monitoring on (as shipped), and --workers ${workers} --no-monitor\n${HEADER}`);
  const configs = [
    { label: 'one process', flags: [] as string[] },
    { label: `--workers ${workers}`, flags: ['--workers', String(workers), '--no-monitor'] },
  ];
  const servers = [];
  for (const c of configs) servers.push({ ...c, unb: await dais(digitsModel, ...c.flags), bat: await dais(digitsModel, ...c.flags, ...batching) });
  const d = await interleaved(
    servers.flatMap((s) => [
      { label: `${s.label} unbatched`, url: s.unb.url + PATH, body: digits.json, pid: s.unb.child.pid },
      { label: `${s.label} batched`, url: s.bat.url + PATH, body: digits.json, pid: s.bat.child.pid },
    ]),
  );
  for (const s of servers) {
    // Under --workers the statistics extension adds up every worker.
    type Stat = { count: number; ns: number };
    const stats = (await (await fetch(`${s.bat.url}/v2/models/model/stats`)).json()) as {
      model_stats: { inference_count: number; execution_count: number; inference_stats: { success: Stat }; batch_stats: { compute_infer: Stat }[] }[];
    };
    const st = stats.model_stats[0];
    const execs = st.batch_stats.reduce((n, x) => n + x.compute_infer.count, 0);
    const batchMs = st.batch_stats.reduce((n, x) => n + x.compute_infer.ns, 0) / execs / 1e6;
    const u = d.get(`${s.label} unbatched`)!;
    const b = d.get(`${s.label} batched`)!;
    process.stdout.write(row(`${s.label}, unbatched`, u));
    // The server's own time per request (decoded request → outputs: queue and compute), a mean from the statistics
    // extension: what the batcher adds, where the client's p50 also holds the HTTP work of all 64 requests.
    const serverMs = st.inference_stats.success.ns / st.inference_stats.success.count / 1e6;
    process.stdout.write(
      row(`${s.label}, batched`, b, `   average batch ${(st.inference_count / st.execution_count).toFixed(1)} rows, one batch's compute ${batchMs.toFixed(2)} ms, server-side mean (queue + compute) ${serverMs.toFixed(2)} ms`),
    );
    const latencyBound = BATCH_DELAY_MS + 2 * batchMs;
    const speedup = pairedRatio(b, u);
    goals.push([`digits, ${s.label}: batched ÷ unbatched throughput ≥ 2`, speedup >= 2, `${shown(speedup, 2)} (median of ${ROUNDS} paired rounds; medians ${b.rps.toFixed(0)} vs ${u.rps.toFixed(0)} req/s)`]);
    goals.push([
      `digits, ${s.label}: batched p50 ≤ max_queue_delay_ms + 2 × one batch's compute (${latencyBound.toFixed(2)} ms)`,
      b.p50 <= latencyBound,
      // 64 clients that each wait for their answer: p50 is close to 64 ÷ throughput (Little's law), so the bound
      // asks for a throughput as well.
      `p50 ${b.p50.toFixed(2)} ms; with ${CONNECTIONS} waiting clients that needs about ${((CONNECTIONS * 1000) / latencyBound).toFixed(0)} req/s, measured ${b.rps.toFixed(0)}`,
    ]);
  }
  await Promise.all(servers.flatMap((s) => [stop(s.unb), stop(s.bat)]));
  process.stdout.write(`   (batched: max 64 rows, ${BATCH_DELAY_MS} ms max_queue_delay_ms)\n`);
}

// 2. The MLP against the two reference servers.
async function mlpPart(goals: Goal[]) {
  const mlpModel = join(EXAMPLES_DIR, 'mlp', '1', 'model.onnx');
  const mlp = bodies('mlp');
  const workers = cpus().length;
  process.stdout.write(
    `\n2. 784→128→10 MLP, batch-1 requests (dais: --max-batch-size 64, no added delay; one process with monitoring on, as shipped, and --workers ${workers})\n${HEADER}`,
  );
  const servers = {
    hello: await baseline('hello'),
    ort: await baseline('ort', mlpModel),
    dais: await dais(mlpModel, '--max-batch-size', '64'),
    bare: await dais(mlpModel, '--max-batch-size', '64', '--no-monitor'),
    workers: await dais(mlpModel, '--max-batch-size', '64', '--no-monitor', '--workers', String(workers)),
  };
  const names = { hello: 'hello-world node:http', ort: 'hand-written http + ort', dais: 'dais', bare: 'dais --no-monitor', workers: `dais --workers ${workers} --no-monitor` } as const;
  const pairs = (['json', 'binary'] as const).flatMap((kind) => (Object.keys(servers) as (keyof typeof servers)[]).map((k) => ({ label: `${names[k]} (${kind})`, url: servers[k].url + PATH, body: mlp[kind], pid: servers[k].child.pid })));
  const m = await interleaved(pairs);
  await Promise.all(Object.values(servers).map(stop));
  for (const p of pairs) process.stdout.write(row(p.label, m.get(p.label)!));
  for (const kind of ['json', 'binary'] as const) {
    const load = (k: keyof typeof names) => m.get(`${names[k]} (${kind})`)!;
    const times = (a: keyof typeof names, b: keyof typeof names) => pairedRatio(load(a), load(b));
    goals.push([`MLP ${kind}: dais --workers ${workers} ≥ 0.7 × hello-world node:http`, times('workers', 'hello') >= 0.7, `${shown(times('workers', 'hello'), 0.7)} ×`]);
    goals.push([`MLP ${kind}: dais --workers ${workers} ≥ 2 × hand-written node:http + onnxruntime-node`, times('workers', 'ort') >= 2, `${shown(times('workers', 'ort'), 2)} ×`]);
    process.stdout.write(
      `   ${kind}: one dais process is ${times('dais', 'hello').toFixed(2)} × hello-world and ${times('dais', 'ort').toFixed(2)} × hand-written with monitoring, ${times('bare', 'hello').toFixed(2)} × and ${times('bare', 'ort').toFixed(2)} × without (medians of paired rounds)\n`,
    );
    const cpu = (k: keyof typeof names) => m.get(`${names[k]} (${kind})`)!.cpuUs;
    if (cpu('ort') !== undefined && cpu('bare') !== undefined && cpu('hello') !== undefined) {
      process.stdout.write(
        `   ${kind}: server CPU per request — hello-world ${cpu('hello')!.toFixed(0)} µs, hand-written ${cpu('ort')!.toFixed(0)} µs, dais ${cpu('bare')!.toFixed(0)} µs (--no-monitor), ${cpu('workers')!.toFixed(0)} µs (--workers ${workers}): hand-written ÷ dais = ${ratio(cpu('ort')!, cpu('bare')!)}\n`,
      );
    }
  }
}

// 3. What monitoring costs under --workers N: the workers forward each request's record to the primary, which
// keeps the one monitor (drift windows, feedback memory, series). Printed as a ratio, with no goal attached.
async function monitorPart() {
  const mlpModel = join(EXAMPLES_DIR, 'mlp', '1', 'model.onnx');
  const mlp = bodies('mlp');
  const workers = cpus().length;
  process.stdout.write(`\n3. 784→128→10 MLP, batch-1 JSON requests, --workers ${workers}: monitoring on (the primary keeps the monitor) vs --no-monitor\n${HEADER}`);
  const on = await dais(mlpModel, '--workers', String(workers));
  const off = await dais(mlpModel, '--workers', String(workers), '--no-monitor');
  const r = await interleaved([
    { label: 'on', url: on.url + PATH, body: mlp.json },
    { label: 'off', url: off.url + PATH, body: mlp.json },
  ]);
  process.stdout.write(row(`--workers ${workers}, monitoring on`, r.get('on')!));
  process.stdout.write(row(`--workers ${workers}, --no-monitor`, r.get('off')!));
  process.stdout.write(`   monitoring on ÷ off throughput: ${pairedRatio(r.get('on')!, r.get('off')!).toFixed(2)} (median of ${ROUNDS} paired rounds)\n`);
  await Promise.all([stop(on), stop(off)]);
}

async function main() {
  process.stdout.write(
    `machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); the load generator and the servers share them. ${CONNECTIONS} connections; ${ROUNDS} interleaved ${SECONDS} s rounds (rows: median round; ratios: median of per-round ratios).\n` +
      (WRK ? `load generator: ${WRK} (one thread)\n` : 'load generator: autocannon — wrk is not installed (apt install wrk). autocannon takes about a core of its own here, so the servers get less and the ratios are lower than with wrk.\n'),
  );
  const goals: Goal[] = [];

  if (PART === undefined || PART === 'digits') await digitsPart(goals);
  if (PART === undefined || PART === 'mlp') await mlpPart(goals);
  if (PART === undefined || PART === 'monitor') await monitorPart();

  process.stdout.write('\nGoals (from issue 3):\n');
  for (const [what, ok, measured] of goals) process.stdout.write(`  ${ok ? 'PASS' : 'MISS'}  ${what}: ${measured}\n`);
  process.stdout.write(`\nload average at the end: ${loadavg()[0].toFixed(2)} (the load generator runs on the same ${cpus().length} CPUs as the servers; compare ratios, not absolute numbers)\n`);
  // A missed goal is this benchmark's result, not a crash: it shows in the exit code, as in the other benchmarks.
  if (goals.some(([, ok]) => !ok)) process.exitCode = 1;
}

try {
  await main();
} finally {
  for (const s of running) s.child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}
