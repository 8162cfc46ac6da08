// The peer: what a team writes today without an inference server, run as its own process. `dais bench` measures
// dais against it (mode ort, --threads 0), and so do the goal checks (goals/), in the same run. Modes:
//   hello  — node:http answering every request with a fixed body: the ceiling for any Node HTTP server here.
//   ort    — node:http + onnxruntime-node written by hand the obvious way: one request, one session.run, on the
//            main thread, no batching, no validation beyond onnxruntime's. Understands the same JSON and binary
//            request bodies as dais, for any model's inputs. Given a model file it answers /v2/models/<any>/infer
//            with it; given a repository folder (<name>/1/model.onnx) it loads every model, one after another, and
//            answers /v2/models/<name>/infer.
//   batch  — mode ort with the least batching a hand-written server does (batchingHandler): requests read in one turn of
//            the event loop run as one batch. The goal checks measure it beside hello-world: the ceiling a server that
//            batches reaches on node:http, against which the hello-world goal reads.
//   image  — node:http + sharp + onnxruntime-node by hand: JPEG body → decode (EXIF rotate) → resize shorter side 36
//            → center crop 32 → normalise → run → softmax → top-5 "score:index" (goals/processing.goal.ts).
//   embed  — node:http + @huggingface/tokenizers + onnxruntime-node by hand, for a folder with 1/model.onnx and
//            tokenizer.json: {input: [...]} → tokenize → pad → run → mean pooling over the mask → L2 → OpenAI-shaped
//            JSON (goals/processing.goal.ts).
// Flags: --threads N (onnxruntime intra-op threads; default 1, 0 = onnxruntime's own choice), --workers N (N
// processes sharing the port through node:cluster, the way dais --workers N runs), --warmup (each model run twice
// with zeros at batch 1 after it loads, as dais does by default).
// Usage: node --import ./bin/typescript.mjs src/bench/peer-server.ts hello|ort|batch|image|embed [model.onnx|folder] [--threads N] [--workers N];
// prints {"url":…,"port":N,"model":…} once listening.
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { threads: { type: 'string' }, workers: { type: 'string' }, warmup: { type: 'boolean' } } });
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
  const session = await ort.InferenceSession.create(readFileSync(path), options);
  if (values.warmup) await warmUp(session);
  return session;
}

const ZEROS: Record<string, (n: number) => ort.Tensor['data']> = {
  float32: (n) => new Float32Array(n),
  float64: (n) => new Float64Array(n),
  int32: (n) => new Int32Array(n),
  int64: (n) => new BigInt64Array(n),
  uint8: (n) => new Uint8Array(n),
  bool: (n) => new Uint8Array(n),
};

/**
 * --warmup: two runs of zeros at batch 1, what `dais serve` does by default before it reports ready (and only where
 * dais does it: every dimension but the first fixed), so that memory is compared with both servers having run.
 */
async function warmUp(session: ort.InferenceSession): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const m of session.inputMetadata) {
    if (!m.isTensor || m.shape.length === 0 || m.shape.slice(1).some((d) => typeof d !== 'number' || d < 0)) return;
    const shape = m.shape.map((d, i) => (i === 0 && (typeof d !== 'number' || d < 0) ? 1 : (d as number)));
    const zeros = ZEROS[m.type];
    if (!zeros) return;
    feeds[m.name] = new ort.Tensor(m.type as 'float32', zeros(shape.reduce((a, b) => a * b, 1)) as Float32Array, shape);
  }
  for (let i = 0; i < 2; i++) await session.run(feeds);
}

