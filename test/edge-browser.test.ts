// The browser bundle in real headless Chromium: each example is built with `dais build --target edge`, served from
// loopback by a plain static server, and driven with playwright-core. The SDK's outputs must equal the training
// framework's predictions (relative error <= 1e-4) for every request; the demo page must build its form from the
// metadata and run; bad input must reject with the REST API's error code. Transfer size (gzip, of what the page
// really fetched) and in-page latency are reported as diagnostics.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildEdge } from '../src/targets/edge/build.ts';
import type { BrowserBuildReport } from '../src/targets/edge/browser-bundle.ts';
import { formatBytes } from '../src/targets/edge/files.ts';
import { serveStatic, type StaticServer } from '../src/targets/edge/static-server.ts';
import { assertMatchesExpected, CHROMIUM_ARGS, examples, type JsonOutput } from './edge-support.ts';
import { REPO_ROOT, requireShared, requireTool } from './support/env.ts';

const RUNS = 20;

interface PageResult {
  file: string;
  outputs: JsonOutput[];
  id?: string;
  medianMs: number;
}

/** Loads the SDK in the page the way a user's script would and runs every request, timing RUNS calls of each. */
async function runInPage(page: Page, requests: { file: string; body: unknown }[]): Promise<{ results: PageResult[]; runtime: { threads: number; executionProviders: string[]; loadMs: number } }> {
  return page.evaluate(
    async ({ requests, runs }) => {
      const sdk = await import(new URL('./dais.js', document.baseURI).href);
      const model = await sdk.load();
      const results = [];
      for (const r of requests) {
        const response = await model.infer(r.body);
        const times: number[] = [];
        for (let i = 0; i < runs; i++) {
          const t0 = performance.now();
          await model.infer(r.body);
          times.push(performance.now() - t0);
        }
        times.sort((a, b) => a - b);
        results.push({ file: r.file, outputs: response.outputs, id: response.id, medianMs: times[Math.floor(times.length / 2)] });
      }
      await model.dispose();
      return { results, runtime: model.runtime };
    },
    { requests, runs: RUNS },
  );
}

function gzipFetched(server: StaticServer, root: string): number {
  const seen = new Set(server.requested.filter((p) => !p.endsWith('favicon.ico')));
  let total = 0;
  for (const p of seen) total += gzipSync(readFileSync(join(root, p.endsWith('/') ? `${p}index.html` : p))).length;
  return total;
}

