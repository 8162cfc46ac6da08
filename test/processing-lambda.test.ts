// The Lambda target runs the same declared steps: a bundle built from a repository with audio and text steps is
// imported as Lambda would (its index.mjs), and a WAV body, v2 text strings and /v1/embeddings go through the
// handler as function-URL events; a JPEG and a PNG reach the image model through sharp, which the build copies into
// the function only because a model declares an image step.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLambda, type LambdaBuildOptions, type LambdaBuildResult } from '../src/targets/lambda/bundle.ts';
import { httpEvent } from '../src/targets/lambda/sample-events.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';
import { expected, fixture, processingRepository } from './support/processing.ts';

const options = (model: string, out: string): LambdaBuildOptions => ({ model, out, arch: 'x86_64', runtime: 'nodejs22.x', memoryMb: 1024, timeoutS: 30, packageType: 'zip', urlAuth: 'AWS_IAM' });

describe('declared processing in a Lambda bundle', () => {
  const repo = processingRepository();
  const tmp = mkdtempSync(join(tmpdir(), 'dais-lambda-processing-'));
  type Handler = (event: unknown) => Promise<{ statusCode: number; body: string }>;
  let handler: Handler;
  let built: LambdaBuildResult;
  before(async () => {
    for (const m of ['image-fewlabels', 'mlp', 'embed-cls']) rmSync(join(repo.root, m), { recursive: true, force: true });
    built = await buildLambda(options(repo.root, join(tmp, 'out')));
    ({ handler } = (await import(join(tmp, 'out', 'function', 'index.mjs'))) as { handler: Handler });
  });
  after(() => {
    repo.remove();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a WAV body reaches the keyword model through the handler', async (t) => {
    t.diagnostic(`zip: ${built.sizes.zipBytes} bytes, of which declared processing ${built.sizes.processingBytes} bytes unzipped`);
    const wav = new Uint8Array(readFileSync(join(EXAMPLES_DIR, 'keyword', 'samples', 'yes.wav')));
    const r = await handler(httpEvent('function-url', { method: 'POST', path: '/v2/models/keyword/infer', body: wav, headers: { 'content-type': 'audio/wav' } }));
    assert.equal(r.statusCode, 200, r.body);
    assert.match(JSON.parse(r.body).outputs[0].data[0], /^0\.\d{6}:0:yes$/);
  });

  it('text strings and /v1/embeddings give torch\'s pooled vectors', async () => {
    const texts = expected().text;
    const r = await handler(httpEvent('function-url', { method: 'POST', path: '/v1/embeddings', body: JSON.stringify({ model: 'embed', input: texts.map((c) => c.text) }) }));
    assert.equal(r.statusCode, 200, r.body);
    const body = JSON.parse(r.body);
    texts.forEach((c, i) => c.mean_l2.forEach((v, k) => assert.ok(Math.abs(body.data[i].embedding[k] - v) < 1e-4)));
    const bad = await handler(httpEvent('function-url', { method: 'POST', path: '/v2/models/embed/infer', body: JSON.stringify({ inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [1], data: [''] }] }) }));
    assert.equal(bad.statusCode, 400);
    assert.equal(JSON.parse(bad.body).code, 'INVALID_TEXT');
  });

  it('a JPEG and a PNG reach the image model through sharp in the function: torch\'s logits within the stated tolerance', async () => {
    for (const f of ['node_modules/sharp/package.json', 'node_modules/@img/sharp-linux-x64/package.json', 'image-decoder.mjs']) assert.ok(built.files.includes(`function/${f}`), f);
    assert.ok(built.sizes.processingBytes > 10e6 && built.sizes.processingBytes < built.sizes.unzippedBytes, `processing ${built.sizes.processingBytes} bytes is counted in the unzipped size`);
    for (const [file, type] of [['photo.jpg', 'image/jpeg'], ['photo.png', 'image/png']]) {
      const ref = expected().image[file].logits;
      const bare = await handler(httpEvent('function-url', { method: 'POST', path: '/v2/models/image/infer', body: fixture(file), headers: { 'content-type': type } }));
      assert.equal(bare.statusCode, 200, bare.body);
      const out = JSON.parse(bare.body).outputs[0];
      assert.deepEqual(out.shape, [1, 3]);
      const order = ref.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, i]) => i);
      assert.deepEqual(out.data.map((c: string) => Number(c.split(':')[1])), order, `${file}: top 3 classes as torch's`);
      (out.data as string[]).forEach((c, k) => assert.ok(Math.abs(Number(c.split(':')[0]) - ref[order[k]]) < 0.02, `${file}: ${c} vs torch ${ref[order[k]]}`));
    }
    const bad = await handler(httpEvent('function-url', { method: 'POST', path: '/v2/models/image/infer', body: fixture('photo.jpg').subarray(0, 200), headers: { 'content-type': 'image/jpeg' } }));
    assert.equal(bad.statusCode, 400, bad.body);
  });

  it('arm64 without sharp\'s arm64 binary installed is refused at build time, naming the npm command that installs it', async (t) => {
    if (existsSync(join(REPO_ROOT, 'node_modules', '@img', 'sharp-linux-arm64'))) return void t.skip('sharp\'s linux-arm64 binary is installed here');
    const one = processingRepository();
    try {
      await assert.rejects(
        buildLambda({ ...options(join(one.root, 'image'), join(tmp, 'arm')), arch: 'arm64', initCheck: false }),
        /model 'image': a model declares preprocess\.image, which needs sharp's linux-arm64 binary \(@img\/sharp-linux-arm64\).*npm install --os=linux --cpu=arm64 --libc=glibc sharp@/,
      );
    } finally {
      one.remove();
    }
  });

  it('a function without an image step ships neither sharp nor the decoder', async () => {
    const one = processingRepository();
    try {
      const r = await buildLambda({ ...options(join(one.root, 'keyword'), join(tmp, 'kw')), initCheck: false });
      assert.deepEqual(r.files.filter((f) => /node_modules|image-decoder|tokenizer/.test(f)), []);
      assert.equal(r.sizes.processingBytes, 0);
    } finally {
      one.remove();
    }
  });
});
