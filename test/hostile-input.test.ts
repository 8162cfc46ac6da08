// Issue 22: hostile input never takes the server down. One test per reported attack, each against a real server
// on 127.0.0.1 (REST, gRPC) or the real Lambda handler, asserting the named error and that the server still serves.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { checkJsonDepth } from '../src/core/index.ts';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { call, exampleModel, exampleRequest, tempRepository } from './support/serving.ts';

type Repo = ReturnType<typeof tempRepository>;

/** Sends raw bytes on a fresh connection and returns everything the server wrote back before closing. */
export function rawHttp(port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, timeoutMs);
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('error', (e) => (out ? resolve(out) : reject(e)));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.write(bytes);
  });
}

function bodyOf(raw: string): Record<string, unknown> {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

describe('hostile input (issue 22)', () => {
  let repo: Repo;
  let s: RunningServer;
  const keyword = exampleRequest('keyword', 'yes.json');
  const mlp = exampleRequest('mlp');
  const stillServes = async () => assert.equal((await call(s.url, 'POST', '/v2/models/mlp/infer', mlp)).status, 200);

  before(async () => {
    repo = tempRepository();
    for (const m of ['mlp', 'keyword']) repo.add(m, '1', exampleModel(m));
    s = await serve({ model: repo.root, port: 0, grpcPort: 0 });
  });
  after(async () => {
    await s.close({ timeoutMs: 2000 });
    repo.remove();
  });

  it('refuses a zero-size dimension with EMPTY_TENSOR (it aborted onnxruntime in the GRU), REST and gRPC', async () => {
    for (const shape of [[0, 50, 40], [1, 0, 40], [1, 50, 0]]) {
      const r = await call(s.url, 'POST', '/v2/models/keyword/infer', { inputs: [{ name: 'features', shape, datatype: 'FP32', data: [] }] });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json().code, 'EMPTY_TENSOR', r.text);
    }
    const { loadInferenceService } = await import('../src/serve/grpc/server.ts');
    const Service = loadInferenceService();
    const client = new Service(`127.0.0.1:${s.grpc!.port}`, grpc.credentials.createInsecure());
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        (client as unknown as Record<string, (r: unknown, cb: (e: grpc.ServiceError | null) => void) => void>).ModelInfer(
          { model_name: 'keyword', inputs: [{ name: 'features', datatype: 'FP32', shape: [0, 50, 40], contents: { fp32_contents: [] } }] },
          (e) => resolve(e),
        ),
      );
      assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err!.details, /size 0 in dimension 0/);
      // A body that is not a protobuf message at all: INVALID_ARGUMENT, not INTERNAL.
      const raw = new grpc.Client(`127.0.0.1:${s.grpc!.port}`, grpc.credentials.createInsecure());
      const bad = await new Promise<grpc.ServiceError | null>((resolve) =>
        raw.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0xff, 0xff, 0xff]), (e) => resolve(e)),
      );
      raw.close();
      assert.equal(bad?.code, grpc.status.INVALID_ARGUMENT, bad?.details);
    } finally {
      client.close();
    }
    const ok = await call(s.url, 'POST', '/v2/models/keyword/infer', keyword);
    assert.equal(ok.status, 200);
  });

  it('checks datatype against the model before decoding: 4 M empty BYTES strings for an FP32 input are refused', async () => {
    const n = 4_000_000;
    const body = `{"inputs":[{"name":"features","shape":[${n}],"datatype":"BYTES","data":[${'"",'.repeat(n - 1)}""]}]}`;
    const before = process.memoryUsage().heapUsed;
    const r = await call(s.url, 'POST', '/v2/models/keyword/infer', body);
    assert.equal(r.status, 400);
    assert.equal(r.json().code, 'DATATYPE_MISMATCH');
    // Not a timing or memory assertion of the server: just that the decoded strings were never kept around.
    assert.ok(process.memoryUsage().heapUsed - before < 512 * 1024 * 1024);
    await stillServes();
  });

  it('a 60 MB body of 20 M empty BYTES strings gets DATATYPE_MISMATCH while other requests keep being answered', async () => {
    // The goal's attack (goals/hostile.goal.ts). Its body used to be joined in one 60 MB copy that held the event
    // loop ~200 ms; the < 100 ms goal is measured there, this only bounds it loosely (the machine may be shared).
    const n = 20_000_000;
    const body = Buffer.from(`{"inputs":[{"name":"features","shape":[${n}],"datatype":"BYTES","data":[${'"",'.repeat(n - 1)}""]}]}`);
    let done = false;
    let worst = 0;
    let answered = 0;
    const others = (async () => {
      while (!done) {
        const t = performance.now();
        assert.equal((await call(s.url, 'POST', '/v2/models/mlp/infer', mlp)).status, 200);
        worst = Math.max(worst, performance.now() - t);
        answered++;
      }
    })();
    const r = await call(s.url, 'POST', '/v2/models/keyword/infer', body);
    done = true;
    await others;
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json().code, 'DATATYPE_MISMATCH');
    assert.ok(answered > 0);
    assert.ok(worst < 1000, `a small request took ${worst.toFixed(0)} ms during the attack`);
  });

  it('the byte scan before JSON.parse reads each input\'s name and datatype, not look-alikes elsewhere', () => {
    const seen: [string | undefined, string | undefined][] = [];
    const text = JSON.stringify({
      id: '"datatype":"BYTES"',
      parameters: { datatype: 'INT8', inputs: [{ name: 'no', datatype: 'BOOL' }] },
      inputs: [
        { name: 'a', shape: [1], datatype: 'FP32', data: [{ datatype: 'X' }], parameters: { name: 'z' } },
        { datatype: 'BYTES', 'na\\me': 'q', name: 'b\\c', data: ['"datatype"'] },
      ],
    });
    checkJsonDepth(text, 64, { early: (n, d) => void seen.push([n, d]) });
    // The second name has an escape: not read (left to the full decode).
    assert.deepEqual(seen, [['a', 'FP32'], [undefined, 'BYTES']]);
  });

  it('refuses JSON nested deeper than 64 levels (id or data) with NESTING_TOO_DEEP, before JSON.parse', async () => {
    const deepId = `{"id":${'['.repeat(100_000)}${']'.repeat(100_000)},"inputs":[]}`;
    const r1 = await call(s.url, 'POST', '/v2/models/mlp/infer', deepId);
    assert.equal(r1.status, 400);
    assert.equal(r1.json().code, 'NESTING_TOO_DEEP');
    const deepData = JSON.stringify({ inputs: [{ name: mlp.inputs[0].name, shape: [1], datatype: 'FP32', data: 0 }] }).replace('"data":0', `"data":${'['.repeat(10_000)}0${']'.repeat(10_000)}`);
    const r2 = await call(s.url, 'POST', '/v2/models/mlp/infer', deepData);
    assert.equal(r2.status, 400);
    assert.equal(r2.json().code, 'NESTING_TOO_DEEP');
    // Brackets inside strings do not count.
    const inString = { ...mlp, id: '['.repeat(1000) };
    assert.equal((await call(s.url, 'POST', '/v2/models/mlp/infer', inString)).status, 200);
  });

  it('"outputs": [] asks for every output, as Triton reads it', async () => {
    const r = await call(s.url, 'POST', '/v2/models/mlp/infer', { ...mlp, outputs: [] });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json().outputs.length >= 1);
  });

  it('answers broken HTTP framing and oversized headers with a JSON body, a code and an x-request-id', async () => {
    const neg = await rawHttp(s.port, 'POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n');
    assert.match(neg, /^HTTP\/1\.1 400 /);
    assert.match(neg, /\r\nx-request-id: [\w-]+\r\n/);
    assert.equal(bodyOf(neg).code, 'MALFORMED_HTTP');
    const big = await rawHttp(s.port, `GET /v2 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    assert.equal(bodyOf(big).code, 'HEADERS_TOO_LARGE');
    await stillServes();
  });

  it('refuses repository control unless enabled, foreign Origins and (on loopback) foreign Host names', async () => {
    const unload = await call(s.url, 'POST', '/v2/repository/models/mlp/unload', undefined, { 'content-type': 'text/plain' });
    assert.equal(unload.status, 403);
    assert.equal(unload.json().code, 'MODEL_CONTROL_DISABLED');
    const index = await call(s.url, 'POST', '/v2/repository/index', {});
    assert.equal(index.json().code, 'MODEL_CONTROL_DISABLED');
    const evil = await call(s.url, 'POST', '/v2/models/mlp/infer', JSON.stringify(mlp), { 'content-type': 'text/plain', origin: 'http://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal(evil.json().code, 'ORIGIN_NOT_ALLOWED');
    // Same origin passes.
    const same = await call(s.url, 'POST', '/v2/models/mlp/infer', mlp, { origin: s.url });
    assert.equal(same.status, 200);
    const rebound = await rawHttp(s.port, 'GET /v2/models/mlp HTTP/1.1\r\nHost: evil.example:8080\r\nConnection: close\r\n\r\n');
    assert.match(rebound, /^HTTP\/1\.1 403 /);
    assert.equal(bodyOf(rebound).code, 'HOST_NOT_ALLOWED');
    for (const host of ['localhost:1234', '127.0.0.1', '[::1]:80']) {
      assert.match(await rawHttp(s.port, `GET /v2/health/live HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200 /, host);
    }
    await stillServes();
  });

  it('with --model-control explicit, load/unload work but take JSON only and refuse foreign Origins', async () => {
    const r2 = tempRepository();
    r2.add('mlp', '1', exampleModel('mlp'));
    const t = await serve({ model: r2.root, port: 0, modelControl: 'explicit' });
    try {
      const text = await call(t.url, 'POST', '/v2/repository/models/mlp/unload', 'x', { 'content-type': 'text/plain' });
      assert.equal(text.json().code, 'UNSUPPORTED_MEDIA_TYPE');
      const cross = await call(t.url, 'POST', '/v2/repository/models/mlp/unload', undefined, { origin: 'http://evil.example' });
      assert.equal(cross.json().code, 'ORIGIN_NOT_ALLOWED');
      assert.equal((await call(t.url, 'POST', '/v2/models/mlp/infer', mlp)).status, 200);
      assert.equal((await call(t.url, 'POST', '/v2/repository/models/mlp/unload', {})).status, 200);
    } finally {
      await t.close({ timeoutMs: 2000 });
      r2.remove();
    }
  });

  it('names no other model and no path in errors, and serves no symlink leading out of the repository', async () => {
    const outside = tempRepository();
    outside.add('secret', '1', exampleModel('digits'));
    const r2 = tempRepository();
    r2.add('mlp', '1', exampleModel('mlp'));
    symlinkSync(join(outside.root, 'secret'), join(r2.root, 'linked'));
    const t = await serve({ model: r2.root, port: 0, modelControl: 'explicit' });
    try {
      assert.deepEqual(t.repository.names(), ['mlp']);
      const missing = await call(t.url, 'GET', '/v2/models/linked');
      assert.equal(missing.status, 404);
      assert.doesNotMatch(missing.text, /mlp|secret/);
      // A version that fails to load: its reason, as clients see it, holds no absolute path.
      mkdirSync(join(r2.root, 'mlp', '2'), { recursive: true });
      writeFileSync(join(r2.root, 'mlp', '2', 'model.onnx'), 'not a model');
      await call(t.url, 'POST', '/v2/repository/models/mlp/load', {});
      const index = await call(t.url, 'POST', '/v2/repository/index', {});
      const v2 = index.json().find((e: { version: string }) => e.version === '2');
      assert.ok(v2?.reason, index.text);
      assert.ok(!index.text.includes(r2.root), index.text);
    } finally {
      await t.close({ timeoutMs: 2000 });
      r2.remove();
      outside.remove();
    }
  });
});
