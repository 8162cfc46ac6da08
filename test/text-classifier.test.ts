// examples/text-classifier: a trained BERT-style encoder (make_model.py) with tokenizer.json, softmax, top 2 and
// labels.txt declared. The same raw texts through REST (JSON BYTES strings, Triton classification strings), gRPC, the
// Lambda emulator and the browser SDK in Chromium give torch's outputs (expected.json) within 1e-4 relative, on the
// ids the tokenizer library gives.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import type { RunningServer } from '../src/serve/index.ts';
import { buildEdge } from '../src/targets/edge/build.ts';
import { serveStatic } from '../src/targets/edge/static-server.ts';
import { buildLambda } from '../src/targets/lambda/bundle.ts';
import { LambdaEmulator } from '../src/targets/lambda/emulator.ts';
import { httpEvent } from '../src/targets/lambda/sample-events.ts';
import { CHROMIUM_ARGS } from './edge-support.ts';
import { EXAMPLES_DIR, requireTool } from './support/env.ts';
import { serveWithGrpc } from './support/serving.ts';

type GrpcClient = { ModelInfer(request: object, callback: (e: Error | null, v: unknown) => void): void; close(): void };

const DIR = join(EXAMPLES_DIR, 'text-classifier');
const LABELS = readFileSync(join(DIR, 'labels.txt'), 'utf8').trim().split('\n');
interface Case {
  text: string;
  ids: number[];
  logits: number[];
  probabilities: number[];
}
const CASES = (JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as { texts: Case[] }).texts;
const TEXTS = CASES.map((c) => c.text);

/** Each value within 1e-4 of torch's, relative (with a floor for probabilities near 0). */
function assertNear(got: ArrayLike<number>, want: readonly number[], what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= Math.max(1e-4 * Math.abs(want[i]), 1e-7), `${what}[${i}]: ${got[i]} vs torch ${want[i]}`);
}

/** The declared output for all texts as one batch: softmax of the logits, [N, 2]. */
function assertProbabilities(output: { shape: number[]; data: number[] }, what: string): void {
  assert.deepEqual(output.shape, [CASES.length, 2], what);
  CASES.forEach((c, i) => assertNear(output.data.slice(2 * i, 2 * i + 2), c.probabilities, `${what}: '${c.text}'`));
}

/** Triton's "score:index:label" strings, top 2, in torch's order. */
function assertClassification(output: { shape: number[]; data: string[] }, what: string, cases = CASES): void {
  assert.deepEqual(output.shape, [cases.length, 2], what);
  cases.forEach((c, i) => {
    const order = c.probabilities[1] > c.probabilities[0] ? [1, 0] : [0, 1];
    const row = output.data.slice(2 * i, 2 * i + 2);
    row.forEach((s, k) => {
      const m = /^(\d\.\d{6}):(\d):(\w+)$/.exec(s);
      assert.ok(m, `${what}: '${s}' is score:index:label`);
      assert.equal(Number(m[2]), order[k], `${what}: '${c.text}' class ${k}`);
      assert.equal(m[3], LABELS[order[k]]);
      assert.ok(Math.abs(Number(m[1]) - c.probabilities[order[k]]) <= 1e-6 + 1e-4 * c.probabilities[order[k]], `${what}: ${s} vs torch ${c.probabilities[order[k]]}`);
    });
  });
}

const textRequest = (classification?: number) =>
  JSON.stringify({
    inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [TEXTS.length], data: TEXTS }],
    outputs: [{ name: 'logits', ...(classification ? { parameters: { classification } } : {}) }],
  });