test('browser bundle in headless Chromium', async (t: TestContext) => {
  const chromiumPath = requireTool(t, 'chromium', 'chromium');
  if (!chromiumPath) return;
  const work = mkdtempSync(join(tmpdir(), 'dais-edge-browser-'));
  let context: BrowserContext | undefined;
  const servers: StaticServer[] = [];
  try {
    context = await chromium.launchPersistentContext(join(work, 'profile'), { executablePath: chromiumPath, args: CHROMIUM_ARGS });
    const open = async (root: string, crossOriginIsolated = false) => {
      const server = await serveStatic(root, { crossOriginIsolated });
      servers.push(server);
      const page = await context!.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(server.url);
      return { server, page, errors };
    };

    const exs = examples();
    const pages = new Map<string, Page>();
    for (const ex of exs) {
      await t.test(`${ex.name}: every request matches the framework's predictions in the page`, async (t) => {
        const out = join(work, ex.name);
        const { build } = await buildEdge(ex.model, { platform: 'browser', out });
        const b = build as BrowserBuildReport;
        assert.equal(b.model.name, ex.name);
        const { server, page, errors } = await open(out);
        pages.set(ex.name, page);
        await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
        const demoLoadMs = await page.evaluate(() => (globalThis as unknown as { daisDemo: { model: { runtime: { loadMs: number } } } }).daisDemo.model.runtime.loadMs);
        const { results, runtime } = await runInPage(page, ex.requests.map((r) => ({ file: r.file, body: r.body })));
        assert.deepEqual(runtime.executionProviders, ['wasm']);
        assert.equal(runtime.threads, 1);
        for (const r of ex.requests) {
          const got = results.find((x) => x.file === r.file)!;
          assert.equal(got.id, r.body.id, `${r.file}: id echoed`);
          assertMatchesExpected(got.outputs, r.expected, `chromium ${ex.name}/${r.file}`);
        }
        assert.deepEqual(errors, []);
        const fetchedGzip = gzipFetched(server, out);
        const latency = results.map((r) => `${r.file} ${r.medianMs.toFixed(1)} ms`).join(', ');
        t.diagnostic(
          `${ex.name}: page fetched ${formatBytes(fetchedGzip)} gzip (whole bundle ${formatBytes(b.totalGzipBytes)}); ` +
            `load() ${demoLoadMs.toFixed(0)} ms incl. wasm compile; median in-page latency of ${RUNS} calls (timer step 0.1 ms): ${latency}`,
        );
      });
    }

    const first = exs[0];
    await t.test('the demo page builds its form from the metadata, runs the sample and shows outputs and latency', async () => {
      const page = pages.get(first.name)!;
      const legends = await page.$$eval('#inputs legend', (ls) => ls.map((l) => l.textContent ?? ''));
      const meta = await page.evaluate(() => (globalThis as unknown as { daisDemo: { model: { metadata(): { inputs: { name: string }[] } } } }).daisDemo.model.metadata());
      assert.deepEqual(legends.map((l) => l.split(' ')[0]), meta.inputs.map((i) => i.name));
      // The picker starts on the first sample; its outputs must be the framework's.
      const sample = first.requests[0];
      assert.equal(await page.$eval('#sample', (s) => (s as HTMLSelectElement).value), `requests/${sample.file}`);
      await page.click('#run');
      await page.waitForSelector('#outputs table');
      assert.match((await page.textContent('#latency')) ?? '', /^\d+\.\d\d ms in the page$/);
      const response = await page.evaluate(() => (globalThis as unknown as { daisDemo: { lastResponse: { outputs: unknown[] } } }).daisDemo.lastResponse);
      assertMatchesExpected(response.outputs as JsonOutput[], sample.expected, `demo page ${first.name}/${sample.file}`);
      const rows = await page.$$eval('#outputs tr[data-output]', (rs) => rs.map((r) => r.getAttribute('data-output')));
      const outputNames = await page.evaluate(() =>
        (globalThis as unknown as { daisDemo: { model: { metadata(): { outputs: { name: string }[] } } } }).daisDemo.model.metadata().outputs.map((o) => o.name),
      );
      assert.deepEqual(rows, outputNames, 'one table row per model output');
    });

    await t.test('bad input rejects in the page with the REST error code, status and a message naming the field', async () => {
      const page = pages.get(first.name)!;
      const err = await page.evaluate(async () => {
        const sdk = await import(new URL('./dais.js', document.baseURI).href);
        const model = await sdk.load();
        const input = model.metadata().inputs[0];
        try {
          await model.infer({ inputs: [{ name: input.name, datatype: input.datatype, shape: [1, 3], data: [1, 2, 3] }] });
          return undefined;
        } catch (e) {
          const x = e as { code: string; status: number; message: string; name: string };
          return { code: x.code, status: x.status, message: x.message, name: x.name };
        }
      });
      assert.ok(err, 'infer rejected');
      assert.equal(err.code, 'SHAPE_MISMATCH');
      assert.equal(err.status, 400);
      assert.equal(err.name, 'InferenceError');
      assert.match(err.message, /input '.+' has shape \[1, 3\]/);
    });

    await t.test('a Keras .h5 model builds into a browser bundle that gives the Keras predictions', async (t) => {
      const h5 = requireShared(t, 'models/keras-mnist/dense_28x28x1.h5');
      if (!h5) return;
      const want = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'keras', 'dense_28x28x1.expected.json'), 'utf8')) as {
        input: { name: string; shape: number[]; data: number[] };
        output: { shape: number[]; data: number[] };
      };
      const out = join(work, 'keras');
      await buildEdge(h5, { platform: 'browser', out });
      const { page, errors } = await open(out);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
      const body = { inputs: [{ name: want.input.name, shape: want.input.shape, datatype: 'FP32', data: want.input.data }] };
      const { results } = await runInPage(page, [{ file: 'keras.json', body }]);
      const output = results[0].outputs[0];
      assertMatchesExpected(results[0].outputs, { [output.name]: { datatype: 'FP32', shape: want.output.shape, data: want.output.data } }, 'chromium keras dense_28x28x1');
      assert.deepEqual(errors, []);
      await page.close();
    });

    // One bundle covers both opt-ins (each costs a build and a wasm compile): WebGPU build, 2 threads.
    await t.test('--webgpu --threads 2: wasm fallback without a GPU adapter; 2 threads only on a COOP/COEP page; same outputs', async () => {
      const out = join(work, `${first.name}-webgpu-threads`);
      const { build } = await buildEdge(first.model, { platform: 'browser', out, webgpu: true, threads: 2 });
      const b = build as BrowserBuildReport;
      assert.ok(b.runtime.files.every((f) => f.includes('asyncify')), 'the WebGPU build ships the asyncify runtime only');
      assert.equal(b.runtime.crossOriginIsolationRequired, true);
      assert.match(readFileSync(join(out, 'README.md'), 'utf8'), /Cross-Origin-Embedder-Policy: require-corp/);
      const reqs = first.requests.map((r) => ({ file: r.file, body: r.body }));
      const plain = await open(out, false);
      const single = await runInPage(plain.page, reqs);
      assert.equal(single.runtime.threads, 1, 'no cross-origin isolation: one thread');
      assert.deepEqual(single.runtime.executionProviders, ['wasm'], 'headless Chromium with --disable-gpu grants no WebGPU adapter');
      await plain.page.close();
      const isolated = await open(out, true);
      const multi = await runInPage(isolated.page, reqs);
      assert.equal(multi.runtime.threads, 2);
      for (const run of [single, multi]) {
        for (const r of first.requests) assertMatchesExpected(run.results.find((x) => x.file === r.file)!.outputs, r.expected, `webgpu/threads bundle ${r.file}`);
      }
    });
  } finally {
    await context?.close();
    for (const s of servers) await s.close();
    rmSync(work, { recursive: true, force: true });
  }
});
