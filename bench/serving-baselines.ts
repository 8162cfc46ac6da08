// The two reference servers of bench/serving.bench.ts, run as their own processes:
//   hello  — node:http answering every request with a fixed body: the ceiling for any Node HTTP server here.
//   ort    — node:http + onnxruntime-node written by hand the obvious way: one request, one session.run, on the
//            main thread. Understands the same JSON and binary request bodies as dais.
// Usage: node --import tsx bench/serving-baselines.ts hello|ort [model.onnx]; prints {"port":N} once listening.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [mode, modelPath] = process.argv.slice(2);

function readBody(req: import('node:http').IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface Reply {
  body: Buffer | string;
  headers: Record<string, string>;
}

async function main() {
  let handle: (body: Buffer, headers: import('node:http').IncomingHttpHeaders) => Promise<Reply>;
  if (mode === 'hello') {
    const fixed = JSON.stringify({ model_name: 'mlp', model_version: '1', outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 10], data: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1] }] });
    handle = async () => ({ body: fixed, headers: { 'content-type': 'application/json' } });
  } else if (mode === 'ort') {
    const session = await ort.InferenceSession.create(readFileSync(modelPath), { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const inputName = session.inputNames[0];
    const outputName = session.outputNames[0];
    handle = async (body, reqHeaders): Promise<Reply> => {
      const headerLength = reqHeaders['inference-header-content-length'];
      let data: Float32Array;
      let shape: number[];
      if (headerLength !== undefined) {
        const n = Number(headerLength);
        const head = JSON.parse(body.subarray(0, n).toString()) as { inputs: { shape: number[] }[] };
        shape = head.inputs[0].shape;
        const raw = body.subarray(n);
        data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      } else {
        const req = JSON.parse(body.toString()) as { inputs: { shape: number[]; data: number[] }[] };
        shape = req.inputs[0].shape;
        data = Float32Array.from(req.inputs[0].data);
      }
      const result = await session.run({ [inputName]: new ort.Tensor('float32', data, shape) });
      const out = result[outputName];
      if (headerLength !== undefined) {
        const raw = Buffer.from((out.data as Float32Array).buffer, (out.data as Float32Array).byteOffset, (out.data as Float32Array).byteLength);
        const head = Buffer.from(JSON.stringify({ model_name: 'mlp', outputs: [{ name: outputName, datatype: 'FP32', shape: out.dims, parameters: { binary_data_size: raw.length } }] }));
        const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) };
        return { body: Buffer.concat([head, raw]), headers };
      }
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      return { body: JSON.stringify({ model_name: 'mlp', outputs: [{ name: outputName, datatype: 'FP32', shape: out.dims, data: Array.from(out.data as Float32Array) }] }), headers };
    };
  } else {
    throw new Error(`unknown mode '${mode}': use hello or ort`);
  }
  const server = createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const r = await handle(body, req.headers);
      res.writeHead(200, r.headers);
      res.end(r.body);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(e) }));
    }
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n'));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

await main();
