// The two reference servers of goals/serving.goal.ts, run as their own processes:
//   hello  — node:http answering every request with a fixed body: the ceiling for any Node HTTP server here.
//   ort    — node:http + onnxruntime-node written by hand the obvious way: one request, one session.run, on the
//            main thread. Understands the same JSON and binary request bodies as dais, for any model's inputs.
//            Given a model file it answers /v2/models/<any>/infer with it; given a repository folder
//            (<name>/1/model.onnx) it loads every model, one after another, and answers /v2/models/<name>/infer.
// Flags: --threads N (onnxruntime intra-op threads; default 1, 0 = onnxruntime's own choice), --workers N (N
// processes sharing the port through node:cluster, the way dais --workers N runs).
// Usage: node --import tsx goals/serving-baselines.ts hello|ort [model.onnx|repository] [--threads N] [--workers N];
// prints {"port":N} once listening.
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { threads: { type: 'string' }, workers: { type: 'string' } } });
const [mode, modelPath] = positionals;
const threads = Number(values.threads ?? 1);
const workers = Number(values.workers ?? 1);

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

const TYPES: Record<string, { ort: ort.Tensor.Type; array: { new (b: ArrayBuffer): ArrayLike<unknown>; from(x: ArrayLike<number>): ArrayLike<unknown> } }> = {
  FP32: { ort: 'float32', array: Float32Array },
  FP64: { ort: 'float64', array: Float64Array },
  INT32: { ort: 'int32', array: Int32Array },
  INT64: { ort: 'int64', array: BigInt64Array as never },
  UINT8: { ort: 'uint8', array: Uint8Array },
  BOOL: { ort: 'bool', array: Uint8Array },
};
const DATATYPE: Record<string, string> = { float32: 'FP32', float64: 'FP64', int32: 'INT32', int64: 'INT64', uint8: 'UINT8', bool: 'BOOL' };

interface RequestInput {
  name: string;
  datatype: string;
  shape: number[];
  data?: number[];
  parameters?: { binary_data_size?: number };
}

function tensorOf(input: RequestInput, raw?: Buffer): ort.Tensor {
  const t = TYPES[input.datatype];
  if (raw) return new ort.Tensor(t.ort, new t.array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer) as never, input.shape);
  const flat = (input.data as unknown[]).flat(Infinity) as number[];
  const data = input.datatype === 'INT64' ? BigInt64Array.from(flat.map((x) => BigInt(x))) : t.array.from(flat);
  return new ort.Tensor(t.ort, data as never, input.shape);
}

async function openSession(path: string): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all' };
  if (threads > 0) options.intraOpNumThreads = threads;
  return ort.InferenceSession.create(readFileSync(path), options);
}

async function main() {
  let handle: (body: Buffer, headers: import('node:http').IncomingHttpHeaders, url: string) => Promise<Reply>;
  if (mode === 'hello') {
    const fixed = JSON.stringify({ model_name: 'mlp', model_version: '1', outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 10], data: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1] }] });
    handle = async () => ({ body: fixed, headers: { 'content-type': 'application/json' } });
  } else if (mode === 'ort') {
    const sessions = new Map<string, ort.InferenceSession>();
    if (statSync(modelPath).isDirectory()) {
      for (const name of readdirSync(modelPath).sort()) {
        const file = join(modelPath, name, '1', 'model.onnx');
        if (existsSync(file)) sessions.set(name, await openSession(file));
      }
    } else sessions.set('*', await openSession(modelPath));
    handle = async (body, reqHeaders, url): Promise<Reply> => {
      const name = /^\/v2\/models\/([^/]+)/.exec(url)?.[1] ?? '';
      const session = sessions.get(name) ?? sessions.get('*');
      if (!session) throw new Error(`no model '${name}'`);
      const headerLength = reqHeaders['inference-header-content-length'];
      const feeds: Record<string, ort.Tensor> = {};
      if (headerLength !== undefined) {
        const n = Number(headerLength);
        const head = JSON.parse(body.subarray(0, n).toString()) as { inputs: RequestInput[] };
        let at = n;
        for (const input of head.inputs) {
          const size = input.parameters!.binary_data_size!;
          feeds[input.name] = tensorOf(input, body.subarray(at, at + size));
          at += size;
        }
      } else {
        const req = JSON.parse(body.toString()) as { inputs: RequestInput[] };
        for (const input of req.inputs) feeds[input.name] = tensorOf(input);
      }
      const result = await session.run(feeds);
      const outputs = session.outputNames.map((o) => ({ name: o, tensor: result[o] }));
      if (headerLength !== undefined) {
        const raws = outputs.map((o) => {
          const d = o.tensor.data as Float32Array;
          return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
        });
        const head = Buffer.from(
          JSON.stringify({ model_name: name, outputs: outputs.map((o, i) => ({ name: o.name, datatype: DATATYPE[o.tensor.type], shape: o.tensor.dims, parameters: { binary_data_size: raws[i].length } })) }),
        );
        const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) };
        return { body: Buffer.concat([head, ...raws]), headers };
      }
      const json = outputs.map((o) => ({ name: o.name, datatype: DATATYPE[o.tensor.type], shape: o.tensor.dims, data: Array.from(o.tensor.data as ArrayLike<number | bigint>, Number) }));
      return { body: JSON.stringify({ model_name: name, outputs: json }), headers: { 'content-type': 'application/json' } };
    };
  } else {
    throw new Error(`unknown mode '${mode}': use hello or ort`);
  }
  const server = createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const r = await handle(body, req.headers, req.url ?? '');
      res.writeHead(200, r.headers);
      res.end(r.body);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(e) }));
    }
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    if (cluster.isWorker) process.send!({ port: (server.address() as AddressInfo).port });
    else process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n');
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

if (workers > 1 && cluster.isPrimary) {
  // The primary serves nothing: it starts the workers, which share one port, and says the port once all listen.
  const ports: number[] = [];
  const children = Array.from({ length: workers }, () => cluster.fork());
  for (const w of children) {
    w.on('message', (m: { port: number }) => {
      ports.push(m.port);
      if (ports.length === workers) process.stdout.write(JSON.stringify({ port: ports[0] }) + '\n');
    });
  }
  process.on('SIGTERM', () => {
    for (const w of children) w.process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  await main();
}
