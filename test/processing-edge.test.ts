// Declared processing in the edge bundles: `dais build <model folder> --target edge` carries config.yaml's steps,
// the labels file and (for text only) tokenizer.json. The browser bundle runs in Chromium on a Blob of a PNG/JPEG
// and on a text; the device bundle (Node, sharp only when an image step is declared) answers a bare JPEG body and
// /v1/embeddings. Each answer is compared with the server's for the same file.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEdge } from '../src/targets/edge/build.ts';
import { serveStatic, type StaticServer } from '../src/targets/edge/static-server.ts';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { CHROMIUM_ARGS } from './edge-support.ts';
import { requireTool } from './support/env.ts';
import { fixture, PROCESSING_FIXTURES, processingRepository } from './support/processing.ts';

/** "score:index:label" strings: same labels in the same order, scores within `tol`. */
function sameClassification(got: string[], want: string[], tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  got.forEach((g, i) => {
    const [gs, ...gl] = g.split(':');
    const [ws, ...wl] = want[i].split(':');
    assert.equal(gl.join(':'), wl.join(':'), `${what}[${i}]: ${g} vs server ${want[i]}`);
    assert.ok(Math.abs(Number(gs) - Number(ws)) <= tol, `${what}[${i}]: ${g} vs server ${want[i]}`);
  });
}

