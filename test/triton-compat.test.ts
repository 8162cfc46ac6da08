// What a Triton or KServe client would notice, over real HTTP and gRPC ports: 64-bit integers beyond 2^53 and
// NaN/Infinity in JSON both ways, BYTES that are not UTF-8 passed through unchanged, ModelStreamInfer answered in
// order with triton_final_response, grpc.health.v1 on the inference port, compressed request bodies, Triton's load
// API with a config override, KServe's field numbering of the repository messages, and an answered 413 for a body
// sent whole without Expect: 100-continue.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as codec from '../src/core/index.ts';
import { decodeInferResponse, encodeInferRequest } from '../src/core/index.ts';
import type { Backend, Session } from '../src/runtime/backend.ts';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { loadHealthService, INFERENCE_SERVICE_NAME } from '../src/serve/grpc/health.ts';
import { REPO_ROOT } from './support/env.ts';
import { call, exampleModel, exampleRequest, serveWithGrpc, tempRepository } from './support/serving.ts';

type Client = grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: any) => void) => void>; // eslint-disable-line @typescript-eslint/no-explicit-any

function rpc(client: Client, method: string, req: unknown): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => client[method](req, new grpc.Metadata(), (e, r) => (e ? reject(e) : resolve(r))));
}

const ALL_TYPES = join(REPO_ROOT, 'test', 'fixtures', 'all-types.onnx');
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const NOT_UTF8 = [Uint8Array.of(0xff, 0xfe), Uint8Array.of(0x61, 0x80, 0x00, 0x62), Uint8Array.of()];

/** all-types.onnx needs every input in each request: these, each [1, 2], with `over` replacing some (raw JSON text). */
function allTypesBody(over: Record<string, string> = {}): string {
  const data: Record<string, string> = {
    bool: '[true,false]',
    uint8: '[0,1]',
    uint16: '[0,1]',
    uint32: '[0,1]',
    uint64: '[0,1]',
    int8: '[0,1]',
    int16: '[0,1]',
    int32: '[0,1]',
    int64: '[0,1]',
    fp16: '[0,1]',
    fp32: '[0,1]',
    fp64: '[0,1]',
    bytes: '["a","b"]',
    ...over,
  };
  const inputs = Object.entries(data).map(([k, d]) => `{"name":"${k}_in","shape":[1,2],"datatype":"${k.toUpperCase()}","data":${d}}`);
  return `{"inputs":[${inputs.join(',')}]}`;
}

/** The raw JSON text of output `name`'s "data" array in a response body (the numbers as written, unparsed). */
function rawData(text: string, name: string): string {
  const at = text.indexOf(`"name":"${name}"`);
  assert.ok(at >= 0, `${name} in ${text}`);
  const m = /"data":(\[[^\]]*\])/.exec(text.slice(at));
  assert.ok(m, `${name} has data`);
  return m[1];
}

/** `expression` of the body `d` as Python's json reads it (printed with repr), where Debian's python3 is. */
function pythonJson(text: string, expression: string): string {
  if (!existsSync(PYTHON)) return '(no python)';
  return execFileSync(PYTHON, ['-c', `import json,sys\nd=json.load(sys.stdin)\nprint(${expression})`], { input: text, encoding: 'utf8' }).trim();
}
const PYTHON = '/usr/bin/python3';

const int64Le = (b: Uint8Array) => Array.from(new BigInt64Array(new Uint8Array(b).buffer));
const uint64Le = (b: Uint8Array) => Array.from(new BigUint64Array(new Uint8Array(b).buffer));