/** The ready line: where it listens, and the model name a client puts in /v2/models/<name>/infer. */
function ready(port: number): void {
  const model = !modelPath ? 'model' : basename(modelPath).replace(/\.onnx$/, '');
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, port, model })}\n`);
}

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** JPEG → top-5, each step by hand with sharp and onnxruntime-node. */
async function imagePipeline(model: string): Promise<(body: Buffer) => Promise<string>> {
  const { default: sharp } = await import('sharp');
  sharp.concurrency(1);
  const session = await openSession(model);
  return async (body) => {
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
}

/** {input: [...]} → OpenAI-shaped embeddings, each step by hand with the tokenizer and onnxruntime-node. */
async function embedPipeline(dir: string): Promise<(body: Buffer) => Promise<string>> {
  const { Tokenizer } = await import('@huggingface/tokenizers');
  const session = await openSession(join(dir, '1', 'model.onnx'));
  const tok = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), {});
  return async (body) => {
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
}

/** A request body's inputs (binary when the Inference-Header-Content-Length header is there, else JSON) as tensors. */
function feedsOf(body: Buffer, headerLength: string | string[] | undefined): Record<string, ort.Tensor> {
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
  return feeds;
}

interface Output {
  name: string;
  tensor: { type: string; dims: readonly number[]; data: ort.Tensor['data'] };
}

/** The answer to a request: binary outputs after a JSON header when it came binary, else JSON. */
function replyOf(name: string, outputs: Output[], binary: boolean): Reply {
  if (binary) {
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
}

/** A typed array of any element type, as far as joining rows needs. */
type Joinable = ArrayLike<unknown> & { set(rows: ArrayLike<unknown>, at: number): void };

type Handler = (body: Buffer, headers: import('node:http').IncomingHttpHeaders, url: string) => Promise<Reply>;

interface Waiting {
  feeds: Record<string, ort.Tensor>;
  name: string;
  binary: boolean;
  resolve(r: Reply): void;
  reject(e: unknown): void;
}

/**
 * Mode batch: the least a hand-written server does to batch. Requests read in one turn of the event loop wait for
 * its end (setImmediate); those whose inputs agree beyond dimension 0 are joined along it into one run, and each gets
 * its rows of every output back. No size cap, no delay, no validation. GET /stats says {runs, requests}.
 */
async function batchingHandler(path: string): Promise<Handler> {
  const session = await openSession(path);
  let queue: Waiting[] = [];
  const stats = { runs: 0, requests: 0 };
  const run = async (group: Waiting[]): Promise<void> => {
    stats.runs++;
    stats.requests += group.length;
    const rows = group.map((w) => Object.values(w.feeds)[0].dims[0]);
    const total = rows.reduce((a, b) => a + b, 0);
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of Object.keys(group[0].feeds)) {
      const first = group[0].feeds[input];
      let joined = first.data as Joinable;
      if (group.length > 1) {
        joined = new (joined.constructor as new (n: number) => Joinable)((joined.length / first.dims[0]) * total);
        let at = 0;
        for (const w of group) {
          const d = w.feeds[input].data as Joinable;
          joined.set(d, at);
          at += d.length;
        }
      }
      feeds[input] = new ort.Tensor(first.type, joined as Float32Array, [total, ...first.dims.slice(1)]);
    }
    const result = await session.run(feeds);
    let row = 0;
    group.forEach((w, i) => {
      const outputs = session.outputNames.map((o) => {
        const t = result[o];
        const per = t.data.length / total;
        const data = (t.data as Float32Array).subarray(row * per, (row + rows[i]) * per);
        return { name: o, tensor: { type: t.type, dims: [rows[i], ...t.dims.slice(1)], data } };
      });
      row += rows[i];
      w.resolve(replyOf(w.name, outputs, w.binary));
    });
  };
  const flush = () => {
    const waiting = queue;
    queue = [];
    const groups = new Map<string, Waiting[]>();
    for (const w of waiting) {
      const key = Object.entries(w.feeds).map(([n, t]) => `${n}:${t.type}:${t.dims.slice(1).join('x')}`).join('|');
      const g = groups.get(key);
      if (g) g.push(w);
      else groups.set(key, [w]);
    }
    for (const g of groups.values()) run(g).catch((e) => g.forEach((w) => w.reject(e)));
  };
  return (body, reqHeaders, url) => {
    if (url === '/stats') return Promise.resolve({ body: JSON.stringify(stats), headers: { 'content-type': 'application/json' } });
    const name = /^\/v2\/models\/([^/]+)/.exec(url)?.[1] ?? '';
    const binary = reqHeaders['inference-header-content-length'];
    return new Promise<Reply>((resolve, reject) => {
      queue.push({ feeds: feedsOf(body, binary), name, binary: binary !== undefined, resolve, reject });
      if (queue.length === 1) setImmediate(flush);
    });
  };
}

async function main() {
  let handle: Handler;
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
      const binary = reqHeaders['inference-header-content-length'];
      const result = await session.run(feedsOf(body, binary));
      return replyOf(name, session.outputNames.map((o) => ({ name: o, tensor: result[o] })), binary !== undefined);
    };
  } else if (mode === 'batch') {
    handle = await batchingHandler(modelPath);
  } else if (mode === 'image' || mode === 'embed') {
    const pipeline = mode === 'image' ? await imagePipeline(modelPath) : await embedPipeline(modelPath);
    handle = async (body) => ({ body: await pipeline(body), headers: { 'content-type': 'application/json' } });
  } else {
    throw new Error(`unknown mode '${mode}': use hello, ort, batch, image or embed`);
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
    else ready((server.address() as AddressInfo).port);
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
      if (ports.length === workers) ready(ports[0]);
    });
  }
  process.on('SIGTERM', () => {
    for (const w of children) w.process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  await main();
}
