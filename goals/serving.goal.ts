// Serving throughput, measured with wrk (autocannon where wrk is absent) from its own process against servers in their own processes.
//  1. Dynamic batching on the digits CNN at 64 concurrent clients: requests/s batched ÷ unbatched (goal ≥ 2), and
//     p50 latency against max_queue_delay_ms + 2 × one batch's compute (from the server's own statistics).
//  2. The 784→128→10 MLP, 64 connections, batch-1 requests, JSON and binary bodies separately: dais ÷ a hello-world
//     node:http server (goal ≥ 0.7) and dais ÷ a hand-written node:http + onnxruntime-node server (goal ≥ 2).
//  0. First (goals/serving-defaults.ts): dais with no flags against the hand-written server, per model, at 1, 16 and
//     64 connections; then resident memory with every real model loaded, and its peak while loading.
// A configuration with more processes than its peer is compared with a peer of as many processes.
// Every ratio comes from one run on this machine; misses are printed, not hidden.
// Ratios are paired: each round measures every server once, a ratio is taken within each round, and the median of
// those per-round ratios is reported, so that a slow spell of the machine weighs on both sides of a ratio alike.
//   DAIS_SERVING_BENCH_S=2 (seconds per measurement), DAIS_SERVING_BENCH_ROUNDS=9 (interleaved rounds),
//   DAIS_SERVING_BENCH_PART=defaults|memory|digits|mlp|monitor (one part only; all by default),
//   DAIS_REAL_MODELS=<repository of real-scale models> (goals/serving-defaults.ts), DAIS_SERVING_BENCH_MODELS=a,b (only these),
//   DAIS_SERVING_BENCH_C1_PROCESSES=3 (processes of each server measured at one connection)
import { rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES_DIR } from './paths.ts';
import {
  CONNECTIONS,
  HEADER,
  PART,
  PATH,
  ROUNDS,
  WRK,
  SECONDS,
  baseline,
  bodies,
  dais,
  interleaved,
  pairedRatio,
  ratio,
  row,
  running,
  shown,
  stop,
  tmp,
  type Goal,
} from './serving-common.ts';
import { defaultsPart, memoryPart } from './serving-defaults.ts';

const BATCH_DELAY_MS = 2;

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
  for (const c of configs) servers.push({ ...c, unb: await dais(digitsModel, ...c.flags, '--max-batch-size', '0'), bat: await dais(digitsModel, ...c.flags, ...batching) });
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
    `\n2. 784→128→10 MLP, batch-1 requests (dais with no flags: batching on by default; one process with monitoring on, as shipped, and --workers ${workers} against reference servers of ${workers} processes too)\n${HEADER}`,
  );
  const servers = {
    hello: await baseline('hello'),
    helloN: await baseline('hello', undefined, '--workers', String(workers)),
    ort: await baseline('ort', mlpModel),
    ortN: await baseline('ort', mlpModel, '--workers', String(workers)),
    dais: await dais(mlpModel),
    bare: await dais(mlpModel, '--no-monitor'),
    workers: await dais(mlpModel, '--no-monitor', '--workers', String(workers)),
  };
  const names = {
    hello: 'hello-world node:http',
    helloN: `hello-world node:http × ${workers}`,
    ort: 'hand-written http + ort',
    ortN: `hand-written http + ort × ${workers}`,
    dais: 'dais',
    bare: 'dais --no-monitor',
    workers: `dais --workers ${workers} --no-monitor`,
  } as const;
  const pairs = (['json', 'binary'] as const).flatMap((kind) => (Object.keys(servers) as (keyof typeof servers)[]).map((k) => ({ label: `${names[k]} (${kind})`, url: servers[k].url + PATH, body: mlp[kind], pid: servers[k].child.pid })));
  const m = await interleaved(pairs);
  await Promise.all(Object.values(servers).map(stop));
  for (const p of pairs) process.stdout.write(row(p.label, m.get(p.label)!));
  for (const kind of ['json', 'binary'] as const) {
    const load = (k: keyof typeof names) => m.get(`${names[k]} (${kind})`)!;
    const times = (a: keyof typeof names, b: keyof typeof names) => pairedRatio(load(a), load(b));
    // More processes than the peer would be no comparison: --workers N is measured against peers of N processes.
    goals.push([`MLP ${kind}: dais --workers ${workers} ≥ 0.7 × hello-world node:http × ${workers}`, times('workers', 'helloN') >= 0.7, `${shown(times('workers', 'helloN'), 0.7)} ×`]);
    goals.push([`MLP ${kind}: dais --workers ${workers} ≥ 2 × hand-written node:http + onnxruntime-node × ${workers}`, times('workers', 'ortN') >= 2, `${shown(times('workers', 'ortN'), 2)} ×`]);
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

  // First: dais with no flags against the hand-written server, per model; then memory with every real model loaded.
  if (!PART || PART === 'defaults') await defaultsPart(goals);
  if (!PART || PART === 'memory') await memoryPart(goals);
  if (!PART || PART === 'digits') await digitsPart(goals);
  if (!PART || PART === 'mlp') await mlpPart(goals);
  if (!PART || PART === 'monitor') await monitorPart();

  process.stdout.write('\nGoals (issues 3 and 16):\n');
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