describe('INT64/UINT64 beyond 2^53 and NaN/Infinity (all-types identity model)', () => {
  let server: RunningServer;
  let client: Client;
  before(async () => {
    ({ server, client } = await serveWithGrpc<Client>({ model: ALL_TYPES }));
  });
  after(async () => {
    client?.close();
    await server?.close();
  });

  it('JSON: bare integers up to 2^63-1, down to -2^63 and up to 2^64-1 come back as the same bare integers', async () => {
    const body = allTypesBody({
      int64: `[${INT64_MAX},${INT64_MIN}]`,
      uint64: `[${UINT64_MAX},9007199254740993]`,
    });
    const r = await call(server.url, 'POST', '/v2/models/all-types/infer', body);
    assert.equal(r.status, 200, r.text);
    assert.equal(rawData(r.text, 'int64_out'), `[${INT64_MAX},${INT64_MIN}]`);
    assert.equal(rawData(r.text, 'uint64_out'), `[${UINT64_MAX},9007199254740993]`);
    // Out of range is still refused, naming the value as sent.
    const bad = await call(server.url, 'POST', '/v2/models/all-types/infer', allTypesBody({ int64: `[0,${INT64_MAX + 1n}]` }));
    assert.equal(bad.status, 400);
    assert.equal(bad.json().code, 'INVALID_DATA');
    assert.match(bad.json().error, /data\[1\] = 9223372036854775808 is not an integer in the INT64 range/);
    // Python's json (what tritonclient parses with) reads the same integers.
    assert.equal(pythonJson(r.text, "[o['data'] for o in d['outputs'] if o['name'] in ('int64_out', 'uint64_out')]" /* in the model's output order */), `[[${UINT64_MAX}, 9007199254740993], [${INT64_MAX}, ${INT64_MIN}]]`);
    // The client-side decoder reads them exactly as well.
    const dec = decodeInferResponse(r.bytes);
    assert.deepEqual(Array.from(dec.outputs.find((o) => o.name === 'int64_out')!.data as BigInt64Array), [INT64_MAX, INT64_MIN]);
  });

  it('binary REST: exact both ways, also with JSON output of binary input', async () => {
    // Built by the codec so every datatype has its storage; the 64-bit ones set to the extremes.
    const decoded = codec.requestFromJson(JSON.parse(allTypesBody()));
    decoded.inputs.find((t) => t.name === 'int64_in')!.data = BigInt64Array.of(INT64_MAX, INT64_MIN);
    decoded.inputs.find((t) => t.name === 'uint64_in')!.data = BigUint64Array.of(UINT64_MAX, 2n ** 53n + 1n);
    for (const binaryOut of [true, false]) {
      const enc = encodeInferRequest({ ...decoded, parameters: { binary_data_output: binaryOut } }, (n) => n.includes('64'));
      const r = await call(server.url, 'POST', '/v2/models/all-types/infer', enc.body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(enc.headerLength) });
      assert.equal(r.status, 200, r.text);
      const hl = r.headers.get('inference-header-content-length');
      if (!binaryOut) {
        assert.equal(hl, null);
        assert.equal(rawData(r.text, 'int64_out'), `[${INT64_MAX},${INT64_MIN}]`);
      }
      const out = decodeInferResponse(r.bytes, hl === null ? undefined : Number(hl)).outputs;
      assert.deepEqual(Array.from(out.find((o) => o.name === 'int64_out')!.data as BigInt64Array), [INT64_MAX, INT64_MIN]);
      assert.deepEqual(Array.from(out.find((o) => o.name === 'uint64_out')!.data as BigUint64Array), [UINT64_MAX, 2n ** 53n + 1n]);
    }
  });

  it('gRPC raw contents stay exact both ways', async () => {
    const inputs = codec.requestFromJson(JSON.parse(allTypesBody())).inputs;
    inputs.find((t) => t.name === 'int64_in')!.data = BigInt64Array.of(INT64_MAX, INT64_MIN);
    inputs.find((t) => t.name === 'uint64_in')!.data = BigUint64Array.of(UINT64_MAX, 9007199254740993n);
    const r = await rpc(client, 'ModelInfer', {
      model_name: 'all-types',
      inputs: inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
      raw_input_contents: inputs.map((t) => Buffer.from(codec.toBinary(t))),
    });
    const at = (name: string) => r.raw_output_contents[r.outputs.findIndex((o: { name: string }) => o.name === name)];
    assert.deepEqual(int64Le(at('int64_out')), [INT64_MAX, INT64_MIN]);
    assert.deepEqual(uint64Le(at('uint64_out')), [UINT64_MAX, 9007199254740993n]);
  });

  it('NaN, Infinity and -Infinity literals are read for FP16/FP32/FP64 and written back as literals', async () => {
    const body = allTypesBody({ fp32: '[NaN,Infinity]', fp64: '[-Infinity,1.5]', fp16: '[NaN,-Infinity]' });
    const r = await call(server.url, 'POST', '/v2/models/all-types/infer', body);
    assert.equal(r.status, 200, r.text);
    assert.equal(rawData(r.text, 'fp32_out'), '[NaN,Infinity]');
    assert.equal(rawData(r.text, 'fp64_out'), '[-Infinity,1.5]');
    assert.equal(rawData(r.text, 'fp16_out'), '[NaN,-Infinity]');
    // Python's json (tritonclient's parser) reads what was written.
    assert.equal(pythonJson(r.text, "[o['data'] for o in d['outputs'] if o['name'] == 'fp32_out']"), '[[nan, inf]]');
    const py = decodeInferResponse(r.bytes).outputs.find((o) => o.name === 'fp32_out')!.data as Float32Array;
    assert.ok(Number.isNaN(py[0]) && py[1] === Infinity);
    // Not a float datatype: refused with the value named.
    const bad = await call(server.url, 'POST', '/v2/models/all-types/infer', allTypesBody({ int32: '[NaN,1]' }));
    assert.equal(bad.status, 400);
    assert.match(bad.json().error, /int32_in'?: data\[0\] = NaN is not an integer/);
    // Still no other extension to JSON: a bare word is invalid JSON.
    const word = await call(server.url, 'POST', '/v2/models/all-types/infer', allTypesBody({ fp32: '[nan,1]' }));
    assert.equal(word.json().code, 'INVALID_JSON');
  });

  it('BYTES that are not UTF-8 are refused by name for an onnxruntime model (it takes strings), not altered', async () => {
    const decoded = codec.requestFromJson(JSON.parse(allTypesBody()));
    decoded.inputs.find((t) => t.name === 'bytes_in')!.data = [NOT_UTF8[0], NOT_UTF8[1]];
    const bad = encodeInferRequest(decoded, (n) => n === 'bytes_in');
    const r = await call(server.url, 'POST', '/v2/models/all-types/infer', bad.body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(bad.headerLength) });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json().code, 'INVALID_DATA');
    assert.match(r.json().error, /input 'bytes_in': BYTES element 0 is not valid UTF-8/);
  });
});