describe('examples/text-classifier on a trained network', () => {
  const work = mkdtempSync(join(tmpdir(), 'dais-text-classifier-'));
  let server: RunningServer;
  let client: GrpcClient;
  before(async () => {
    cpSync(DIR, join(work, 'repository', 'text-classifier'), { recursive: true });
    ({ server, client } = await serveWithGrpc<GrpcClient>({ model: join(work, 'repository') }));
  });
  after(async () => {
    client?.close();
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it("the tokenizer library's ids are the ones the network was trained on; bare onnxruntime gives torch's logits", async () => {
    const tok = new Tokenizer(JSON.parse(readFileSync(join(DIR, 'tokenizer.json'), 'utf8')), {});
    const session = await ort.InferenceSession.create(join(DIR, '1', 'model.onnx'));
    try {
      for (const meta of session.inputMetadata) assert.ok(meta.isTensor && typeof meta.shape[0] === 'string' && typeof meta.shape[1] === 'string', `${meta.name}: batch and sequence are dynamic`);
      for (const c of CASES) {
        assert.deepEqual(tok.encode(c.text).ids, c.ids, c.text);
        const ids = new ort.Tensor('int64', BigInt64Array.from(c.ids, BigInt), [1, c.ids.length]);
        const mask = new ort.Tensor('int64', BigInt64Array.from(c.ids, () => 1n), [1, c.ids.length]);
        assertNear((await session.run({ input_ids: ids, attention_mask: mask })).logits.data as Float32Array, c.logits, `logits of '${c.text}'`);
      }
    } finally {
      await session.release();
    }
  });

  it('REST: JSON BYTES texts as one padded batch give torch\'s softmax; classification gives "score:index:label"', async () => {
    const plain = await (await fetch(`${server.url}/v2/models/text-classifier/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: textRequest() })).json();
    assertProbabilities(plain.outputs[0], 'REST');
    const cls = await (await fetch(`${server.url}/v2/models/text-classifier/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: textRequest(2) })).json();
    assert.equal(cls.outputs[0].datatype, 'BYTES');
    assertClassification(cls.outputs[0], 'REST classification');
    // The tensor form (ids and mask of the first text) still answers, through the same softmax.
    const c = CASES[0];
    const tensor = await (
      await fetch(`${server.url}/v2/models/text-classifier/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [1, c.ids.length], data: c.ids }, { name: 'attention_mask', datatype: 'INT64', shape: [1, c.ids.length], data: c.ids.map(() => 1) }] }),
      })
    ).json();
    assertNear(tensor.outputs[0].data, c.probabilities, 'tensor form');
  });

  it('gRPC: the texts as bytes_contents give the same classification strings', async () => {
    const call = (outputs: unknown[]) =>
      new Promise<any>((resolve, reject) => // eslint-disable-line @typescript-eslint/no-explicit-any
        client.ModelInfer({ model_name: 'text-classifier', inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [TEXTS.length], contents: { bytes_contents: TEXTS.map((t) => Buffer.from(t)) } }], outputs }, (e: Error | null, v: unknown) => (e ? reject(e) : resolve(v))),
      );
    const cls = await call([{ name: 'logits', parameters: { classification: { int64_param: 2 } } }]);
    const raw = cls.raw_output_contents[0] as Buffer;
    const strings: string[] = [];
    for (let at = 0; at < raw.length; ) {
      const n = raw.readUInt32LE(at);
      strings.push(raw.subarray(at + 4, at + 4 + n).toString());
      at += 4 + n;
    }
    assertClassification({ shape: cls.outputs[0].shape.map(Number), data: strings }, 'gRPC classification');
    const plain = await call([{ name: 'logits' }]);
    const f = plain.raw_output_contents[0] as Buffer;
    assertProbabilities({ shape: plain.outputs[0].shape.map(Number), data: Array.from(new Float32Array(f.buffer.slice(f.byteOffset, f.byteOffset + f.length))) }, 'gRPC');
  });

  it('the Lambda emulator: the built function answers the same texts', async () => {
    const built = await buildLambda({ model: DIR, out: join(work, 'lambda'), arch: 'x86_64', runtime: 'nodejs22.x', memoryMb: 1024, timeoutS: 30, packageType: 'zip', urlAuth: 'AWS_IAM', initCheck: false });
    const emulator = await LambdaEmulator.start({ taskRoot: built.functionDir, memoryMb: 1024 });
    try {
      for (const classification of [undefined, 2]) {
        const r = await emulator.invoke(httpEvent('function-url', { method: 'POST', path: '/v2/models/text-classifier/infer', body: textRequest(classification) }));
        assert.equal(r.status, 'success', JSON.stringify(r.error));
        const result = r.result as { statusCode: number; body: string };
        assert.equal(result.statusCode, 200, result.body);
        const out = JSON.parse(result.body).outputs[0];
        if (classification) assertClassification(out, 'Lambda classification');
        else assertProbabilities(out, 'Lambda');
      }
    } finally {
      await emulator.close();
    }
  });

  it('Chromium: the browser SDK\'s model.infer(text) gives torch\'s top 2 strings; a v2 request of the texts, its softmax', async (t: TestContext) => {
    if (!requireTool(t, 'chromium', 'chromium')) return;
    const out = join(work, 'browser');
    await buildEdge(DIR, { platform: 'browser', out });
    const site = await serveStatic(out);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      await page.goto(site.url);
      const got = await page.evaluate(async (texts) => {
        const sdk = await import(new URL('./dais.js', document.baseURI).href);
        const model = await sdk.load();
        // A bare text is answered like the server's bare-file form (top 2 strings); a v2 request with the texts as
        // BYTES like the server's infer (the declared softmax).
        const single: { data: string[]; shape: number[] }[] = [];
        for (const text of texts) {
          const r = await model.infer(text);
          single.push({ data: r.outputs[0].data as string[], shape: r.outputs[0].shape as number[] });
        }
        const batch = await model.infer({ inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [texts.length], data: texts }] });
        await model.dispose();
        return { single, batch: { data: batch.outputs[0].data as number[], shape: batch.outputs[0].shape as number[] } };
      }, TEXTS);
      got.single.forEach((r, i) => assertClassification(r, `Chromium, model.infer('${CASES[i].text}')`, [CASES[i]]));
      assertProbabilities(got.batch, 'Chromium, a v2 request');
    } finally {
      await browser.close();
      await site.close();
    }
  });
});
