// The browser side of declared processing, in Chromium: the browser's own decoders feeding the core's
// resize/crop/normalise give the Node (sharp) tensor within the stated tolerance, and the server's root page lets a
// person upload an image or type text and see labels/scores.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { imageToTensor, type ImageStep } from '../src/core/processing/image.ts';
import { decodeImageWithSharp } from '../src/runtime/image-decoder-sharp.ts';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { REPO_ROOT, requireTool } from './support/env.ts';
import { fixture, PROCESSING_FIXTURES, processingRepository } from './support/processing.ts';

const STEP: ImageStep = { input: 'pixels', resize: 36, crop: [32, 32], scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], layout: 'NCHW', maxPixels: 1e6 };
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

async function launch(t: TestContext) {
  if (!requireTool(t, 'chromium', 'chromium')) return undefined;
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
}

describe('declared processing in Chromium', () => {
  const repo = processingRepository();
  let server: RunningServer;
  const shots = mkdtempSync(join(tmpdir(), 'dais-shots-'));
  before(async () => {
    server = await serve({ model: repo.root, port: 0 });
  });
  after(async () => {
    await server?.close();
    repo.remove();
    if (!process.env.DAIS_KEEP_SCREENSHOTS) rmSync(shots, { recursive: true, force: true });
  });

  it('browser decode (createImageBitmap + canvas) vs sharp, same core steps: PNG identical, JPEG within 3 levels of 255', async (t) => {
    const browser = await launch(t);
    if (!browser) return;
    try {
      const built = await esbuild.build({
        stdin: {
          contents: `import { decodeImageInBrowser } from './src/targets/edge/browser/image-decoder.ts';
            import { imageToTensor } from './src/core/processing/image.ts';
            globalThis.daisTensor = async (bytes, step) => Array.from(imageToTensor(await decodeImageInBrowser(new Uint8Array(bytes), step.maxPixels), step).data);`,
          resolveDir: REPO_ROOT,
          loader: 'ts',
        },
        bundle: true,
        format: 'iife',
        write: false,
        logLevel: 'silent',
      });
      const page = await browser.newPage();
      await page.goto(server.url + '/v2');
      await page.addScriptTag({ content: built.outputFiles[0].text });
      for (const [file, limit] of [['photo.png', 0], ['photo.jpg', 3]] as const) {
        const bytes = Array.from(fixture(file));
        const ours = await page.evaluate(([b, s]) => (globalThis as unknown as { daisTensor(b: number[], s: unknown): Promise<number[]> }).daisTensor(b, s), [bytes, STEP] as const);
        const node = imageToTensor(await decodeImageWithSharp(fixture(file), 1e6), STEP).data;
        assert.equal(ours.length, node.length);
        let max = 0;
        for (let i = 0; i < node.length; i++) max = Math.max(max, Math.abs(ours[i] - node[i]) * 255);
        t.diagnostic(`${file}: browser vs Node max difference ${max.toFixed(2)} levels`);
        assert.ok(max <= limit + 1e-3, `${file}: ${max} levels > ${limit}`);
      }
    } finally {
      await browser.close();
    }
  });

  it('GET / lists the models; uploading an image shows the labels and scores the API gives; text shows the embedding', async (t) => {
    const browser = await launch(t);
    if (!browser) return;
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
      await page.goto(server.url + '/');
      await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
      const names = await page.$$eval('section.model h2', (hs) => hs.map((h) => h.firstChild!.textContent!.trim()));
      assert.deepEqual(names, ['embed', 'embed-cls', 'embed-trunc', 'image', 'image-fewlabels', 'keyword', 'mlp']);
      const inputs = await page.$$eval('#model-image table:first-of-type code', (cs) => cs.map((c) => c.textContent));
      assert.deepEqual(inputs, ['pixels']);
      await page.setInputFiles('#model-image input[type=file]', join(PROCESSING_FIXTURES, 'photo.jpg'));
      await page.click('#model-image button');
      await page.waitForSelector('#model-image .result', { timeout: 30_000 });
      const shown = await page.$$eval('#model-image .result tr', (rows) => rows.map((r) => [r.querySelector('.label')!.textContent, r.querySelector('.score')!.textContent]));
      const api = await (await fetch(`${server.url}/v2/models/image/infer`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: fixture('photo.jpg') as BodyInit })).json();
      assert.deepEqual(shown, api.outputs[0].data.map((s: string) => [s.split(':')[2], Number(s.split(':')[0]).toFixed(4)]));
      await page.fill('#model-embed textarea', 'the cat sat on the mat');
      await page.click('#model-embed button');
      await page.waitForSelector('#model-embed .embedding', { timeout: 30_000 });
      assert.match((await page.textContent('#model-embed .embedding'))!, /^last_hidden_state \[1, 16\]: -?\d\.\d{4}/);
      // A bad file shows the server's error, not a blank.
      await page.setInputFiles('#model-keyword input[type=file]', join(PROCESSING_FIXTURES, 'photo.png'));
      await page.click('#model-keyword button');
      await page.waitForSelector('#model-keyword .err', { timeout: 30_000 });
      assert.match((await page.textContent('#model-keyword .err'))!, /UNSUPPORTED_MEDIA_TYPE|UNSUPPORTED_FILE_FORMAT/);
      const shot = join(shots, 'root-page.png');
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);
    } finally {
      await browser.close();
    }
  });
});