/**
 * A backend whose every model echoes input `x` as output `y` (of `datatype`), so the transport can be checked with
 * bytes onnxruntime's JS API cannot carry and with typed gRPC contents (all-types needs FP16, which has no typed
 * field). A BYTES first element "sleep:<ms>" makes that run take so long.
 */
const echoBackend = (datatype: codec.Datatype): Backend => ({
  name: 'echo',
  async createSession(): Promise<Session> {
    return {
      inputs: [{ name: 'x', datatype, shape: [-1] }],
      outputs: [{ name: 'y', datatype, shape: [-1] }],
      async run(feeds, outputNames) {
        const x = feeds[0];
        if (datatype === 'BYTES') {
          const first = new TextDecoder().decode((x.data as Uint8Array[])[0] ?? new Uint8Array());
          if (first.startsWith('sleep:')) await new Promise((r) => setTimeout(r, Number(first.slice(6))));
        }
        return outputNames.map((name) => ({ name, datatype, shape: x.shape, data: x.data }));
      },
      async dispose() {},
    };
  },
});

describe('gRPC typed int64_contents/uint64_contents stay exact (echo backend)', () => {
  for (const [datatype, field, values] of [
    ['INT64', 'int64_contents', [INT64_MAX, INT64_MIN, 9007199254740993n]],
    ['UINT64', 'uint64_contents', [UINT64_MAX, 0n, 9007199254740993n]],
  ] as const) {
    it(datatype, async () => {
      const { server, client } = await serveWithGrpc<Client>({ model: ALL_TYPES, backend: echoBackend(datatype), warmUp: false });
      try {
        // This client (proto-loader, longs as strings) writes the varints from decimal strings, exactly.
        const r = await rpc(client, 'ModelInfer', { model_name: 'all-types', inputs: [{ name: 'x', datatype, shape: [3], contents: { [field]: values.map(String) } }] });
        assert.deepEqual((datatype === 'INT64' ? int64Le : uint64Le)(r.raw_output_contents[0]), [...values]);
        // And the same numbers through REST JSON, as bare integers.
        const rest = await call(server.url, 'POST', '/v2/models/all-types/infer', `{"inputs":[{"name":"x","shape":[3],"datatype":"${datatype}","data":[${values.join(',')}]}]}`);
        assert.equal(rawData(rest.text, 'y'), `[${values.join(',')}]`);
      } finally {
        client.close();
        await server.close();
      }
    });
  }
});

