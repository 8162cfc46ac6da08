// The servers of goals/processing.goal.ts, each its own process; each prints {"port":N} once listening.
//   dais <repo>           — dais serve on a repository with declared processing.
//   image <model.onnx>    — node:http + sharp + onnxruntime-node by hand: JPEG body → decode (EXIF rotate) → resize
//                           shorter side 36 → center crop 32 → normalise → run → softmax → top-5 "score:index".
//   embed <dir>           — node:http + @huggingface/tokenizers + onnxruntime-node by hand: {input: [...]} →
//                           tokenize → pad → run → mean pooling over the mask → L2 → OpenAI-shaped JSON.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { Tokenizer } from '@huggingface/tokenizers';

const [mode, path] = process.argv.slice(2);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const MEAN = [0.485, 0.456, 0.406], STD = [0.229, 0.224, 0.225];

async function main() {
  if (mode === 'dais') {
    const { serve } = await import('../src/serve/index.ts');
    const s = await serve({ model: path, port: 0 });
    process.stdout.write(`${JSON.stringify({ port: s.port })}\n`);
    return;
  }
  sharp.concurrency(1);
  let handle: (body: Buffer) => Promise<string>;
  if (mode === 'image') {
    const session = await ort.InferenceSession.create(readFileSync(path), { intraOpNumThreads: 1 });
    handle = async (body) => {
      const img = sharp(body, { limitInputPixels: 1e6 }).rotate();
      const meta = await img.metadata();
      const [w, h] = [meta.autoOrient?.width ?? meta.width!, meta.autoOrient?.height ?? meta.height!];
      const scale = 36 / Math.min(w, h);
      const rw = Math.floor(w * scale) || 36, rh = Math.floor(h * scale) || 36;
      const { data } = await img.resize(rw, rh, { kernel: 'linear' }).extract({ left: Math.round((rw - 32) / 2), top: Math.round((rh - 32) / 2), width: 32, height: 32 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const x = new Float32Array(3 * 32 * 32);
      for (let i = 0; i < 32 * 32; i++) for (let c = 0; c < 3; c++) x[c * 1024 + i] = (data[i * 3 + c] / 255 - MEAN[c]) / STD[c];
      const out = (await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, 32, 32]) }))[session.outputNames[0]].data as Float32Array;
      const max = Math.max(...out);
      const e = Array.from(out, (v) => Math.exp(v - max));
      const sum = e.reduce((a, b) => a + b, 0);
      const top = e.map((v, i) => [v / sum, i]).sort((a, b) => b[0] - a[0]).slice(0, 5);
      return JSON.stringify({ outputs: [{ name: session.outputNames[0], datatype: 'BYTES', shape: [1, 5], data: top.map(([p, i]) => `${p.toFixed(6)}:${i}`) }] });
    };
  } else if (mode === 'embed') {
    const session = await ort.InferenceSession.create(readFileSync(join(path, '1', 'model.onnx')), { intraOpNumThreads: 1 });
    const tok = new Tokenizer(JSON.parse(readFileSync(join(path, 'tokenizer.json'), 'utf8')), {});
    handle = async (body) => {
      const req = JSON.parse(body.toString()) as { model: string; input: string | string[] };
      const texts = typeof req.input === 'string' ? [req.input] : req.input;
      const ids = texts.map((t) => tok.encode(t).ids);
      const len = Math.max(...ids.map((x) => x.length));
      const n = texts.length;
      const idT = new BigInt64Array(n * len), mask = new BigInt64Array(n * len);
      ids.forEach((row: number[], i: number) => row.forEach((id: number, j: number) => ((idT[i * len + j] = BigInt(id)), (mask[i * len + j] = 1n))));
      const feeds = { input_ids: new ort.Tensor('int64', idT, [n, len]), attention_mask: new ort.Tensor('int64', mask, [n, len]), token_type_ids: new ort.Tensor('int64', new BigInt64Array(n * len), [n, len]) };
      const out = (await session.run(feeds))[session.outputNames[0]];
      const dim = out.dims[2], h = out.data as Float32Array;
      const data = ids.map((row, i) => {
        const v = new Array(dim).fill(0);
        for (let t = 0; t < row.length; t++) for (let d = 0; d < dim; d++) v[d] += h[(i * len + t) * dim + d] / row.length;
        const norm = Math.sqrt(v.reduce((a, b) => a + b * b, 0)) || 1;
        return { object: 'embedding', index: i, embedding: v.map((x) => x / norm) };
      });
      const tokens = ids.reduce((a, r) => a + r.length, 0);
      return JSON.stringify({ object: 'list', data, model: req.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
    };
  } else throw new Error(`unknown mode ${mode}`);
  const server = createServer(async (req, res) => {
    try {
      const body = await handle(await readBody(req));
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } catch (e) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(e) }));
    }
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
