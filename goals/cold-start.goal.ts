// Lambda cold starts of the 784→128→10 MLP under `dais invoke`'s emulator, against a bare `node -e 0` start
// measured in the same run (interleaved, so machine load hits both alike), and what each mitigation buys:
// a minified bundle, a warm-up run during INIT, eager vs lazy session, a smaller (int8-weights) model. Goals from issue 5: start → first
// response ≤ 150 ms here and ≤ 3 × bare Node; function.zip ≤ 20 MB. Misses are printed, not hidden.
//   DAIS_COLD_RUNS=15 (cold starts per variant)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { optimizeModel } from '../src/optimize/index.ts';
import { buildLambda, type LambdaBuildOptions } from '../src/targets/lambda/bundle.ts';
import { percentileOf } from '../src/bench/stats.ts';
import { LambdaEmulator } from '../src/targets/lambda/emulator.ts';
import { reapedChildrenCpuMs } from '../src/targets/lambda/runtime-process.ts';
import { mb } from '../src/targets/lambda/limits.ts';
import { EXAMPLES_DIR } from './paths.ts';

const RUNS = Number(process.env.DAIS_COLD_RUNS ?? 15);
const tmp = mkdtempSync(join(tmpdir(), 'dais-cold-bench-'));
const arch = process.arch === 'arm64' ? 'arm64' : 'x86_64';
const mlp = join(EXAMPLES_DIR, 'mlp', '1', 'model.onnx');
const request = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'requests', 'single.json'), 'utf8'));

interface Variant {
  name: string;
  taskRoot: string;
  handlerBytes?: number;
  zipBytes?: number;
  modelBytes?: number;
  init: number[];
  first: number[];
  total: number[];
  /** CPU time, process start → first response. */
  cpu: number[];
}

async function build(name: string, model: string, extra: Partial<LambdaBuildOptions>): Promise<Variant> {
  const r = await buildLambda({ model, out: join(tmp, name.replace(/\W+/g, '-')), name: 'mlp', arch, runtime: 'nodejs22.x', memoryMb: 1024, timeoutS: 30, packageType: 'image', urlAuth: 'AWS_IAM', ...extra });
  return { name, taskRoot: r.functionDir, handlerBytes: r.sizes.handlerBytes, zipBytes: r.sizes.zipBytes, modelBytes: r.sizes.modelBytes, init: [], first: [], total: [], cpu: [] };
}