describe('BYTES that are not UTF-8 pass through unchanged (echo backend)', () => {
  let server: RunningServer;
  let client: Client;
  before(async () => {
    ({ server, client } = await serveWithGrpc<Client>({ model: ALL_TYPES, backend: echoBackend('BYTES'), warmUp: false }));
  });
  after(async () => {
    client?.close();
    await server?.close();
  });
  const request = (): codec.InferenceRequest => ({ inputs: [{ name: 'x', datatype: 'BYTES', shape: [NOT_UTF8.length], data: NOT_UTF8 }] });

  it('binary REST, both directions', async () => {
    const enc = encodeInferRequest({ ...request(), parameters: { binary_data_output: true } }, () => true);
    const r = await call(server.url, 'POST', '/v2/models/all-types/infer', enc.body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(enc.headerLength) });
    assert.equal(r.status, 200, r.text);
    const out = decodeInferResponse(r.bytes, Number(r.headers.get('inference-header-content-length'))).outputs[0];
    assert.deepEqual((out.data as Uint8Array[]).map((b) => Array.from(b)), NOT_UTF8.map((b) => Array.from(b)));
  });

  it('gRPC raw contents and bytes_contents, both directions', async () => {
    const raw = Buffer.from(codec.toBinary(request().inputs[0]));
    for (const req of [
      { model_name: 'all-types', inputs: [{ name: 'x', datatype: 'BYTES', shape: [NOT_UTF8.length] }], raw_input_contents: [raw] },
      { model_name: 'all-types', inputs: [{ name: 'x', datatype: 'BYTES', shape: [NOT_UTF8.length], contents: { bytes_contents: NOT_UTF8.map((b) => Buffer.from(b)) } }] },
    ]) {
      const r = await rpc(client, 'ModelInfer', req);
      assert.deepEqual(Array.from(r.raw_output_contents[0] as Buffer), Array.from(raw));
    }
  });

  it('ModelStreamInfer: answers in request order, each with triton_final_response, errors with their id', async () => {
    const stream: grpc.ClientDuplexStream<unknown, any> = (client as any).ModelStreamInfer(new grpc.Metadata()); // eslint-disable-line @typescript-eslint/no-explicit-any
    const responses: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    stream.on('data', (r) => responses.push(r));
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const bytes = (s: string) => ({ bytes_contents: [Buffer.from(s)] });
    // Even messages are slow (each sleeps less than the one before), odd ones fail at once: answered in the order
    // they complete, they would come back reversed and interleaved.
    for (let i = 0; i < 10; i++) {
      stream.write(
        i % 2 === 0
          ? { model_name: 'all-types', id: `m${i}`, inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], contents: bytes(`sleep:${100 - i * 10}`) }] }
          : { model_name: 'all-types', id: `m${i}`, inputs: [{ name: 'nope', datatype: 'BYTES', shape: [1], contents: bytes('x') }] },
      );
    }
    stream.end();
    await ended;
    assert.deepEqual(responses.map((r) => r.infer_response?.id), Array.from({ length: 10 }, (_, i) => `m${i}`));
    for (const [i, r] of responses.entries()) {
      assert.deepEqual(r.infer_response.parameters.triton_final_response, { parameter_choice: 'bool_param', bool_param: true });
      if (i % 2 === 1) assert.match(r.error_message, /nope/);
      else assert.equal(r.error_message, '');
    }
  });
});

