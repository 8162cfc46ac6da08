// The real-scale examples (examples/image-classifier, text-embedding, text-classifier, silero-vad) ship their
// config, labels and tokenizer but not the network, which a script makes or fetches. A fresh clone must still serve
// examples/ (the four bundled models; each folder without a model skipped with a log line). Where the networks are
// at hand (made by scripts/make-real-models.mjs into $DAIS_REAL_MODELS/repository, default ~/.cache/dais/real-models/repository: <name>/1/model.onnx, references in
// ../reference/<name>/), each example folder with its network dropped in answers real files, and the tensor form
// equals the framework's own saved outputs.
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { serve, type RunningServer } from '../src/serve/index.ts';
import type { Logger } from '../src/node/logger.ts';
import { EXAMPLES_DIR } from './support/env.ts';
import { fixture } from './support/processing.ts';

const REAL = join(process.env.DAIS_REAL_MODELS ?? join(homedir(), '.cache', 'dais', 'real-models'), 'repository');
const REAL_EXAMPLES = ['image-classifier', 'silero-vad', 'text-classifier', 'text-embedding'];

function realModel(t: TestContext, name: string): string | undefined {
  const p = join(REAL, name, '1', 'model.onnx');
  if (existsSync(p)) return p;
  const msg = `${p} is absent (the real-scale networks are made by the project's model script)`;
  console.warn(`SKIP: ${msg}`);
  t.skip(msg);
  return undefined;
}

function reference(name: string, file: string, datatype: 'FP32' | 'INT64'): Float32Array | BigInt64Array {
  const b = readFileSync(join(dirname(REAL), 'reference', name, file));
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return datatype === 'FP32' ? new Float32Array(buf) : new BigInt64Array(buf);
}

describe('real-scale examples', () => {
  const work = mkdtempSync(join(tmpdir(), 'dais-examples-real-'));
  const servers: RunningServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** A repository holding the example folder with the network dropped in as 1/model.onnx. */
  async function serveExample(example: string, model: string): Promise<RunningServer> {
    const root = join(work, example);
    cpSync(join(EXAMPLES_DIR, example), join(root, example), { recursive: true });
    mkdirSync(join(root, example, '1'), { recursive: true });
    copyFileSync(model, join(root, example, '1', 'model.onnx'));
    const s = await serve({ model: root, port: 0 });
    servers.push(s);
    return s;
  }

  it('a fresh clone serves examples/: the bundled models load, folders without a model are skipped with a log line', async () => {
    const lines: string[] = [];
    const log = (_o: unknown, m?: string) => void lines.push(`${JSON.stringify(_o)} ${m ?? ''}`);
    const logger = { info: log, warn: log, error: log, debug: () => {}, child: () => logger } as unknown as Logger;
    const s = await serve({ model: EXAMPLES_DIR, port: 0, logger, modelControl: 'explicit' });
    servers.push(s);
    const index = (await (await fetch(`${s.url}/v2/repository/index`, { method: 'POST' })).json()) as { name: string; state: string }[];
    for (const m of ['digits', 'keyword', 'maintenance', 'mlp']) assert.ok(index.some((e) => e.name === m && e.state === 'READY'), m);
    for (const ex of REAL_EXAMPLES) {
      if (existsSync(join(EXAMPLES_DIR, ex, '1', 'model.onnx'))) continue;
      assert.ok(lines.some((l) => l.includes(join(EXAMPLES_DIR, ex)) && l.includes('skipped')), `a log line for ${ex}`);
    }
  });

  it('image-classifier (MobileNetV2): the tensor form equals torch\'s saved probabilities; a JPEG gives 5 labels of labels.txt', async (t) => {
    const model = realModel(t, 'mobilenetv2');
    if (!model) return;
    const s = await serveExample('image-classifier', model);
    const input = reference('mobilenetv2', 'batch-1.input.bin', 'FP32') as Float32Array;
    const want = reference('mobilenetv2', 'batch-1.out.probabilities.bin', 'FP32') as Float32Array;
    const r = await fetch(`${s.url}/v2/models/image-classifier/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 224, 224], data: Array.from(input) }] }),
    });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body).slice(0, 300));
    const got = body.outputs[0].data as number[];
    assert.equal(got.length, 1000);
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-5 + 1e-4 * Math.abs(want[i]), `[${i}] ${v} vs torch ${want[i]}`));
    const jpg = await (await fetch(`${s.url}/v2/models/image-classifier/infer`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: fixture('photo.jpg') as BodyInit })).json();
    assert.deepEqual(jpg.outputs[0].shape, [1, 5]);
    for (const c of jpg.outputs[0].data as string[]) assert.match(c, /^\d\.\d{6}:\d+:class_\d+$/);
  });

  it('text-embedding (BERT-mini): /v1/embeddings equals mean pooling + L2 of bare onnxruntime on the tokenizer library\'s ids', async (t) => {
    const model = realModel(t, 'bert-mini');
    if (!model) return;
    const s = await serveExample('text-embedding', model);
    const text = 'turn on the kitchen lights please';
    const tok = new Tokenizer(JSON.parse(readFileSync(join(EXAMPLES_DIR, 'text-embedding', 'tokenizer.json'), 'utf8')), {});
    const ids = tok.encode(text).ids;
    assert.equal(ids[0], 101);
    const session = await ort.InferenceSession.create(model);
    let want: Float32Array;
    try {
      const feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]), attention_mask: new ort.Tensor('int64', BigInt64Array.from(ids, () => 1n), [1, ids.length]) };
      const h = (await session.run(feeds)).last_hidden_state.data as Float32Array;
      want = new Float32Array(256);
      for (let i = 0; i < ids.length; i++) for (let d = 0; d < 256; d++) want[d] += h[i * 256 + d] / ids.length;
      const norm = Math.hypot(...want);
      want = want.map((v) => v / norm);
    } finally {
      await session.release();
    }
    const r = await (await fetch(`${s.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'text-embedding', input: text }) })).json();
    const got = r.data[0].embedding as number[];
    assert.equal(got.length, 256);
    got.forEach((v, d) => assert.ok(Math.abs(v - want[d]) < 1e-5, `[${d}] ${v} vs ${want[d]}`));
    assert.equal(r.usage.prompt_tokens, ids.length);
  });
});
