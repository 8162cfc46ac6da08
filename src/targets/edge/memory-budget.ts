// --max-memory: the model's peak memory, measured rather than guessed. A child process (plain node, the probe
// bundled with esbuild so no TypeScript loader is counted) loads the models on the target's runtime and runs their
// sample requests; its peak resident memory is compared with the budget, and the build is refused when over.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import type { ProbeConfig, ProbeResult } from './memory-probe.ts';
import { EdgeBuildError, type EdgeModelSource } from './model-source.ts';

export interface MemoryReport {
  budgetMb: number;
  /** The figure compared with the budget. */
  peakMb: number;
  /** What peakMb counts, in words (for messages and reports). */
  measure: string;
  runtime: ProbeConfig['runtime'];
  /** Peak resident memory of the whole measuring process. */
  processPeakMb: number;
  /** Resident memory of a bare `node` process on this machine, for scale. */
  nodeBaselineMb: number;
  /** Resident memory once the models were loaded, before the first request. */
  loadedMb: number;
  models: string[];
  runs: number;
}

const MB = 1024 * 1024;
// The same VmHWM reading as the probe (see peakRssBytes there), for a node that loads nothing.
const BARE_NODE_PEAK =
  "const m=/^VmHWM:\\s+(\\d+)/m.exec(require('fs').readFileSync('/proc/self/status','utf8'));" +
  'process.stdout.write(String(m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024))';
const HERE = dirname(fileURLToPath(import.meta.url));

function runNode(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Bundles the probe; the runtime packages stay external, imported from this installation by absolute path. */
async function bundleProbe(dir: string): Promise<string> {
  await esbuild.build({
    entryPoints: { probe: join(HERE, 'memory-probe.ts') },
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    // Each runtime lands in its own chunk, so the probe loads only the one it measures.
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
    plugins: [
      {
        name: 'runtime-packages-by-path',
        setup(build) {
          build.onResolve({ filter: /^onnxruntime-(node|web)(\/.*)?$/ }, async (args) => {
            if (args.pluginData === 'inner') return undefined;
            const r = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'inner' });
            return { path: r.path, external: true };
          });
        },
      },
    ],
  });
  return join(dir, 'probe.mjs');
}

export interface MemoryBudgetOptions {
  platform: string;
  maxMemoryMb: number;
  threads?: number;
}

/** Measures without judging (the bench and reports use it too). */
export async function measurePeakMemory(sources: EdgeModelSource[], o: Omit<MemoryBudgetOptions, 'maxMemoryMb'>): Promise<Omit<MemoryReport, 'budgetMb'>> {
  const browser = o.platform === 'browser';
  const runtime: ProbeConfig['runtime'] = browser ? 'onnxruntime-web' : 'onnxruntime-node';
  const dir = mkdtempSync(join(tmpdir(), 'dais-memory-'));
  try {
    const probe = await bundleProbe(dir);
    const config: ProbeConfig = { runtime, threads: browser ? 1 : o.threads, models: [] };
    for (const [i, s] of sources.entries()) {
      const path = join(dir, `model-${i}.onnx`);
      writeFileSync(path, s.onnx);
      const requests = s.samples.map((r, j) => {
        const p = join(dir, `request-${i}-${j}.json`);
        writeFileSync(p, JSON.stringify(r.body));
        return p;
      });
      config.models.push({ name: s.name, path, requests });
    }
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const [run, bare] = await Promise.all([
      runNode([probe, join(dir, 'config.json')], 5 * 60_000),
      runNode(['-e', BARE_NODE_PEAK], 30_000),
    ]);
    if (run.code !== 0) {
      throw new EdgeBuildError(`measuring memory failed: ${runtime} could not load or run the model in a child process: ${run.stderr.trim().split('\n')[0] || `exit code ${run.code}`}`);
    }
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!) as ProbeResult;
    const processPeakMb = result.maxRssBytes / MB;
    const nodeBaselineMb = Number(bare.stdout) / MB;
    // A device runs the whole process under the budget (systemd MemoryMax); a browser tab's own overhead is not
    // Node's, so there the budget covers what the runtime and the model add.
    const peakMb = browser ? processPeakMb - nodeBaselineMb : processPeakMb;
    const arch = o.platform !== 'browser' && o.platform !== `linux-${process.arch}` ? ` (measured with this machine's ${process.platform}-${process.arch} build; a ${o.platform} board's figure is close but not identical)` : '';
    const measure = browser
      ? `added by onnxruntime-web's WebAssembly runtime and the model on top of a bare Node process's ${nodeBaselineMb.toFixed(0)} MB`
      : `resident in one onnxruntime-node process loading the model${sources.length > 1 ? 's' : ''} and running ${sources.length > 1 ? 'their' : 'its'} sample requests${arch}`;
    return {
      peakMb,
      measure,
      runtime,
      processPeakMb,
      nodeBaselineMb,
      loadedMb: result.loadedRssBytes / MB,
      models: sources.map((s) => s.name),
      runs: result.runs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Measures and refuses the build (EdgeBuildError) when the peak is over the budget. */
export async function checkMemoryBudget(sources: EdgeModelSource[], o: MemoryBudgetOptions): Promise<MemoryReport> {
  const m = await measurePeakMemory(sources, o);
  const report: MemoryReport = { budgetMb: o.maxMemoryMb, ...m };
  if (m.peakMb > o.maxMemoryMb) {
    const what = sources.length === 1 ? `model '${sources[0].name}' needs` : `models ${sources.map((s) => `'${s.name}'`).join(', ')} need`;
    const file = sources.length === 1 ? sources[0].path : '<model.onnx>';
    const smaller = file.replace(/(\.[A-Za-z0-9]+)?$/, '.int8.onnx');
    throw new EdgeBuildError(
      `${what} ${Math.ceil(m.peakMb)} MB at peak (${m.measure}), over --max-memory ${o.maxMemoryMb} MB. ` +
        `Shrink it with 'dais optimize ${file} --quantize int8-weights --out ${smaller}' and build ${smaller}, or raise --max-memory.`,
    );
  }
  return report;
}