/** Wall time start → exit, and CPU time from this process's reaped-children counters. */
function bareNode(): Promise<{ wall: number; cpu?: number }> {
  return new Promise((resolve, reject) => {
    const cpu0 = reapedChildrenCpuMs();
    const t0 = performance.now();
    const p = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore', env: { PATH: process.env.PATH ?? '' } });
    p.on('error', reject);
    p.on('exit', () => {
      const wall = performance.now() - t0;
      // 'exit' fires after the child is reaped, so its CPU time is in cutime/cstime now.
      const cpu1 = reapedChildrenCpuMs();
      resolve({ wall, cpu: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0 });
    });
  });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const p50 = (xs: number[]) => percentileOf(xs, 50);
const p95 = (xs: number[]) => percentileOf(xs, 95);
const ms = (x: number) => `${x.toFixed(1)} ms`.padStart(9);

async function main(): Promise<void> {
  const load0 = loadavg()[0];
  process.stdout.write(`cold starts: ${RUNS} per variant, interleaved with bare 'node -e 0'; node ${process.version}, ${arch}; load average ${load0.toFixed(2)}\n`);

  const floorDir = join(tmp, 'floor');
  mkdirSync(floorDir);
  writeFileSync(join(floorDir, 'index.mjs'), 'export const handler = async () => ({});\n');
  const quantized = await optimizeModel(new Uint8Array(readFileSync(mlp)), { quantize: 'int8-weights', fileName: mlp });
  const int8Path = join(tmp, 'mlp-int8.onnx');
  writeFileSync(int8Path, quantized.model);

  const variants: Variant[] = [
    { name: 'empty handler (runtime floor)', taskRoot: floorDir, init: [], first: [], total: [], cpu: [] },
    await build('mlp: minified, eager (default)', mlp, { packageType: 'zip' }),
    await build('mlp: not minified, eager', mlp, { minify: false }),
    await build('mlp: minified, eager, no warm-up', mlp, { warmup: false }),
    await build('mlp: minified, lazy', mlp, { lazy: true }),
    await build('mlp int8-weights: minified, eager', int8Path, {}),
  ];
  const bare: number[] = [];
  const bareCpu: number[] = [];
  const emulators = await Promise.all(variants.map((v) => LambdaEmulator.start({ taskRoot: v.taskRoot, memoryMb: 1024 })));
  try {
    for (let i = 0; i < RUNS; i++) {
      const b = await bareNode();
      bare.push(b.wall);
      if (b.cpu !== undefined) bareCpu.push(b.cpu);
      for (const [j, v] of variants.entries()) {
        const r = await emulators[j].invoke(request, { cold: true });
        if (r.status !== 'success') throw new Error(`${v.name}: ${r.status} ${JSON.stringify(r.error)}`);
        v.init.push(r.initDurationMs!);
        v.first.push(r.durationMs);
        v.total.push(r.coldStartMs!);
        if (r.coldStartCpuMs !== undefined) v.cpu.push(r.coldStartCpuMs);
      }
    }
  } finally {
    await Promise.all(emulators.map((e) => e.close()));
  }

  const bareP50 = p50(bare);
  const bareCpuMean = bareCpu.length ? mean(bareCpu) : NaN;
  process.stdout.write('\nWall times are p50/p95; CPU is the mean CPU time (all threads) from process start to the first response.\n');
  process.stdout.write(`${'variant'.padEnd(36)} ${'Init p50'.padStart(9)} ${'p95'.padStart(9)} ${'1st inv'.padStart(9)} ${'start→resp'.padStart(10)} ${'p95'.padStart(9)} ${'×bare'.padStart(6)} ${'CPU'.padStart(9)} ${'×bare'.padStart(6)}  index.mjs  model\n`);
  process.stdout.write(`${"bare 'node -e 0' (start → exit)".padEnd(36)} ${''.padStart(9)} ${''.padStart(9)} ${''.padStart(9)} ${ms(bareP50).padStart(10)} ${ms(p95(bare))} ${'1.00'.padStart(6)} ${ms(bareCpuMean)} ${'1.00'.padStart(6)}\n`);
  for (const v of variants) {
    const cpu = v.cpu.length ? mean(v.cpu) : NaN;
    process.stdout.write(
      `${v.name.padEnd(36)} ${ms(p50(v.init))} ${ms(p95(v.init))} ${ms(p50(v.first))} ${ms(p50(v.total)).padStart(10)} ${ms(p95(v.total))} ${(p50(v.total) / bareP50).toFixed(2).padStart(6)} ${ms(cpu)} ${(cpu / bareCpuMean).toFixed(2).padStart(6)}  ${v.handlerBytes ? `${(v.handlerBytes / 1024).toFixed(0)} KB`.padStart(9) : '        -'}  ${v.modelBytes ? `${(v.modelBytes / 1024).toFixed(0)} KB` : '-'}\n`,
    );
  }

  const [floor, def, unmin, cold1st, lazy, int8] = variants;
  const d = (a: number[], b: number[]) => p50(a) - p50(b);
  process.stdout.write('\nWhat each mitigation buys (p50, start → first response unless said):\n');
  process.stdout.write(`  runtime floor (node + bootstrap + Runtime API round trips): ${ms(p50(floor.total)).trim()}; the default MLP function adds ${ms(d(def.total, floor.total)).trim()}\n`);
  process.stdout.write(`  minifying (${(unmin.handlerBytes! / 1024).toFixed(0)} KB → ${(def.handlerBytes! / 1024).toFixed(0)} KB): ${ms(d(unmin.total, def.total)).trim()} saved\n`);
  process.stdout.write(`  warm-up run in INIT: first invocation ${ms(p50(cold1st.first)).trim()} → ${ms(p50(def.first)).trim()}, INIT ${ms(d(def.init, cold1st.init)).trim()} longer (with provisioned concurrency or keep-warm, INIT is paid before any caller)\n`);
  process.stdout.write(`  lazy session: INIT ${ms(d(lazy.init, def.init)).trim()}, first invocation ${ms(d(lazy.first, def.first)).trim()}, total ${ms(d(lazy.total, def.total)).trim()} (lazy only moves the cost; it matters against the 10 s INIT limit)\n`);
  process.stdout.write(`  int8-weights model (${(def.modelBytes! / 1024).toFixed(0)} KB → ${(int8.modelBytes! / 1024).toFixed(0)} KB): ${ms(d(def.total, int8.total)).trim()} saved\n`);

  const zip = def.zipBytes!;
  const goals: [string, boolean, string][] = [
    ['MLP cold start (start → first response) ≤ 150 ms here', p50(def.total) <= 150, `${ms(p50(def.total)).trim()} p50, ${ms(p95(def.total)).trim()} p95 (Init Duration ${ms(p50(def.init)).trim()})`],
    ['MLP cold start ≤ 3 × bare node start', p50(def.total) <= 3 * bareP50, `${(p50(def.total) / bareP50).toFixed(2)} × wall (${ms(bareP50).trim()} bare); ${(mean(def.cpu) / bareCpuMean).toFixed(2)} × in CPU time`],
    ['function.zip ≤ 20 MB', zip <= 20 * 1024 * 1024, `${mb(zip)} (${zip} bytes)`],
  ];
  process.stdout.write('\nGoals:\n');
  for (const [what, ok, measured] of goals) process.stdout.write(`  ${ok ? 'PASS' : 'MISS'}  ${what}: ${measured}\n`);
  process.stdout.write(`\nload average at the end: ${loadavg()[0].toFixed(2)} (this machine is shared; compare ratios, not absolute times)\n`);
  // A missed goal is this benchmark's result, not a crash: it shows in the exit code, as in the other benchmarks.
  if (goals.some(([, ok]) => !ok)) process.exitCode = 1;
}

try {
  await main();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