describe('grpc.health.v1.Health on the inference port', () => {
  const repo = tempRepository();
  let server: RunningServer;
  let health: grpc.Client & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  before(async () => {
    repo.add('mlp', '1');
    ({ server } = await serveWithGrpc<Client>({ model: repo.root, warmUp: false, modelControl: 'explicit' }));
    const Health = loadHealthService();
    health = new Health(`127.0.0.1:${server.grpc!.port}`, grpc.credentials.createInsecure()) as typeof health;
  });
  after(async () => {
    health?.close();
    await server?.close();
    repo.remove();
  });
  const check = (service: string) =>
    new Promise<{ status: string }>((resolve, reject) => health.Check({ service }, (e: grpc.ServiceError | null, r: { status: string }) => (e ? reject(e) : resolve(r))));

  it('Check: SERVING when ready, NOT_SERVING when no model serves, NOT_FOUND for another service', async () => {
    assert.deepEqual(await check(''), { status: 'SERVING' });
    assert.deepEqual(await check(INFERENCE_SERVICE_NAME), { status: 'SERVING' });
    await assert.rejects(check('some.Other'), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    const watch = health.Watch({ service: '' });
    const seen: string[] = [];
    watch.on('data', (r: { status: string }) => seen.push(r.status));
    watch.on('error', () => {});
    assert.equal((await call(server.url, 'POST', '/v2/repository/models/mlp/unload', {})).status, 200);
    assert.deepEqual(await check(''), { status: 'NOT_SERVING' });
    assert.equal((await call(server.url, 'POST', '/v2/repository/models/mlp/load', {})).status, 200);
    assert.deepEqual(await check(INFERENCE_SERVICE_NAME), { status: 'SERVING' });
    await new Promise((r) => setTimeout(r, 1500));
    watch.cancel();
    assert.equal(seen[0], 'SERVING');
  });
});

describe('request bodies: Content-Encoding and the 413 a Python client can read', () => {
  const LIMIT = 256 * 1024;
  let server: RunningServer;
  const mlp = () => JSON.stringify(exampleRequest('mlp'));
  before(async () => {
    server = await serve({ model: exampleModel('mlp'), port: 0, maxBodyBytes: LIMIT, warmUp: false });
  });
  after(async () => server?.close());
  const infer = (body: Uint8Array | string, headers: Record<string, string>) => call(server.url, 'POST', '/v2/models/model/infer', body, { 'content-type': 'application/json', ...headers });

  it('gzip and deflate (zlib or raw) bodies are decompressed; the answer is the uncompressed one', async () => {
    const plain = await infer(mlp(), {});
    assert.equal(plain.status, 200, plain.text);
    for (const [encoding, body] of [
      ['gzip', gzipSync(mlp())],
      ['deflate', deflateSync(mlp())],
      ['deflate', deflateRawSync(mlp())],
      ['identity', Buffer.from(mlp())],
    ] as const) {
      const r = await infer(new Uint8Array(body), { 'content-encoding': encoding });
      assert.equal(r.status, 200, `${encoding}: ${r.text}`);
      assert.deepEqual(r.json().outputs, plain.json().outputs);
    }
  });

  it('an unknown encoding gets 415 UNSUPPORTED_CONTENT_ENCODING; corrupt data 400; a zip bomb 413 on its decompressed size', async () => {
    const br = await infer(mlp(), { 'content-encoding': 'br' });
    assert.equal(br.status, 415);
    assert.equal(br.json().code, 'UNSUPPORTED_CONTENT_ENCODING');
    const corrupt = await infer(Uint8Array.of(0x1f, 0x8b, 1, 2, 3, 4, 5), { 'content-encoding': 'gzip' });
    assert.equal(corrupt.status, 400);
    assert.equal(corrupt.json().code, 'INVALID_REQUEST');
    // 1 GiB of zeros compresses to about 1 MiB; level 9 of 64 MiB is ~64 KiB, under the limit compressed.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
    assert.ok(bomb.length < LIMIT);
    const r = await infer(new Uint8Array(bomb), { 'content-encoding': 'gzip' });
    assert.equal(r.status, 413);
    assert.equal(r.json().code, 'PAYLOAD_TOO_LARGE');
    assert.match(r.json().error, /decompressed/);
    // The server still serves.
    assert.equal((await infer(mlp(), {})).status, 200);
  });

  it('a body over the limit written whole without Expect: 100-continue gets a readable 413', async () => {
    const url = new URL(server.url);
    const body = Buffer.alloc(32 * 1024 * 1024, 0x20);
    for (const declared of [true, false]) {
      const response = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname);
        let got = '';
        socket.on('error', (e) => reject(new Error(`${declared ? 'content-length' : 'chunked'}: ${e.message} after ${JSON.stringify(got.slice(0, 80))}`)));
        // As Python's http.client: the head, then the whole body, and only once all of it is written, read.
        socket.pause();
        const read = () => {
          socket.on('data', (c) => (got += c.toString('latin1')));
          socket.on('end', () => resolve(got));
          socket.resume();
        };
        const head = declared
          ? `POST /v2/models/model/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`
          : `POST /v2/models/model/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`;
        socket.write(head);
        if (declared) socket.write(body, read);
        else {
          for (let i = 0; i < body.length; i += 65536) {
            const part = body.subarray(i, i + 65536);
            socket.write(`${part.length.toString(16)}\r\n`);
            socket.write(part);
            socket.write('\r\n');
          }
          socket.write('0\r\n\r\n', read);
        }
      });
      assert.match(response, /^HTTP\/1\.1 413 /, `${declared}: ${response.slice(0, 200)}`);
      assert.match(response, /"code":"PAYLOAD_TOO_LARGE"/);
    }
    // Python's own http.client, where Debian's python3 is: request() writes the whole body, then getresponse().
    if (existsSync(PYTHON)) {
      const script = [
        'import http.client, sys',
        `c = http.client.HTTPConnection('${url.hostname}', ${url.port}, timeout=30)`,
        `c.request('POST', '/v2/models/model/infer', body=b' ' * ${8 * LIMIT}, headers={'Content-Type': 'application/json'})`,
        'r = c.getresponse()',
        'print(r.status, r.read().decode())',
      ].join('\n');
      const { stdout } = await promisify(execFile)(PYTHON, ['-c', script]);
      assert.match(stdout, /^413 .*"code":"PAYLOAD_TOO_LARGE"/);
    }
    // A client that goes away while its oversized body is being discarded leaves the server serving.
    await new Promise<void>((resolve) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(`POST /v2/models/model/infer HTTP/1.1\r\nhost: x\r\ncontent-length: ${LIMIT * 2}\r\n\r\n`);
        socket.write(Buffer.alloc(1000), () => setTimeout(() => (socket.destroy(), resolve()), 50));
      });
      socket.on('error', () => {});
    });
    assert.equal((await infer(mlp(), {})).status, 200);
  });
});

