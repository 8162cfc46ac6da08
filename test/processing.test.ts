// Declared pre/post-processing over real ports: images, WAV files and text in (REST binary extension, JSON
// strings, gRPC raw contents, bare-file bodies), labels/scores and embeddings out, compared with torch/torchvision's
// outputs for the same files (test/fixtures/processing/make_fixtures.py) and with the tokenizer library's own ids.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import OpenAI from 'openai';
import sharp from 'sharp';
import { encodeInferRequest } from '../src/core/index.ts';
import { imageToTensor } from '../src/core/processing/image.ts';
import { logMel, parseWav } from '../src/core/processing/audio.ts';
import { tritonScore } from '../src/core/processing/postprocess.ts';
import { validateModelConfig, ConfigError } from '../src/layout/model-config.ts';
import { decodeImageWithSharp } from '../src/runtime/image-decoder-sharp.ts';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { EXAMPLES_DIR } from './support/env.ts';
import { expected, fixture, KEYWORD_WORDS, PROCESSING_FIXTURES, pngDeclaring, processingRepository, wavOf } from './support/processing.ts';
import { call } from './support/serving.ts';

const enc = new TextEncoder();
const MEAN = [0.485, 0.456, 0.406], STD = [0.229, 0.224, 0.225];
/** Largest difference in 0..255 levels between two normalised NCHW tensors. */
function levelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length / 3;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const c = Math.floor(i / n);
    max = Math.max(max, Math.abs(a[i] - b[i]) * STD[c] * 255);
  }
  return max;
}

/** v2 request with one file per element as BYTES, in the binary tensor extension. */
function binaryFileRequest(input: string, files: Uint8Array[], outputs?: { name: string; parameters?: Record<string, number> }[]) {
  const encoded = encodeInferRequest({ inputs: [{ name: input, datatype: 'BYTES', shape: [files.length], data: files }], ...(outputs ? { outputs } : {}) }, () => true);
  return { body: encoded.body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(encoded.headerLength) } };
}

async function post(url: string, path: string, body: Uint8Array | string, headers: Record<string, string>) {
  const res = await fetch(url + path, { method: 'POST', body: body as BodyInit, headers });
  return { status: res.status, json: await res.json() };
}