describe('declared processing in edge bundles', () => {
  const repo = processingRepository();
  const work = mkdtempSync(join(tmpdir(), 'dais-processing-edge-'));
  let server: RunningServer;
  const statics: StaticServer[] = [];
  const children: ChildProcess[] = [];
  before(async () => {
    server = await serve({ model: repo.root, port: 0 });
  });
  after(async () => {
    for (const c of children) c.kill('SIGTERM');
    for (const s of statics) await s.close();
    await server?.close();
    repo.remove();
    rmSync(work, { recursive: true, force: true });
  });

  const fromServer = async (model: string, body: Uint8Array, type: string) =>
    (await (await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': type }, body: body as BodyInit })).json()) as { outputs: { data: unknown[]; shape: number[] }[] };

  it('browser: the bundle carries the steps; a Blob of a PNG/JPEG and a text give the server\'s answers', async (t: TestContext) => {
    const chromiumPath = requireTool(t, 'chromium', 'chromium');
    if (!chromiumPath) return;
    const imageOut = join(work, 'browser-image');
    const textOut = join(work, 'browser-embed');
    await buildEdge(join(repo.root, 'image'), { platform: 'browser', out: imageOut });
    await buildEdge(join(repo.root, 'embed'), { platform: 'browser', out: textOut });
    // Only what the steps need: the tokenizer file and library travel with the text model alone.
    assert.ok(existsSync(join(textOut, 'tokenizer.json')));
    assert.ok(!existsSync(join(imageOut, 'tokenizer.json')));
    assert.match(readFileSync(join(textOut, 'dais.js'), 'utf8'), /WordPiece/);
    assert.doesNotMatch(readFileSync(join(imageOut, 'dais.js'), 'utf8'), /WordPiece/);

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
    try {
      for (const [out, run] of [
        [imageOut, async (url: string) => {
          const page = await browser.newPage();
          await page.goto(url);
          for (const [file, type, tol] of [['photo.png', 'image/png', 1e-4], ['photo.jpg', 'image/jpeg', 0.02]] as const) {
            const got = await page.evaluate(async ({ bytes, type }) => {
              const sdk = await import(new URL('./dais.js', document.baseURI).href);
              const model = await sdk.load();
              const meta = model.metadata();
              const r = await model.infer(new Blob([new Uint8Array(bytes)], { type }));
              await model.dispose();
              return { data: r.outputs[0].data as string[], input: meta.inputs[0] };
            }, { bytes: Array.from(fixture(file)), type });
            assert.deepEqual([got.input.name, got.input.datatype, got.input.shape], ['pixels', 'BYTES', [-1]]);
            const want = (await fromServer('image', fixture(file), type)).outputs[0].data as string[];
            assert.equal(want.length, 3);
            // PNG: the browser decodes to the same pixels as sharp; JPEG: decoders differ (docs/processing.md).
            sameClassification(got.data, want, tol, `${file} in Chromium`);
          }
          // The bundle's demo page takes the file itself.
          await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
          await page.setInputFiles('input[name="pixels.file"]', join(PROCESSING_FIXTURES, 'photo.png'));
          await page.click('#run');
          await page.waitForSelector('#outputs tr[data-output="logits"]', { timeout: 30_000 });
          const shown = await page.textContent('#outputs tr[data-output="logits"] td.data');
          const label = (((await fromServer('image', fixture('photo.png'), 'image/png')).outputs[0].data as string[])[0]).split(':')[2];
          assert.ok(shown!.includes(`:${label}"`), `${shown} shows ${label}`);
          await page.close();
        }],
        [textOut, async (url: string) => {
          const page = await browser.newPage();
          await page.goto(url);
          const got = await page.evaluate(async () => {
            const sdk = await import(new URL('./dais.js', document.baseURI).href);
            const model = await sdk.load();
            const r = await model.infer('the cat sat on the mat');
            await model.dispose();
            return { data: r.outputs[0].data as number[], shape: r.outputs[0].shape as number[] };
          });
          const want = (await (await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'embed', input: 'the cat sat on the mat' }) })).json()).data[0].embedding as number[];
          assert.deepEqual(got.shape, [1, 16]);
          got.data.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-4, `embedding[${i}]: ${v} vs server ${want[i]}`));
          await page.close();
        }],
      ] as const) {
        const s = await serveStatic(out);
        statics.push(s);
        await run(s.url);
      }
    } finally {
      await browser.close();
    }
  });

  /** Starts a device bundle's server on a free port; resolves with its URL. */
  async function startDevice(dir: string): Promise<string> {
    const child = spawn(process.execPath, [join(dir, 'dais-edge.mjs'), 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        const m = /on (http:\/\/\S+)/.exec(d.toString());
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`dais-edge exited ${code}: ${err}`)));
    });
  }

  it('device: sharp travels only with an image step; a JPEG body and /v1/embeddings give the server\'s answers', async () => {
    const both = join(work, 'repo-both');
    for (const m of ['image', 'embed']) cpSync(join(repo.root, m), join(both, m), { recursive: true });
    const withImage = join(work, 'device-both');
    const textOnly = join(work, 'device-embed');
    await buildEdge(both, { platform: 'linux-x64', out: withImage });
    await buildEdge(join(repo.root, 'embed'), { platform: 'linux-x64', out: textOnly });
    assert.ok(existsSync(join(withImage, 'node_modules', 'sharp', 'package.json')));
    assert.ok(existsSync(join(withImage, 'models', 'image', 'labels.txt')));
    assert.ok(existsSync(join(withImage, 'models', 'image', 'processing.json')));
    assert.ok(!existsSync(join(textOnly, 'node_modules', 'sharp')), 'no sharp without an image step');
    assert.ok(existsSync(join(textOnly, 'models', 'embed', 'tokenizer.json')));
    assert.ok(JSON.parse(readFileSync(join(withImage, 'package.json'), 'utf8')).dependencies.sharp);

    const url = await startDevice(withImage);
    const jpg = fixture('photo.jpg');
    const got = (await (await fetch(`${url}/v2/models/image/infer`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpg as BodyInit })).json()) as { outputs: { data: string[] }[] };
    const want = (await fromServer('image', jpg, 'image/jpeg')).outputs[0].data as string[];
    // Same decoder (sharp), same runtime: the same strings.
    assert.deepEqual(got.outputs[0].data, want);
    const meta = await (await fetch(`${url}/v2/models/image`)).json();
    assert.deepEqual([meta.inputs[0].datatype, meta.inputs[0].shape], ['BYTES', [-1]]);
    const body = JSON.stringify({ model: 'embed', input: ['the cat sat on the mat', 'a dog ran'] });
    const emb = async (base: string) => (await (await fetch(`${base}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()).data as { embedding: number[] }[];
    const s = await emb(server.url);
    // The text-only bundle (no sharp in it) starts and answers the same.
    for (const d of [await emb(url), await emb(await startDevice(textOnly))]) {
      assert.equal(d.length, 2);
      d.forEach((e, i) => assert.deepEqual(e.embedding, s[i].embedding));
    }
    // A corrupt image is the server's 400, and the bundle keeps serving.
    const bad = await fetch(`${url}/v2/models/image/infer`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpg.subarray(0, 200) as BodyInit });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).code, 'UNDECODABLE_INPUT');
  });

  it('device: an image step for a platform whose sharp binary is not installed is refused, naming it', async (t) => {
    if (existsSync(join(process.cwd(), 'node_modules', '@img', 'sharp-linux-arm64'))) return t.skip('sharp\'s linux-arm64 binary is installed here');
    await assert.rejects(buildEdge(join(repo.root, 'image'), { platform: 'linux-arm64', out: join(work, 'device-arm') }), /preprocess\.image.*sharp's linux-arm64 binary/);
  });
});