describe("Triton's load API with a config override, and KServe's numbering of the repository messages", () => {
  const repo = tempRepository();
  let server: RunningServer;
  let client: Client;
  before(async () => {
    repo.add('mlp', '1');
    repo.add('digits', '1');
    ({ server, client } = await serveWithGrpc<Client>({ model: repo.root, warmUp: false, modelControl: 'explicit' }));
  });
  after(async () => {
    client?.close();
    await server?.close();
    repo.remove();
  });
  const configOf = async (model: string) => (await call(server.url, 'GET', `/v2/models/${model}/config`)).json();
  const load = (model: string, config: unknown) => call(server.url, 'POST', `/v2/repository/models/${model}/load`, { parameters: { config: typeof config === 'string' ? config : JSON.stringify(config) } });

  it('REST: max_batch_size, dynamic_batching and instance_group are applied, and GET .../config shows them', async () => {
    const before = await configOf('mlp');
    // With no config file, batching is the server's automatic choice (run-plan.ts); a load without a config goes back to it.
    const automatic = before.max_batch_size;
    const r = await load('mlp', {
      name: 'mlp',
      backend: 'onnxruntime',
      max_batch_size: 8,
      dynamic_batching: { max_queue_delay_microseconds: 2000, preferred_batch_size: [4, 8] },
      instance_group: [{ kind: 'KIND_CPU', count: 2 }],
    });
    assert.equal(r.status, 200, r.text);
    const after = await configOf('mlp');
    assert.equal(after.max_batch_size, 8);
    assert.deepEqual(after.dynamic_batching.preferred_batch_size, [4, 8]);
    assert.equal(after.dynamic_batching.max_queue_delay_microseconds, 2000);
    assert.equal(after.instance_group[0].count, 2);
    // The model serves with it.
    const infer = await call(server.url, 'POST', '/v2/models/mlp/infer', exampleRequest('mlp'));
    assert.equal(infer.status, 200, infer.text);
    // What GET returned is accepted back, except the fields dais reads from the model file and the run plan it
    // reports in `parameters` (chosen by the server; set in config.yaml, not by a load).
    const { input: _i, output: _o, parameters: _p, ...back } = after;
    assert.equal((await load('mlp', { ...back, max_batch_size: 0, dynamic_batching: undefined })).status, 200);
    assert.equal((await configOf('mlp')).max_batch_size, 0);
    // A load without a config goes back to the config file (none here).
    assert.equal((await call(server.url, 'POST', '/v2/repository/models/mlp/load', {})).status, 200);
    assert.equal((await configOf('mlp')).instance_group[0].count, 1);
    assert.equal((await configOf('mlp')).max_batch_size, automatic);
  });

  it('REST: unknown or unsupported fields get a 400 naming them; nothing changes', async () => {
    const unchanged = (await configOf('mlp')).max_batch_size;
    for (const [config, message] of [
      [{ max_batch_size: 4, sequence_batching: {} }, /'sequence_batching' is not supported \(dais has no sequence batcher\)/],
      [{ input: [] }, /'input' is not supported \(dais reads inputs from the model file/],
      [{ max_batch_size: 4, dynamic_batching: { priority_levels: 2 } }, /'dynamic_batching\.priority_levels' is not supported/],
      [{ instance_group: [{ kind: 'KIND_GPU', count: 1 }] }, /'instance_group\[0\]\.kind' "KIND_GPU" is not supported/],
      [{ dynamic_batching: {} }, /'dynamic_batching' needs 'max_batch_size' above 0/],
      [{ name: 'digits' }, /'name' is "digits" but the model loaded is 'mlp'/],
      [{ max_batch_size: 2, dynamic_batching: { preferred_batch_size: [4] } }, /preferred_batch_size' has 4, above max_batch_size 2/],
      ['{not json', /is not valid JSON/],
    ] as const) {
      const r = await load('mlp', config);
      assert.equal(r.status, 400, `${JSON.stringify(config)}: ${r.text}`);
      assert.equal(r.json().code, 'INVALID_REQUEST');
      assert.match(r.json().error, message);
    }
    assert.equal((await configOf('mlp')).max_batch_size, unchanged);
    const notString = await call(server.url, 'POST', '/v2/repository/models/mlp/load', { parameters: { config: { max_batch_size: 4 } } });
    assert.equal(notString.status, 400);
    assert.match(notString.json().error, /must be a string/);
  });

  it('gRPC RepositoryModelLoad: the "config" string_param, the same way', async () => {
    const automatic = (await configOf('digits')).max_batch_size;
    await rpc(client, 'RepositoryModelLoad', { model_name: 'digits', parameters: { config: { string_param: JSON.stringify({ max_batch_size: 16, dynamic_batching: {} }) } } });
    assert.equal((await configOf('digits')).max_batch_size, 16);
    await assert.rejects(
      rpc(client, 'RepositoryModelLoad', { model_name: 'digits', parameters: { config: { string_param: JSON.stringify({ optimization: {} }) } } }),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /'optimization' is not supported/.test(e.details),
    );
    await rpc(client, 'RepositoryModelLoad', { model_name: 'digits' });
    assert.equal((await configOf('digits')).max_batch_size, automatic);
  });

  it("gRPC: a request numbered as KServe's grpc_predict_v2.proto (model_name = 1) loads and unloads that model", async () => {
    // KServe's RepositoryModelLoadRequest/UnloadRequest: string model_name = 1. Encoded by hand (tag 0x0a, length).
    const kserve = (name: string) => Buffer.concat([Buffer.of(0x0a, name.length), Buffer.from(name)]);
    const raw = (method: string, name: string) =>
      new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(`/inference.GRPCInferenceService/${method}`, (b: Buffer) => b, (b: Buffer) => b, kserve(name), (e, r) => (e ? reject(e) : resolve(r!))),
      );
    await raw('RepositoryModelUnload', 'digits');
    assert.notEqual((await call(server.url, 'GET', '/v2/models/digits/ready')).status, 200);
    const index = (await call(server.url, 'POST', '/v2/repository/index', {})).json() as { name: string; state: string }[];
    assert.equal(index.find((m) => m.name === 'digits')?.state, 'UNAVAILABLE');
    await raw('RepositoryModelLoad', 'digits');
    assert.equal((await call(server.url, 'GET', '/v2/models/digits/ready')).status, 200);
    await assert.rejects(raw('RepositoryModelLoad', 'nope'), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  });
});
