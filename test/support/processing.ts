// A model repository with declared processing, made from test/fixtures/processing (see make_fixtures.py there)
// and the keyword example, for the processing tests on every target.
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES_DIR, REPO_ROOT } from './env.ts';

export const PROCESSING_FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'processing');
export const KEYWORD_WORDS = ['yes', 'no', 'up', 'down', 'left', 'right', 'stop', 'go'];

export interface ProcessingExpected {
  image: Record<string, { tensor: number[]; logits: number[] }>;
  text: { text: string; ids: number[]; mean: number[]; mean_l2: number[]; cls: number[] }[];
}

export const expected = (): ProcessingExpected => JSON.parse(readFileSync(join(PROCESSING_FIXTURES, 'expected.json'), 'utf8'));
export const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(join(PROCESSING_FIXTURES, name)));

export const IMAGE_CONFIG = `preprocess:
  image:
    resize: 36
    crop: 32
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
    max_pixels: 1000000
postprocess:
  top_k: 3
`;

export const KEYWORD_CONFIG = `preprocess:
  audio:
    sample_rate: 16000
    features: {type: log_mel, window: 400, hop: 320, n_fft: 512, n_mels: 40, frames: 50, decimals: 2}
postprocess:
  top_k: 3
`;

export const EMBED_CONFIG = `preprocess:
  text:
    tokenizer: tokenizer.json
    max_length: 12
postprocess:
  pooling: mean
  normalize: true
`;

/** image (CNN + labels), image-fewlabels (5 labels for 10 classes), keyword (WAV → log-mel), embed, embed-trunc and embed-cls (text). */
export function processingRepository() {
  const root = mkdtempSync(join(tmpdir(), 'dais-processing-'));
  const model = (name: string, from: string, config: string, extra: Record<string, string> = {}) => {
    mkdirSync(join(root, name, '1'), { recursive: true });
    copyFileSync(from, join(root, name, '1', 'model.onnx'));
    writeFileSync(join(root, name, 'config.yaml'), config);
    for (const [file, text] of Object.entries(extra)) writeFileSync(join(root, name, file), text);
  };
  const labels = readFileSync(join(PROCESSING_FIXTURES, 'image', 'labels.txt'), 'utf8');
  model('image', join(PROCESSING_FIXTURES, 'image', '1', 'model.onnx'), IMAGE_CONFIG, { 'labels.txt': labels });
  model('image-fewlabels', join(PROCESSING_FIXTURES, 'image', '1', 'model.onnx'), IMAGE_CONFIG, { 'labels.txt': labels.split('\n').slice(0, 5).join('\n') });
  model('keyword', join(EXAMPLES_DIR, 'keyword', '1', 'model.onnx'), KEYWORD_CONFIG, { 'labels.txt': KEYWORD_WORDS.join('\n') });
  const tokenizer = readFileSync(join(PROCESSING_FIXTURES, 'text', 'tokenizer.json'), 'utf8');
  model('embed', join(PROCESSING_FIXTURES, 'text', '1', 'model.onnx'), EMBED_CONFIG, { 'tokenizer.json': tokenizer });
  model('embed-trunc', join(PROCESSING_FIXTURES, 'text', '1', 'model.onnx'), EMBED_CONFIG.replace('max_length: 12', 'max_length: 12\n    truncation: true'), { 'tokenizer.json': tokenizer });
  model('embed-cls', join(PROCESSING_FIXTURES, 'text', '1', 'model.onnx'), EMBED_CONFIG.replace('pooling: mean\n  normalize: true', 'pooling: cls'), { 'tokenizer.json': tokenizer });
  cpSync(join(EXAMPLES_DIR, 'mlp'), join(root, 'mlp'), { recursive: true });
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** A PNG whose header declares width × height pixels (valid CRCs), with a few bytes of image data. */
export function pngDeclaring(width: number, height: number): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Uint8Array) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    dv.setUint32(8 + data.length, crc(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', new Uint8Array([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', new Uint8Array())];
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, (at += p.length) - p.length);
  return all;
}

/** A WAV file of float samples: 16-bit PCM or 32-bit float, `channels` copies of the signal. */
export function wavOf(samples: Float32Array, rate: number, format: 'pcm16' | 'float32', channels = 1): Uint8Array {
  const bytesPer = format === 'pcm16' ? 2 : 4;
  const dataLen = samples.length * bytesPer * channels;
  const out = new Uint8Array(44 + dataLen);
  const dv = new DataView(out.buffer);
  const tag = (at: number, s: string) => out.set(new TextEncoder().encode(s), at);
  tag(0, 'RIFF'); dv.setUint32(4, 36 + dataLen, true); tag(8, 'WAVE'); tag(12, 'fmt ');
  dv.setUint32(16, 16, true); dv.setUint16(20, format === 'pcm16' ? 1 : 3, true); dv.setUint16(22, channels, true);
  dv.setUint32(24, rate, true); dv.setUint32(28, rate * bytesPer * channels, true); dv.setUint16(32, bytesPer * channels, true); dv.setUint16(34, bytesPer * 8, true);
  tag(36, 'data'); dv.setUint32(40, dataLen, true);
  for (let i = 0; i < samples.length; i++) {
    for (let c = 0; c < channels; c++) {
      const at = 44 + (i * channels + c) * bytesPer;
      if (format === 'pcm16') dv.setInt16(at, Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32768))), true);
      else dv.setFloat32(at, samples[i], true);
    }
  }
  return out;
}