describe('processing steps (pure)', () => {
  it('images: sharp decode + core resize/crop/normalise match torchvision (PNG ≤ 1 level, JPEG ≤ 3 levels of 255)', async () => {
    const step = { input: 'pixels', resize: 36, crop: [32, 32] as [number, number], scale: 1 / 255, mean: MEAN as [number, number, number], std: STD as [number, number, number], layout: 'NCHW' as const, maxPixels: 1e6 };
    for (const [file, limit] of [['photo.png', 1], ['photo.jpg', 3]] as const) {
      const t = imageToTensor(await decodeImageWithSharp(fixture(file), 1e6), step);
      assert.deepEqual(t.shape, [3, 32, 32]);
      const d = levelDiff(t.data, expected().image[file].tensor);
      assert.ok(d <= limit, `${file}: max difference ${d.toFixed(2)} levels > ${limit}`);
    }
  });

  it('images: EXIF orientation is applied (an orientation-6 JPEG of 80×60 decodes as 60×80)', async () => {
    const rotated = await sharp(fixture('photo.png')).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const img = await decodeImageWithSharp(new Uint8Array(rotated), 1e6);
    assert.deepEqual([img.width, img.height], [60, 80]);
  });

  it('audio: log-mel of the keyword WAVs equals make_model.py\'s features (±0.01, its rounding step)', () => {
    for (const word of ['yes', 'stop']) {
      const wave = parseWav(new Uint8Array(readFileSync(join(EXAMPLES_DIR, 'keyword', 'samples', `${word}.wav`))));
      assert.equal(wave.sampleRate, 16000);
      const ours = logMel(wave.samples, 16000, { type: 'log_mel', window: 400, hop: 320, n_fft: 512, n_mels: 40, frames: 50, decimals: 2 });
      const theirs = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'keyword', 'requests', `${word}.json`), 'utf8')).inputs[0].data as number[];
      assert.equal(ours.length, theirs.length);
      let max = 0;
      for (let i = 0; i < ours.length; i++) max = Math.max(max, Math.abs(ours[i] - theirs[i]));
      assert.ok(max <= 0.0100001, `${word}: max difference ${max}`);
    }
  });

  it('audio: stereo and float32 WAVs give the same features as mono PCM16', () => {
    const wave = parseWav(new Uint8Array(readFileSync(join(EXAMPLES_DIR, 'keyword', 'samples', 'yes.wav'))));
    const f = { type: 'log_mel' as const, window: 400, hop: 320, n_fft: 512, n_mels: 40, frames: 50 };
    const ref = logMel(wave.samples, 16000, f);
    for (const w of [wavOf(wave.samples, 16000, 'float32', 2), wavOf(wave.samples, 16000, 'pcm16', 2)]) {
      const back = parseWav(w);
      const got = logMel(back.samples, back.sampleRate, f);
      let max = 0;
      for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(got[i] - ref[i]));
      assert.ok(max < 1e-3, `max difference ${max}`);
    }
  });

  it('Triton prints scores with std::to_string: six decimals, integers plain', () => {
    assert.equal(tritonScore(0.5, false), '0.500000');
    assert.equal(tritonScore(Math.fround(0.1234567), false), '0.123457');
    assert.equal(tritonScore(-2.25, false), '-2.250000');
    assert.equal(tritonScore(12, true), '12');
  });

  it('config: the new keys are validated, unknown ones refused, every problem named', () => {
    assert.doesNotThrow(() => validateModelConfig({ preprocess: { image: { resize: 256, crop: 224 } }, postprocess: { softmax: true, top_k: 5 } }, 'c.yaml'));
    assert.throws(
      () => validateModelConfig({ preprocess: { image: { resize: 0, colour: 'rgb', layout: 'CHW' } }, postprocess: { pooling: 'max', topk: 3 } }, 'c.yaml'),
      (e: ConfigError) => {
        const text = e.problems.join('\n');
        for (const needle of ["'preprocess.image.resize'", "unknown key 'preprocess.image.colour'", "'preprocess.image.layout'", "'postprocess.pooling'", "unknown key 'postprocess.topk'"]) assert.ok(text.includes(needle), `${needle} in ${text}`);
        return true;
      },
    );
    assert.throws(() => validateModelConfig({ preprocess: { audio: { features: { type: 'log_mel', window: 400, hop: 320, n_fft: 300, n_mels: 40, frames: 50 } } } }, 'c.yaml'), /sample_rate' is required[\s\S]*n_fft/);
    assert.doesNotThrow(() => validateModelConfig({ preprocess: { audio: { sample_rate: 16000, windows: { size: 512, state: 'state', state_output: 'stateN' } } }, postprocess: { speech: { threshold: 0.4 } } }, 'c.yaml'));
    assert.throws(
      () => validateModelConfig({ preprocess: { audio: { sample_rate: 16000, samples: 100, windows: { size: 0, state_out: 'x' } } }, postprocess: { speech: { threshold: 2 } } }, 'c.yaml'),
      (e: ConfigError) => {
        const text = e.problems.join('\n');
        for (const needle of ["unknown key 'preprocess.audio.windows.state_out'", "'preprocess.audio.windows.size'", "'preprocess.audio.windows.state' is required", "'preprocess.audio.windows.state_output' is required", 'without features or samples', "'postprocess.speech.threshold'"]) assert.ok(text.includes(needle), `${needle} in ${text}`);
        return true;
      },
    );
    assert.throws(() => validateModelConfig({ postprocess: { speech: {} } }, 'c.yaml'), /postprocess.speech' reads per-window probabilities/);
  });
});

