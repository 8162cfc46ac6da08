// The Lambda target runs the same declared steps: a bundle built from a repository with audio and text steps is
// imported as Lambda would (its index.mjs), and a WAV body, v2 text strings and /v1/embeddings go through the
// handler as function-URL events. An image step is refused at build time (sharp's libvips is not packaged).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLambda, type LambdaBuildOptions } from '../src/targets/lambda/bundle.ts';
import { httpEvent } from '../src/targets/lambda/sample-events.ts';
import { EXAMPLES_DIR } from './support/env.ts';
import { expected, processingRepository } from './support/processing.ts';

const options = (model: string, out: string): LambdaBuildOptions => ({ model, out, arch: 'x86_64', runtime: 'nodejs22.x', memoryMb: 1024, timeoutS: 30, packageType: 'zip', urlAuth: 'AWS_IAM' });

describe('declared processing in a Lambda bundle', () => {
  const repo = processingRepository();
  const tmp = mkdtempSync(join(tmpdir(), 'dais-lambda-processing-'));
  type Handler = (event: unknown) => Promise<{ statusCode: number; body: string }>;
  let handler: Handler;
  let zipBytes: number | undefined;
  before(async () => {
    for (const m of ['image', 'image-fewlabels', 'mlp', 'embed-cls']) rmSync(join(repo.root, m), { recursive: true, force: true });
    const r = await buildLambda(options(repo.root, join(tmp, 'out')));
    zipBytes = r.sizes.zipBytes;
    ({ handler } = (await import(join(tmp, 'out', 'function', 'index.mjs'))) as { handler: Handler });
  });
  after(() => {
    repo.remove();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a WAV body reaches the keyword model through the handler', async (t) => {
    t.diagnostic(`zip: ${zipBytes} bytes`);
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

  it('an image step is refused at build time, naming the model', async () => {
    const one = processingRepository();
    try {
      mkdirSync(join(tmp, 'img'), { recursive: true });
      await assert.rejects(buildLambda(options(join(one.root, 'image'), join(tmp, 'img'))), /model 'image': preprocess\.image is not supported in a Lambda bundle/);
    } finally {
      one.remove();
    }
  });
});
