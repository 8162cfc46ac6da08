// Silero VAD v5 (the real model, from the npm package @ricky0123/vad-web, fetched with `npm pack`) on a WAV of
// speech: preprocess.audio.windows runs it over 512-sample windows carrying its state inside one request. The
// per-window probabilities equal onnxruntime-node run by hand with the same windows and state (±1e-5), and the
// speech segments cover the spoken part of the file.
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { encodeInferRequest } from '../src/core/index.ts';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { EXAMPLES_DIR } from './support/env.ts';
import { requireNpmPackFile } from './support/npm-pack.ts';
import { fixture } from './support/processing.ts';

const VAD_WEB = '@ricky0123/vad-web@0.0.31';
// The example's own config: the test runs what examples/silero-vad/README.md describes.
const CONFIG = readFileSync(join(EXAMPLES_DIR, 'silero-vad', 'config.yaml'), 'utf8');

/** The fixture's 16-bit samples as floats, read here without dais's WAV parser. */
function samplesOf(wav: Uint8Array): Float32Array {
  const dv = new DataView(wav.buffer, wav.byteOffset, wav.byteLength);
  assert.equal(dv.getUint32(24, true), 16000);
  return Float32Array.from({ length: (wav.length - 44) / 2 }, (_, i) => dv.getInt16(44 + 2 * i, true) / 32768);
}

/** Silero by hand: 512-sample windows (the last padded with zeros), state [2, 1, 128] from zeros, carried. */
async function byHand(modelPath: string, x: Float32Array): Promise<number[]> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    let state: ort.Tensor = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
    const sr = new ort.Tensor('int64', BigInt64Array.of(16000n), []);
    const out: number[] = [];
    for (let at = 0; at < x.length; at += 512) {
      const w = new Float32Array(512);
      w.set(x.subarray(at, at + 512));
      const r = await session.run({ input: new ort.Tensor('float32', w, [1, 512]), state, sr });
      out.push((r.output.data as Float32Array)[0]);
      state = r.stateN as ort.Tensor;
    }
    return out;
  } finally {
    await session.release();
  }
}

describe('Silero VAD on a WAV (preprocess.audio.windows)', () => {
  let server: RunningServer | undefined;
  const root = mkdtempSync(join(tmpdir(), 'dais-vad-'));
  after(async () => {
    await server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('per-window probabilities equal onnxruntime-node by hand; segments cover the speech; metadata shows the WAV input', async (t: TestContext) => {
    const model = requireNpmPackFile(t, VAD_WEB, 'dist/silero_vad_v5.onnx');
    if (!model) return;
    mkdirSync(join(root, 'silero', '1'), { recursive: true });
    copyFileSync(model, join(root, 'silero', '1', 'model.onnx'));
    writeFileSync(join(root, 'silero', 'config.yaml'), CONFIG);
    server = await serve({ model: root, port: 0 });

    const wav = fixture('speech.wav');
    const x = samplesOf(wav);
    const ref = await byHand(model, x);
    const res = await fetch(`${server.url}/v2/models/silero/infer`, { method: 'POST', headers: { 'content-type': 'audio/wav' }, body: wav as BodyInit });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const probs = body.outputs.find((o: { name: string }) => o.name === 'output');
    assert.deepEqual(probs.shape, [1, Math.ceil(x.length / 512)]);
    let max = 0;
    ref.forEach((p, i) => (max = Math.max(max, Math.abs(p - probs.data[i]))));
    t.diagnostic(`${ref.length} windows; max |dais − by hand| = ${max.toExponential(2)}`);
    assert.ok(max <= 1e-5, `max difference ${max}`);
    // The file is 0.5 s of noise, the phrase, 0.5 s of noise: speech must be found inside it and not at the edges.
    assert.ok(Math.max(...ref) > 0.9 && ref[0] < 0.5 && ref[ref.length - 1] < 0.5, `probabilities: ${ref.map((p) => p.toFixed(2)).join(' ')}`);
    const segments = JSON.parse(body.outputs.find((o: { name: string }) => o.name === 'speech_segments').data[0]) as { start: number; end: number }[];
    t.diagnostic(`segments: ${JSON.stringify(segments)}`);
    assert.ok(segments.length >= 1);
    assert.ok(segments[0].start >= 0.3 && segments[0].start <= 0.8, `first segment starts at ${segments[0].start}`);
    assert.ok(segments.at(-1)!.end >= 1.5 && segments.at(-1)!.end <= x.length / 16000 - 0.2, `last segment ends at ${segments.at(-1)!.end}`);

    const meta = await (await fetch(`${server.url}/v2/models/silero`)).json();
    assert.deepEqual(meta.inputs.map((i: { name: string; datatype: string; shape: number[] }) => [i.name, i.datatype, i.shape]), [['input', 'BYTES', [-1]]]);
    assert.deepEqual(meta.outputs.map((o: { name: string; datatype: string; shape: number[] }) => [o.name, o.datatype, o.shape]), [['output', 'FP32', [-1, -1]], ['speech_segments', 'BYTES', [-1]]]);

    // Two files in one request (binary extension, one WAV per element): rows are independent, the shorter padded.
    const half = wav.subarray(0, 44 + 2 * 8000);
    const h = new DataView(half.slice(0, 44).buffer);
    h.setUint32(40, 16000, true);
    h.setUint32(4, 36 + 16000, true);
    const short = new Uint8Array(half);
    short.set(new Uint8Array(h.buffer), 0);
    const enc = encodeInferRequest({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [2], data: [wav, short] }], outputs: [{ name: 'output' }] }, () => true);
    const two = await fetch(`${server.url}/v2/models/silero/infer`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(enc.headerLength) }, body: enc.body as BodyInit });
    const twoBody = await two.json();
    assert.equal(two.status, 200, JSON.stringify(twoBody));
    assert.deepEqual(twoBody.outputs.map((o: { name: string }) => o.name), ['output']);
    assert.deepEqual(twoBody.outputs[0].shape, [2, ref.length]);
    ref.forEach((p, i) => assert.ok(Math.abs(p - twoBody.outputs[0].data[i]) <= 1e-5, `row 0 window ${i}`));
    const refShort = await byHand(model, x.subarray(0, 8000));
    refShort.forEach((p, i) => assert.ok(Math.abs(p - twoBody.outputs[0].data[ref.length + i]) <= 1e-5, `row 1 window ${i}`));

    // A truncated WAV is a 400 naming the input; the server keeps serving.
    const bad = await fetch(`${server.url}/v2/models/silero/infer`, { method: 'POST', headers: { 'content-type': 'audio/wav' }, body: wav.subarray(0, 30) as BodyInit });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /input 'input'/);
  });
});