describe('processing over REST and gRPC', () => {
  const repo = processingRepository();
  let server: RunningServer;
  before(async () => {
    server = await serve({ model: repo.root, port: 0, grpcPort: 0 });
  });
  after(async () => {
    await server?.close();
    repo.remove();
  });

  it('an image as BYTES (binary extension) gives the model\'s logits within the stated tolerance, and the classification strings', async () => {
    for (const file of ['photo.png', 'photo.jpg']) {
      const ref = expected().image[file].logits;
      const r1 = binaryFileRequest('pixels', [fixture(file)]);
      const raw = await post(server.url, '/v2/models/image/infer', r1.body as Uint8Array, r1.headers);
      assert.equal(raw.status, 200, JSON.stringify(raw.json));
      const logits = raw.json.outputs[0].data as number[];
      assert.deepEqual(raw.json.outputs[0].shape, [1, 10]);
      for (let i = 0; i < 10; i++) assert.ok(Math.abs(logits[i] - ref[i]) < 0.02, `${file} logit ${i}: ${logits[i]} vs torch ${ref[i]}`);
      // The classification extension on the same output: Triton's "score:index:label", top k, shape [batch, k].
      const r2 = binaryFileRequest('pixels', [fixture(file), fixture(file)], [{ name: 'logits', parameters: { classification: 3 } }]);
      const cls = await post(server.url, '/v2/models/image/infer', r2.body as Uint8Array, r2.headers);
      assert.equal(cls.status, 200, JSON.stringify(cls.json));
      const out = cls.json.outputs[0];
      assert.equal(out.datatype, 'BYTES');
      assert.deepEqual(out.shape, [2, 3]);
      const labels = readFileSync(join(PROCESSING_FIXTURES, 'image', 'labels.txt'), 'utf8').split('\n');
      const order = logits.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 3);
      assert.deepEqual(out.data.slice(0, 3), order.map(([v, i]) => `${Math.fround(v).toFixed(6)}:${i}:${labels[i]}`));
      assert.deepEqual(out.data.slice(3), out.data.slice(0, 3));
    }
  });

  it('Content-Type image/* with the file as the body answers the declared top-k; the tensor form still works', async () => {
    const r = await post(server.url, '/v2/models/image/infer', fixture('photo.jpg'), { 'content-type': 'image/jpeg' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.outputs[0].datatype, 'BYTES');
    assert.deepEqual(r.json.outputs[0].shape, [1, 3]);
    assert.match(r.json.outputs[0].data[0], /^-?\d+\.\d{6}:\d+:[a-z]+$/);
    const tensor = expected().image['photo.png'].tensor;
    const t = await call(server.url, 'POST', '/v2/models/image/infer', { inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 3, 32, 32], data: tensor }] });
    assert.equal(t.status, 200);
    const ref = expected().image['photo.png'].logits;
    t.json().outputs[0].data.forEach((v: number, i: number) => assert.ok(Math.abs(v - ref[i]) < 1e-3));
  });

  it('the classification extension without a labels file gives "score:index"', async () => {
    const rows = [[5.1, 3.5, 1.4, 0.2]];
    const meta = (await call(server.url, 'GET', '/v2/models/mlp')).json();
    const input = meta.inputs[0];
    const data = Array.from({ length: input.shape.slice(1).reduce((a: number, b: number) => a * b, 1) }, (_, i) => (rows[0][i % 4] ?? 0) / 10);
    const r = await call(server.url, 'POST', '/v2/models/mlp/infer', { inputs: [{ name: input.name, datatype: input.datatype, shape: [1, ...input.shape.slice(1)], data }], outputs: [{ name: meta.outputs[0].name, parameters: { classification: 2 } }] });
    assert.equal(r.status, 200, r.text);
    const plain = await call(server.url, 'POST', '/v2/models/mlp/infer', { inputs: [{ name: input.name, datatype: input.datatype, shape: [1, ...input.shape.slice(1)], data }], outputs: [{ name: meta.outputs[0].name }] });
    const values = plain.json().outputs[0].data as number[];
    const top = values.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 2);
    assert.deepEqual(r.json().outputs[0].data, top.map(([v, i]) => `${v.toFixed(6)}:${i}`));
  });

  it('gRPC raw_input_contents carries the file as BYTES (4-byte length prefix per element)', async () => {
    const grpc = await import('@grpc/grpc-js');
    const { loadInferenceService } = await import('../src/serve/grpc/server.ts');
    const Service = loadInferenceService();
    const client = new Service(`127.0.0.1:${server.grpc!.port}`, grpc.credentials.createInsecure()) as unknown as Record<string, Function> & { close(): void };
    try {
      const file = fixture('photo.png');
      const raw = Buffer.alloc(4 + file.length);
      raw.writeUInt32LE(file.length, 0);
      raw.set(file, 4);
      const r = await new Promise<any>((resolve, reject) => // eslint-disable-line @typescript-eslint/no-explicit-any
        client.ModelInfer({ model_name: 'image', inputs: [{ name: 'pixels', datatype: 'BYTES', shape: [1] }], outputs: [{ name: 'logits', parameters: { classification: { int64_param: 2 } } }], raw_input_contents: [raw] }, (e: Error | null, v: unknown) => (e ? reject(e) : resolve(v))),
      );
      const out = r.raw_output_contents[0] as Buffer;
      const first = out.subarray(4, 4 + out.readUInt32LE(0)).toString();
      const ref = expected().image['photo.png'].logits;
      const best = ref.indexOf(Math.max(...ref));
      assert.match(first, new RegExp(`^-?\\d+\\.\\d{6}:${best}:`));
    } finally {
      client.close();
    }
  });

  it('a WAV file reaches the keyword model: top label as the Python pipeline\'s', async () => {
    for (const word of ['yes', 'stop']) {
      const wav = new Uint8Array(readFileSync(join(EXAMPLES_DIR, 'keyword', 'samples', `${word}.wav`)));
      const r = await post(server.url, '/v2/models/keyword/infer', wav, { 'content-type': 'audio/wav' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.match(r.json.outputs[0].data[0], new RegExp(`^0\\.\\d{6}:${KEYWORD_WORDS.indexOf(word)}:${word}$`));
      // The same WAV resampled from 8 kHz float32 stereo still decodes and runs.
      const wave = parseWav(wav);
      const down = new Float32Array(Math.floor(wave.samples.length / 2)).map((_, i) => wave.samples[2 * i]);
      const r2 = binaryFileRequest('features', [wavOf(down, 8000, 'float32', 2)]);
      const res = await post(server.url, '/v2/models/keyword/infer', r2.body as Uint8Array, r2.headers);
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.deepEqual(res.json.outputs[0].shape, [1, 8]);
    }
  });

  it('text as JSON strings: ids from the tokenizer library, pooled vectors equal torch\'s', async () => {
    const tok = new Tokenizer(JSON.parse(readFileSync(join(PROCESSING_FIXTURES, 'text', 'tokenizer.json'), 'utf8')), {});
    for (const c of expected().text) assert.deepEqual(tok.encode(c.text).ids, c.ids, c.text);
    for (const [model, key] of [['embed', 'mean_l2'], ['embed-cls', 'cls']] as const) {
      const texts = expected().text.map((c) => c.text);
      const r = await call(server.url, 'POST', `/v2/models/${model}/infer`, { inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [texts.length], data: texts }] });
      assert.equal(r.status, 200, r.text);
      const out = r.json().outputs[0];
      assert.deepEqual(out.shape, [3, 16]);
      expected().text.forEach((c, i) => c[key].forEach((v, d) => assert.ok(Math.abs(out.data[i * 16 + d] - v) < 1e-4, `${model} ${c.text}[${d}]`)));
    }
  });

  it('truncation: true cuts an over-long text to max_length, keeping [CLS] and [SEP]; the result is the model on those ids', async () => {
    const text = 'the cat sat on the mat the dog ran fast the cat sat';
    const tok = new Tokenizer(JSON.parse(readFileSync(join(PROCESSING_FIXTURES, 'text', 'tokenizer.json'), 'utf8')), {});
    const full = tok.encode(text).ids;
    assert.equal(full.length, 15);
    const cut = [...full.slice(0, 11), full[full.length - 1]];
    assert.equal(cut.length, 12);
    const r = await call(server.url, 'POST', '/v2/models/embed-trunc/infer', { inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [1], data: [text] }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().parameters.prompt_tokens, 12);
    const ids = { datatype: 'INT64', shape: [1, 12] };
    const byHand = await call(server.url, 'POST', '/v2/models/embed-trunc/infer', {
      inputs: [{ name: 'input_ids', ...ids, data: cut }, { name: 'attention_mask', ...ids, data: cut.map(() => 1) }, { name: 'token_type_ids', ...ids, data: cut.map(() => 0) }],
    });
    assert.equal(byHand.status, 200, byHand.text);
    const a = r.json().outputs[0].data as number[], b = byHand.json().outputs[0].data as number[];
    assert.equal(a.length, 16);
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-6, `[${i}] ${v} vs ${b[i]}`));
    // The same text on the model without truncation is refused, naming the limit (the bad-input test below).
  });

  it('metadata and /config describe what is served: BYTES file inputs, the pooled output shape; responses fit them', async () => {
    const embed = (await call(server.url, 'GET', '/v2/models/embed')).json();
    assert.deepEqual(embed.inputs.map((t: { name: string; datatype: string; shape: number[] }) => [t.name, t.datatype, t.shape]), [['input_ids', 'BYTES', [-1]]]);
    assert.deepEqual([embed.outputs[0].name, embed.outputs[0].datatype, embed.outputs[0].shape], ['last_hidden_state', 'FP32', [-1, 16]]);
    // The tensor form keeps working and is described too.
    assert.deepEqual(embed.parameters.processing.tensor_inputs.map((t: { name: string }) => t.name), ['input_ids', 'attention_mask', 'token_type_ids']);
    const embedConfig = (await call(server.url, 'GET', '/v2/models/embed/config')).json();
    // Triton's dims leave out the batch dimension when the model batches (max_batch_size > 0, the default now).
    const dims = (shape: number[]) => (embedConfig.max_batch_size > 0 ? shape.slice(1) : shape);
    assert.deepEqual(embedConfig.input.map((t: { name: string; data_type: string; dims: number[] }) => [t.name, t.data_type, t.dims]), [['input_ids', 'TYPE_STRING', dims([-1])]]);
    assert.deepEqual(embedConfig.output.map((t: { name: string; data_type: string; dims: number[] }) => [t.name, t.data_type, t.dims]), [['last_hidden_state', 'TYPE_FP32', dims([-1, 16])]]);
    const image = (await call(server.url, 'GET', '/v2/models/image')).json();
    assert.deepEqual([image.inputs[0].name, image.inputs[0].datatype, image.inputs[0].shape], ['pixels', 'BYTES', [-1]]);
    assert.deepEqual(image.outputs[0].shape, [-1, 10]);
    const keyword = (await call(server.url, 'GET', '/v2/models/keyword')).json();
    assert.deepEqual([keyword.inputs[0].datatype, keyword.inputs[0].shape], ['BYTES', [-1]]);
    // A response fits the metadata's shapes.
    const fits = (shape: number[], meta: number[]) => shape.length === meta.length && shape.every((d, i) => meta[i] === -1 || meta[i] === d);
    const r = await call(server.url, 'POST', '/v2/models/embed/infer', { inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [2], data: ['the cat', 'a dog ran'] }] });
    assert.ok(fits(r.json().outputs[0].shape, embed.outputs[0].shape), JSON.stringify(r.json().outputs[0].shape));
  });

  it('/v1/embeddings answers the openai client unchanged', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
    const texts = expected().text.map((c) => c.text);
    const r = await client.embeddings.create({ model: 'embed', input: texts, encoding_format: 'float' });
    assert.equal(r.object, 'list');
    assert.equal(r.model, 'embed');
    assert.equal(r.data.length, 3);
    r.data.forEach((d, i) => {
      assert.equal(d.index, i);
      expected().text[i].mean_l2.forEach((v, k) => assert.ok(Math.abs(d.embedding[k] - v) < 1e-4));
    });
    assert.equal(r.usage.prompt_tokens, expected().text.reduce((n, c) => n + c.ids.length, 0));
    // The client's default asks for base64; the vectors are the same.
    const b = await client.embeddings.create({ model: 'embed', input: texts[0] });
    b.data[0].embedding.forEach((v, k) => assert.ok(Math.abs(v - expected().text[0].mean_l2[k]) < 1e-4));
    await assert.rejects(client.embeddings.create({ model: 'image', input: 'x' }), (e: { status: number }) => e.status === 400);
  });

  it('bad input: 400 naming the input and the cause; the server keeps serving', async () => {
    const jpg = fixture('photo.jpg');
    const cases: [string, Uint8Array | string, Record<string, string>, string, RegExp][] = [
      ['image', jpg.subarray(0, jpg.length / 2), { 'content-type': 'image/jpeg' }, 'UNDECODABLE_INPUT', /input 'pixels'.*cannot be decoded/],
      ['image', enc.encode('GIF89a\x01\x00\x01\x00'), { 'content-type': 'image/gif' }, 'UNSUPPORTED_FILE_FORMAT', /input 'pixels'.*GIF/],
      ['image', enc.encode('hello'), { 'content-type': 'image/png' }, 'UNSUPPORTED_FILE_FORMAT', /input 'pixels'/],
      ['image', pngDeclaring(100_000, 100_000), { 'content-type': 'image/png' }, 'IMAGE_TOO_LARGE', /input 'pixels'.*100000×100000.*max_pixels/],
      ['image-fewlabels', jpg, { 'content-type': 'image/jpeg' }, 'LABELS_MISMATCH', /output 'logits' has 10 classes but the labels file has 5 lines/],
      ['keyword', wavOf(new Float32Array(100), 16000, 'pcm16').subarray(0, 30), { 'content-type': 'audio/wav' }, 'UNDECODABLE_INPUT', /input 'features'.*truncated WAV/],
      ['keyword', enc.encode('ID3\x04\x00\x00\x00\x00\x00\x00mp3'), { 'content-type': 'audio/mpeg' }, 'UNSUPPORTED_FILE_FORMAT', /input 'features'.*not a WAV/],
      ['keyword', jpg, { 'content-type': 'image/jpeg' }, 'UNSUPPORTED_MEDIA_TYPE', /declares no image preprocessing/],
      ['embed', JSON.stringify({ inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [1], data: ['  '] }] }), { 'content-type': 'application/json' }, 'INVALID_TEXT', /input 'input_ids': the text is empty/],
      ['embed', JSON.stringify({ inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [1], data: ['the cat sat on the mat the dog ran fast the cat sat'] }] }), { 'content-type': 'application/json' }, 'INVALID_TEXT', /input 'input_ids'.*15 tokens, over this model's max_length of 12/],
    ];
    for (const [model, body, headers, code, message] of cases) {
      const r = await post(server.url, `/v2/models/${model}/infer`, body, headers);
      assert.equal(r.status, code === 'UNSUPPORTED_MEDIA_TYPE' ? 415 : 400, `${model} ${code}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.code, code);
      assert.match(r.json.error, message);
    }
    const ok = await post(server.url, '/v2/models/image/infer', jpg, { 'content-type': 'image/jpeg' });
    assert.equal(ok.status, 200);
  });

  it('the bomb is refused before decoding even where the header check is skipped (sharp\'s limitInputPixels)', async () => {
    await assert.rejects(decodeImageWithSharp(pngDeclaring(100_000, 100_000), 1e6), /pixel limit|exceeds/i);
  });
});
