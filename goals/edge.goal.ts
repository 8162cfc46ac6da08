// `npm run goals edge`: onnxruntime-web (WebAssembly, plain SIMD build, one thread) in Node and in headless Chromium
// against onnxruntime-node, measured in the same run on the same requests. Goal (issue 6): WASM <= 3x native per call.
// Every figure times the same work: a v2 JSON request decoded, validated, run, and its outputs encoded as JSON (what
// the browser SDK's infer() does). "native" is the faster of onnxruntime-node with its default threads and with one.
// Per-call time comes from rounds of k back-to-back calls (k sized so a round takes >= 5 ms, which keeps the browser's
// coarse timer out of the figure), the four contenders' rounds interleaved so background load hits them alike.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { requestFromJson, toJsonData } from '../src/core/index.ts';
import type { Backend } from '../src/runtime/backend.ts';
import { ServedModelVersion } from '../src/runtime/served-model.ts';
import { onnxruntimeNode } from '../src/runtime/onnxruntime-node.ts';
import { createOnnxruntimeWebBackend } from '../src/runtime/onnxruntime-web.ts';
import { buildEdge } from '../src/targets/edge/build.ts';
import { serveStatic, type StaticServer } from '../src/targets/edge/static-server.ts';
import { CHROMIUM_ARGS } from '../src/bench/edge.ts';
import { median } from '../src/bench/stats.ts';
import { exampleRequests } from './paths.ts';

const TARGET = 3;
const ROUNDS = 21;
const ROUND_MS = 5;

/** One contender: runs k calls of request i and returns the mean ms per call. */
type Round = (i: number, k: number) => Promise<number>;

async function nodeContender(backend: Backend, model: string, bodies: unknown[], intraOpThreads?: number): Promise<{ round: Round; dispose(): Promise<void> }> {
  const m = await ServedModelVersion.load(new Uint8Array(readFileSync(model)), { name: 'bench', version: '1', backend, sessionOptions: intraOpThreads ? { intraOpThreads } : undefined });
  return {
    async round(i, k) {
      const t0 = performance.now();
      for (let j = 0; j < k; j++) (await m.infer(requestFromJson(bodies[i]))).outputs.map(toJsonData);
      return (performance.now() - t0) / k;
    },
    dispose: () => m.dispose(),
  };
}

async function browserContender(page: Page, bodies: unknown[]): Promise<Round> {
  await page.evaluate(async (bodies) => {
    const sdk = await import(new URL('./dais.js', document.baseURI).href);
    (globalThis as unknown as { bench: unknown }).bench = { model: await sdk.load({ threads: 1 }), bodies };
  }, bodies);
  return (i, k) =>
    page.evaluate(
      async ({ i, k }) => {
        const { model, bodies } = (globalThis as unknown as { bench: { model: { infer(b: unknown): Promise<unknown> }; bodies: unknown[] } }).bench;
        const t0 = performance.now();
        for (let j = 0; j < k; j++) await model.infer(bodies[i]);
        return (performance.now() - t0) / k;
      },
      { i, k },
    );
}

/**
 * Rounds of the contenders interleaved (A B C D, A B C D, ...) so that load from other processes falls on all of them
 * alike; each contender's k is sized first so that one round takes >= ROUND_MS.
 */
async function measure(contenders: Round[], i: number): Promise<{ min: number; median: number }[]> {
  const ks: number[] = [];
  for (const c of contenders) {
    for (let w = 0; w < 3; w++) await c(i, 1);
    let k = 1;
    while (k < 4096 && (await c(i, k)) * k < ROUND_MS) k *= 2;
    ks.push(k);
  }
  const samples: number[][] = contenders.map(() => []);
  for (let r = 0; r < ROUNDS; r++) for (const [j, c] of contenders.entries()) samples[j].push(await c(i, ks[j]));
  return samples.map((xs) => ({ min: Math.min(...xs), median: median(xs) }));
}

const fmt = (ms: number | undefined) => (ms === undefined ? '-' : ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);
const both = (x: { min: number; median: number } | undefined) => (x ? `${fmt(x.min)} / ${fmt(x.median)}` : '-');
const ratio = (a: number | undefined, b: number) => (a === undefined ? '-' : `${(a / b).toFixed(2)}x`);

const chromiumPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const work = mkdtempSync(join(tmpdir(), 'dais-edge-bench-'));
const header = ['model', 'request', 'native default', 'native 1 thread', 'wasm Node', 'wasm Chromium', 'Node/native', 'Chromium/native', `<= ${TARGET}x`];
const rows: string[][] = [header];
let misses = 0;
let context: BrowserContext | undefined;
try {
  if (chromiumPath) context = await chromium.launchPersistentContext(join(work, 'profile'), { executablePath: chromiumPath, args: CHROMIUM_ARGS });
  else process.stdout.write('chromium not found (apt-get install chromium): the in-browser column is left out\n');
  const web = createOnnxruntimeWebBackend({ numThreads: 1 });
  for (const ex of exampleRequests()) {
    const bodies = ex.requests.map((r) => r.body);
    const node = [
      await nodeContender(onnxruntimeNode, ex.model, bodies),
      await nodeContender(onnxruntimeNode, ex.model, bodies, 1),
      await nodeContender(web, ex.model, bodies),
    ];
    const contenders: Round[] = node.map((c) => c.round);
    let server: StaticServer | undefined;
    let page: Page | undefined;
    if (context) {
      const out = join(work, ex.name);
      await buildEdge(ex.model, { platform: 'browser', out });
      // Cross-origin isolated for the browser's fine-grained timer; the bundle still runs on one thread.
      server = await serveStatic(out, { crossOriginIsolated: true });
      page = await context.newPage();
      await page.goto(server.url);
      contenders.push(await browserContender(page, bodies));
    }
    for (const [i, r] of ex.requests.entries()) {
      const [nd, n1, wn, wc] = await measure(contenders, i);
      const native = Math.min(nd.min, n1.min);
      const worst = Math.max(wn.min, wc?.min ?? 0);
      const met = worst / native <= TARGET;
      if (!met) misses++;
      rows.push([ex.name, `${r.file} [${r.body.inputs[0].shape.join('x')}]`, both(nd), both(n1), both(wn), both(wc), ratio(wn.min, native), ratio(wc?.min, native), met ? 'met' : 'MISS']);
    }
    for (const c of node) await c.dispose();
    await page?.close();
    await server?.close();
  }
} finally {
  await context?.close();
  rmSync(work, { recursive: true, force: true });
}

const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
process.stdout.write(
  `\nper call, best / median of ${ROUNDS} interleaved rounds (each the mean of k calls taking >= ${ROUND_MS} ms): a v2 JSON request ` +
    `decoded, validated, run, outputs encoded as JSON. Ratios use the best rounds; native = the faster onnxruntime-node column; ` +
    `WASM = onnxruntime-web's plain SIMD build, 1 thread. This machine: ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at the end.\n` +
    `${misses ? `${misses} of ${rows.length - 1} requests missed the ${TARGET}x goal` : `all ${rows.length - 1} requests within ${TARGET}x`}\n`,
);
process.exit(misses ? 1 : 0);
