// Lambda: the bundle `dais build --target lambda` makes, run N cold + M warm through the local emulator
// `dais invoke`, which prints Lambda's own REPORT lines; init and duration distributions come from those lines.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchModel } from './requests.ts';
import { hasCommand, runDais } from './cli-runner.ts';
import { summarize, type Stats } from './stats.ts';

export interface LambdaReport {
  durationMs: number;
  billedMs: number;
  memorySizeMb: number;
  maxMemoryUsedMb: number;
  initMs?: number;
}

export interface LambdaBench {
  memoryMb: number;
  cold: { n: number; initMs: Stats; durationMs: Stats };
  warm: { n: number; durationMs: Stats; billedMs: Stats };
  maxMemoryUsedMb: number;
  /** function.zip, its unpacked function/ folder (what counts against the 250 MB limit), and every file. */
  packageBytes: { zip?: number; unzipped: number; files: Record<string, number> };
}

/** Lambda's REPORT line: `REPORT RequestId: … Duration: 1.23 ms Billed Duration: 2 ms Memory Size: 1024 MB Max Memory Used: 80 MB Init Duration: 120.50 ms`. */
export function parseReportLines(text: string): LambdaReport[] {
  const out: LambdaReport[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('REPORT')) continue;
    const num = (label: string) => {
      const m = new RegExp(`${label}:\\s*([\\d.]+)`).exec(line);
      return m ? Number(m[1]) : undefined;
    };
    const durationMs = num('(?<!Billed |Init )Duration');
    if (durationMs === undefined) continue;
    out.push({ durationMs, billedMs: num('Billed Duration') ?? Math.ceil(durationMs), memorySizeMb: num('Memory Size') ?? NaN, maxMemoryUsedMb: num('Max Memory Used') ?? NaN, initMs: num('Init Duration') });
  }
  return out;
}

function filesIn(dir: string, base = dir, out: Record<string, number> = {}): Record<string, number> {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const s = statSync(p);
    if (s.isDirectory()) filesIn(p, base, out);
    else out[p.slice(base.length + 1)] = s.size;
  }
  return out;
}

export async function benchLambda(m: BenchModel, cold: number, warm: number, progress?: (l: string) => void): Promise<LambdaBench | { skipped: string }> {
  if (!(await hasCommand('invoke'))) return { skipped: "this checkout has no 'dais invoke' (the Lambda emulator, issue 5)" };
  const out = mkdtempSync(join(tmpdir(), 'dais-bench-lambda-'));
  try {
    progress?.(`lambda: dais build ${m.path} --target lambda`);
    const b = await runDais(['build', m.path, '--target', 'lambda', '--out', out]);
    if (b.code !== 0) return { skipped: `dais build --target lambda failed: ${b.stderr.trim().split('\n').pop()}` };
    const files = filesIn(out);
    const zip = Object.entries(files).find(([f]) => f.endsWith('function.zip'))?.[1];
    progress?.(`lambda: dais invoke --cold ${cold} --warm ${warm}`);
    const r = await runDais(['invoke', out, '--cold', String(cold), '--warm', String(warm), '--event', m.requestFile, '--as', 'function-url']);
    if (r.code !== 0) return { skipped: `dais invoke failed: ${r.stderr.trim().split('\n').pop()}` };
    const reports = parseReportLines(`${r.stdout}\n${r.stderr}`);
    const colds = reports.filter((x) => x.initMs !== undefined);
    const warms = reports.filter((x) => x.initMs === undefined);
    if (colds.length === 0 && warms.length === 0) return { skipped: 'dais invoke printed no REPORT lines' };
    const res: LambdaBench = {
      memoryMb: reports[0].memorySizeMb,
      cold: { n: colds.length, initMs: summarize(colds.map((x) => x.initMs!)), durationMs: summarize(colds.map((x) => x.durationMs)) },
      warm: { n: warms.length, durationMs: summarize(warms.map((x) => x.durationMs)), billedMs: summarize(warms.map((x) => x.billedMs)) },
      maxMemoryUsedMb: Math.max(...reports.map((x) => x.maxMemoryUsedMb).filter(Number.isFinite)),
      packageBytes: { zip, unzipped: Object.entries(files).filter(([f]) => f.startsWith('function/')).reduce((t, [, b]) => t + b, 0), files },
    };
    progress?.(`  lambda: init p50 ${res.cold.initMs.p50.toFixed(1)} ms (${colds.length} cold); warm p50 ${res.warm.durationMs.p50.toFixed(2)} ms (${warms.length}); zip ${zip ?? '?'} B`);
    return res;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
