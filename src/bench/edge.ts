// Edge: the model on onnxruntime-web's WebAssembly backend, in Node (the runtime dais's edge bundles ship) and in
// headless Chromium through the browser bundle `dais build --target edge` makes; plus that bundle's sizes.
import { readFileSync, mkdtempSync, readdirSync, statSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { BenchModel } from './requests.ts';
import { summarize, type Stats } from './stats.ts';
import { hasCommand, runDais } from './cli-runner.ts';

export interface EdgeBench {
  node?: { backend: string; runs: number; latencyMs: Stats };
  /** latencyMs: per-call means of samples of `callsPerSample` calls (the page's clock is 0.1 ms coarse). */
  browser?: { runs: number; callsPerSample: number; latencyMs: Stats; loadMs: number; userAgent: string };
  bundle?: { files: Record<string, { bytes: number; gzipBytes: number }>; totalBytes: number; totalGzipBytes: number };
}

export const CHROMIUM = '/usr/bin/chromium';
/** Headless Chromium without the background work (updates, sync, QUIC) that would share the CPU with a measurement. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function nodeWasm(m: BenchModel, durationS: number): Promise<EdgeBench['node']> {
  const { createOnnxruntimeWebBackend } = await import('../runtime/onnxruntime-web.ts');
  const backend = createOnnxruntimeWebBackend();
  const session = await backend.createSession(new Uint8Array(readFileSync(m.path)));
  const names = session.outputs.map((o) => o.name);
  try {
    for (let i = 0; i < 10; i++) await session.run(m.request.inputs, names);
    const times: number[] = [];
    const end = performance.now() + durationS * 1000;
    while (performance.now() < end) {
      const s = performance.now();
      await session.run(m.request.inputs, names);
      times.push(performance.now() - s);
    }
    return { backend: backend.name, runs: times.length, latencyMs: summarize(times) };
  } finally {
    await session.dispose();
  }
}

function bundleSizes(dir: string): EdgeBench['bundle'] {
  const files: Record<string, { bytes: number; gzipBytes: number }> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const buf = readFileSync(p);
        files[p.slice(dir.length + 1)] = { bytes: buf.length, gzipBytes: gzipSync(buf, { level: 9 }).length };
      }
    }
  };
  walk(dir);
  const v = Object.values(files);
  return { files, totalBytes: v.reduce((s, f) => s + f.bytes, 0), totalGzipBytes: v.reduce((s, f) => s + f.gzipBytes, 0) };
}

async function browserWasm(dir: string, m: BenchModel, durationS: number): Promise<EdgeBench['browser']> {
  const { serveStatic } = await import('../targets/edge/static-server.ts');
  const { chromium } = await import('playwright-core');
  const server = await serveStatic(dir);
  const profile = mkdtempSync(join(tmpdir(), 'dais-bench-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await ctx.newPage();
    await page.goto(`${server.url}index.html`);
    const request = JSON.parse(readFileSync(m.requestFile, 'utf8'));
    const r = await page.evaluate(async ({ request, durationS }) => {
      const t0 = performance.now();
      const sdk = await import(`${location.origin}/dais.js`);
      const model = await sdk.load();
      const loadMs = performance.now() - t0;
      // Pages that are not cross-origin isolated get performance.now() coarsened to 0.1 ms, as long as a fast
      // model's whole call: time chunks of calls lasting >= 5 ms and take each chunk's mean per call.
      const w0 = performance.now();
      for (let i = 0; i < 20; i++) await model.infer(request);
      const perCall = Math.max((performance.now() - w0) / 20, 0.001);
      const chunk = Math.max(1, Math.ceil(5 / perCall));
      const times: number[] = [];
      const end = performance.now() + durationS * 1000;
      while (performance.now() < end) {
        const s = performance.now();
        for (let i = 0; i < chunk; i++) await model.infer(request);
        times.push((performance.now() - s) / chunk);
      }
      return { times, chunk, loadMs, userAgent: navigator.userAgent };
    }, { request, durationS });
    return { runs: r.times.length * r.chunk, callsPerSample: r.chunk, latencyMs: summarize(r.times), loadMs: r.loadMs, userAgent: r.userAgent };
  } finally {
    await ctx.close();
    await server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

export async function benchEdge(
  m: BenchModel,
  o: { node: boolean; browser: boolean; durationS: number },
  progress?: (l: string) => void,
): Promise<{ result?: EdgeBench; skipped: { target: string; reason: string }[] }> {
  const result: EdgeBench = {};
  const skipped: { target: string; reason: string }[] = [];
  if (o.node) {
    progress?.('edge-node: onnxruntime-web (WebAssembly) in Node');
    try {
      result.node = await nodeWasm(m, o.durationS);
      progress?.(`  edge-node: p50 ${result.node!.latencyMs.p50.toFixed(3)} ms over ${result.node!.runs} runs`);
    } catch (e) {
      skipped.push({ target: 'edge-node', reason: (e as Error).message.split('\n')[0] });
      progress?.(`  edge-node: not measured: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (o.browser) {
    const out = mkdtempSync(join(tmpdir(), 'dais-bench-edge-'));
    try {
      const b = await runDais(['build', m.path, '--target', 'edge', '--out', out]);
      if (b.code !== 0 || !existsSync(join(out, 'dais.js'))) {
        skipped.push({ target: 'edge-browser', reason: `no browser bundle: dais build --target edge ${b.code !== 0 ? `failed (${b.stderr.trim().split('\n').pop()})` : 'made no dais.js'} (issue 6)` });
      } else {
        result.bundle = bundleSizes(out);
        progress?.(`edge bundle: ${result.bundle!.totalBytes} B, ${result.bundle!.totalGzipBytes} B gzipped`);
        if (!existsSync(CHROMIUM)) skipped.push({ target: 'edge-browser', reason: `${CHROMIUM} not found: apt-get install chromium` });
        else {
          progress?.('edge-browser: the browser bundle in headless Chromium');
          result.browser = await browserWasm(out, m, o.durationS).catch((e: Error) => {
            skipped.push({ target: 'edge-browser', reason: e.message.split('\n')[0] });
            return undefined;
          });
          if (result.browser) progress?.(`  edge-browser: p50 ${result.browser!.latencyMs.p50.toFixed(3)} ms over ${result.browser!.runs} runs (load ${result.browser!.loadMs.toFixed(0)} ms)`);
        }
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  return { result: Object.keys(result).length ? result : undefined, skipped };
}

export { hasCommand };
