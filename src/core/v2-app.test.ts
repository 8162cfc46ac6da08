// The v2 routes without a socket or a runtime: a model that doubles its FP32 input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS, InferenceError } from './errors.ts';
import type { InferenceRequest, ModelMetadata } from './protocol.ts';
import { validateRequest } from './validate.ts';
import { createV2App, type ModelEndpoint, type ModelRegistry, type V2Request } from './v2-app.ts';

const META: ModelMetadata = {
  name: 'double',
  versions: ['1'],
  platform: 'test',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
};

const endpoint: ModelEndpoint = {
  name: 'double',
  version: '1',
  isReady: () => true,
  metadata: () => META,
  async infer(req: InferenceRequest) {
    validateRequest(req, META);
    const x = req.inputs[0].data as Float32Array;
    return { model_name: 'double', model_version: '1', id: req.id, outputs: [{ name: 'y', datatype: 'FP32', shape: req.inputs[0].shape, data: x.map((v) => v * 2) }] };
  },
};

const registry: ModelRegistry = {
  isReady: () => true,
  resolve(name, version) {
    if (name !== 'double') throw new InferenceError('MODEL_NOT_FOUND', `model '${name}' not found`);
    if (version !== undefined && version !== '1') throw new InferenceError('VERSION_NOT_FOUND', `no version ${version}`);
    return endpoint;
  },
};

const app = createV2App({ registry, server: { name: 'dais', version: 't', extensions: ['binary_tensor_data'] } });
const enc = new TextEncoder();
const req = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): V2Request => ({
  method,
  path,
  headers: { 'content-type': 'application/json', ...headers },
  body: body === undefined ? undefined : typeof body === 'string' ? enc.encode(body) : enc.encode(JSON.stringify(body)),
});
const json = (b: string | Uint8Array) => JSON.parse(typeof b === 'string' ? b : new TextDecoder().decode(b));

test('health, server and model metadata', async () => {
  assert.equal((await app(req('GET', '/v2/health/live'))).status, 200);
  assert.equal((await app(req('GET', '/v2/health/ready'))).status, 200);
  for (const p of ['/v2', '/v2/']) assert.deepEqual(json((await app(req('GET', p))).body), { name: 'dais', version: 't', extensions: ['binary_tensor_data'] });
  assert.deepEqual(json((await app(req('GET', '/v2/models/double'))).body), META);
  assert.deepEqual(json((await app(req('GET', '/v2/models/double/versions/1'))).body), META);
  assert.equal((await app(req('GET', '/v2/models/double/versions/1/ready'))).status, 200);
});

test('infer echoes the id and computes', async () => {
  const r = await app(req('POST', '/v2/models/double/infer', { id: 'q', inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2.5] }] }));
  assert.equal(r.status, 200);
  assert.deepEqual(json(r.body), { model_name: 'double', model_version: '1', id: 'q', outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], data: [2, 5] }] });
});

test('infer paths: read without the router where plain, by the router where escaped; the same answers either way', async () => {
  const body = { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] };
  const cases: [string, number, string?][] = [
    ['/v2/models/double/infer', 200],
    ['/v2/models/double/infer/', 200],
    ['/v2/models/double/versions/1/infer', 200],
    ['/v2/models/double/versions/1/infer/', 200],
    ['/v2/models/%64ouble/infer', 200], // percent-escaped: the router decodes it
    ['/v2/models/double/versions/%31/infer', 200],
    ['/v2/models/%zz/infer', 404, 'NOT_FOUND'], // a malformed escape names no endpoint
    ['/v2/models//infer', 404, 'NOT_FOUND'],
    ['/v2/models/double/versions//infer', 404, 'NOT_FOUND'],
    ['/v2/models/double/extra/infer', 404, 'NOT_FOUND'],
    ['/v2/models/double/versions/1/extra/infer', 404, 'NOT_FOUND'],
    ['/v2/models/double/versions/infer', 405, 'METHOD_NOT_ALLOWED'], // the metadata route's path (version 'infer'), which takes GET
    ['/v2/models/infer', 405, 'METHOD_NOT_ALLOWED'], // model 'infer''s metadata
    ['/v2/models/other/infer', 404, 'MODEL_NOT_FOUND'],
    ['/v2/models/double/versions/2/infer', 404, 'VERSION_NOT_FOUND'],
  ];
  for (const [path, status, code] of cases) {
    const r = await app(req('POST', path, body));
    assert.equal(r.status, status, path);
    if (code) assert.equal(json(r.body).code, code, path);
    else assert.deepEqual(json(r.body).outputs[0].data, [2, 4], path);
  }
});

test('the observers hear of each infer once, answered within the call or not, ran or failed, encoded or not', async () => {
  const events: { ok: boolean; code?: string }[] = [];
  const bad = { name: 'y', datatype: 'BYTES' as const, shape: [1], data: [1] as never }; // cannot be encoded
  for (const now of [true, false]) {
    let mode: 'ok' | 'throw' | 'unencodable' = 'ok';
    const answer = (req: InferenceRequest) => {
      if (mode === 'throw') throw new InferenceError('INFERENCE_FAILED', 'the model failed');
      validateRequest(req, META);
      return { model_name: 'double', model_version: '1', outputs: mode === 'unencodable' ? [bad] : [{ name: 'y', datatype: 'FP32' as const, shape: [1, 2], data: new Float32Array(2) }] };
    };
    const ep: ModelEndpoint = { ...endpoint, infer: async (req) => answer(req), ...(now ? { inferNow: answer } : {}) };
    const observed = createV2App({ registry: { isReady: () => true, resolve: () => ep }, server: { name: 'dais', version: 't', extensions: [] }, onInfer: (e) => events.push({ ok: !e.error, code: e.error?.code }) });
    const body = { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] };
    events.length = 0;
    assert.equal((await observed(req('POST', '/v2/models/double/infer', body))).status, 200);
    mode = 'throw';
    assert.equal(json((await observed(req('POST', '/v2/models/double/infer', body))).body).code, 'INFERENCE_FAILED');
    mode = 'unencodable';
    assert.equal((await observed(req('POST', '/v2/models/double/infer', body))).status, 500);
    assert.deepEqual(events, [{ ok: true, code: undefined }, { ok: false, code: 'INFERENCE_FAILED' }, { ok: false, code: 'INTERNAL' }], now ? 'inferNow' : 'infer');
  }
});

test('an answer ready within the call comes as it is, not as a promise; an endpoint\'s deferred bookkeeping runs after the send, or at once when the answer fails', async () => {
  const log: string[] = [];
  let mode: 'ok' | 'unencodable' = 'ok';
  const ep: ModelEndpoint = {
    ...endpoint,
    inferNow(r, context) {
      validateRequest(r, META);
      const book = () => log.push('bookkeeping');
      if (context?.defer) context.defer(book);
      else book();
      const data = mode === 'ok' ? new Float32Array(2) : ([1] as never);
      return { model_name: 'double', model_version: '1', outputs: [{ name: 'y', datatype: mode === 'ok' ? 'FP32' : 'BYTES', shape: [1, 2], data }] };
    },
  };
  const observed = createV2App({ registry: { isReady: () => true, resolve: () => ep }, server: { name: 'dais', version: 't', extensions: [] }, onInfer: (e) => log.push(e.error ? `told ${e.error.code}` : 'told ok') });
  const body = { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] };
  const r = observed({ ...req('POST', '/v2/models/double/infer', body), runsAfter: true });
  assert.ok(!(r instanceof Promise), 'answered within the call');
  assert.equal(r.status, 200);
  assert.deepEqual(log, [], 'nothing recorded before the adapter has sent the answer');
  r.after!();
  assert.deepEqual(log, ['bookkeeping', 'told ok'], 'the endpoint\'s bookkeeping first, then the observers');
  // An adapter that runs nothing after: no defer offered, the endpoint records at once.
  log.length = 0;
  const plain = await observed(req('POST', '/v2/models/double/infer', body));
  assert.equal(plain.after, undefined);
  assert.deepEqual(log, ['bookkeeping', 'told ok']);
  // An answer that fails to encode: what was deferred runs with the failure, before its answer.
  log.length = 0;
  mode = 'unencodable';
  const failed = await observed({ ...req('POST', '/v2/models/double/infer', body), runsAfter: true });
  assert.equal(failed.status, 500);
  assert.equal(failed.after, undefined);
  assert.deepEqual(log, ['bookkeeping', 'told INTERNAL']);
  // A refused request is answered within the call too.
  const refused = observed(req('POST', '/v2/models/double/infer', '{'));
  assert.ok(!(refused instanceof Promise));
  assert.equal(refused.status, 400);
});

test('a request whose adapter runs the answer\'s `after` is answered first: the observers are told, and its buffers freed, only then', async () => {
  for (const now of [true, false]) {
    const events: string[] = [];
    const ep: ModelEndpoint = { ...endpoint };
    if (now) ep.inferNow = (r) => (validateRequest(r, META), { model_name: 'double', model_version: '1', outputs: [{ name: 'y', datatype: 'FP32', shape: r.inputs[0].shape, data: (r.inputs[0].data as Float32Array).map((v) => v * 2) }] });
    const observed = createV2App({ registry: { isReady: () => true, resolve: () => ep }, server: { name: 'dais', version: 't', extensions: [] }, onInfer: (e) => events.push(e.error ? e.error.code : 'ok') });
    const body = { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] };
    const r = await observed({ ...req('POST', '/v2/models/double/infer', body), runsAfter: true });
    assert.equal(r.status, 200);
    assert.deepEqual(json(r.body).outputs[0].data, [2, 4]);
    assert.deepEqual(events, [], 'nobody told before the adapter has sent the answer');
    assert.equal(typeof r.after, 'function');
    r.after!();
    assert.deepEqual(events, ['ok']);
    // A failure is reported before its answer (nothing is left for later), and an adapter that runs nothing after
    // (Lambda, a test) gets the observers told before the answer, as ever.
    const failed = await observed({ ...req('POST', '/v2/models/double/infer', { inputs: [{ name: 'w', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }), runsAfter: true });
    assert.equal(failed.status, 400);
    assert.match(events[1], /_INPUT$/, 'the failure was told before its answer');
    assert.equal(failed.after, undefined);
    const plain = await observed(req('POST', '/v2/models/double/infer', body));
    assert.equal(plain.after, undefined);
    assert.deepEqual(events.length, 3);
    assert.deepEqual([events[0], events[2]], ['ok', 'ok'], now ? 'inferNow' : 'infer');
  }
  const { app: a, freed, release } = releasingApp();
  const { body, headerLength } = binaryBody();
  const r = await a({ ...req('POST', '/v2/models/double/infer', undefined, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) }), body, release, runsAfter: true });
  assert.equal(r.status, 200);
  assert.equal(freed.length, 0, 'the body outlives the answer until after it is sent');
  r.after!();
  assert.ok(freed.includes(body.buffer));
});

test('errors map to status codes with a code and a message', async () => {
  const cases: [V2Request, number, string][] = [
    [req('POST', '/v2/models/nope/infer', { inputs: [] }), 404, 'MODEL_NOT_FOUND'],
    [req('GET', '/v2/models/double/versions/9'), 404, 'VERSION_NOT_FOUND'],
    [req('GET', '/v2/models/nope/ready'), 404, 'MODEL_NOT_FOUND'],
    [req('GET', '/v3/foo'), 404, 'NOT_FOUND'],
    [req('GET', '/v2/models/double/infer'), 405, 'METHOD_NOT_ALLOWED'],
    [req('POST', '/v2/models/double/infer', '{bad'), 400, 'INVALID_JSON'],
    [req('POST', '/v2/models/double/infer', { inputs: [{ name: 'z', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }), 400, 'UNKNOWN_INPUT'],
    [req('POST', '/v2/models/double/infer', { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP64', data: [1, 2] }] }), 400, 'DATATYPE_MISMATCH'],
    [req('POST', '/v2/models/double/infer', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }), 400, 'SHAPE_MISMATCH'],
    [req('POST', '/v2/models/double/infer', { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }], outputs: [{ name: 'w' }] }), 400, 'UNKNOWN_OUTPUT'],
    [req('POST', '/v2/models/double/infer', { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1] }] }), 400, 'DATA_LENGTH_MISMATCH'],
    [req('POST', '/v2/models/double/infer', { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }, { 'content-type': 'application/xml' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [req('POST', '/v2/models/double/infer', { inputs: [] }, { 'inference-header-content-length': 'abc' }), 400, 'BINARY_SIZE_MISMATCH'],
  ];
  for (const [r, status, code] of cases) {
    const res = await app(r);
    assert.equal(res.status, status, `${r.method} ${r.path} → ${res.status} ${res.body}`);
    const body = json(res.body);
    assert.equal(body.code, code);
    assert.equal(typeof body.error, 'string');
    assert.ok(body.error.length > 10);
    assert.doesNotMatch(body.error, /\n\s+at /, 'no stack traces in responses');
    assert.equal(ERRORS[code as keyof typeof ERRORS].status, status);
  }
});

test('missing input is named', async () => {
  const two: ModelMetadata = { ...META, inputs: [...META.inputs, { name: 'w', datatype: 'INT64', shape: [-1] }] };
  assert.throws(
    () => validateRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array(2) }] }, two),
    (e: InferenceError) => e.code === 'MISSING_INPUT' && /'w'/.test(e.message),
  );
});

test('unexpected errors never leak their message or stack', async () => {
  const broken = createV2App({
    registry: { isReady: () => true, resolve: () => ({ ...endpoint, infer: async () => { throw new Error('secret /etc/passwd at foo.ts:12'); } }) },
    server: { name: 'dais', version: 't', extensions: [] },
  });
  const r = await broken(req('POST', '/v2/models/double/infer', { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }));
  assert.equal(r.status, 500);
  assert.deepEqual(json(r.body), { error: 'internal server error', code: 'INTERNAL' });
});

// ---- big buffers freed when the last reader lets go (V2Request.release, InferEvent.hold) ----

/** An app whose observer can hold events; `freed` lists every buffer the app asked to free, in order. */
function releasingApp(opts: { hold?: boolean; fail?: boolean } = {}) {
  const freed: ArrayBufferLike[] = [];
  const held: { event: import('./v2-app.ts').InferEvent; sum: number }[] = [];
  const seenAtRun: number[] = [];
  const ep: ModelEndpoint = {
    ...endpoint,
    async infer(r) {
      seenAtRun.push(freed.length);
      if (opts.fail) throw new InferenceError('INFERENCE_FAILED', 'boom');
      return endpoint.infer(r);
    },
  };
  const a = createV2App({
    registry: { isReady: () => true, resolve: () => ep },
    server: { name: 'dais', version: 't', extensions: [] },
    onInfer: (e) => {
      const x = e.request.inputs[0].data as Float32Array;
      if (opts.hold) e.hold?.();
      held.push({ event: e, sum: x.reduce((s, v) => s + v, 0) });
    },
  });
  const release = (b: Uint8Array) => void freed.push(b.buffer);
  return { app: a, freed, held, seenAtRun, release };
}

const ROWS = 8192; // 8192 × 2 FP32 = 64 KiB: big enough to be freed
const values = Float32Array.from({ length: ROWS * 2 }, (_, i) => (i % 7) - 3.25); // JSON over 64 KiB too
const expectedSum = values.reduce((s, v) => s + v, 0);

function binaryBody(): { body: Uint8Array; headerLength: number } {
  let header = JSON.stringify({ inputs: [{ name: 'x', shape: [ROWS, 2], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }] });
  header += ' '.repeat((8 - (header.length % 8)) % 8); // tensors start 8-byte aligned: read in place
  const body = new Uint8Array(header.length + values.byteLength);
  body.set(enc.encode(header));
  body.set(new Uint8Array(values.buffer), header.length);
  return { body, headerLength: header.length };
}

test('a big JSON body is freed once decoded, before the run; its decoded input once the observers are done', async () => {
  const { app: a, freed, seenAtRun, release, held } = releasingApp();
  const body = enc.encode(JSON.stringify({ inputs: [{ name: 'x', shape: [ROWS, 2], datatype: 'FP32', data: Array.from(values) }] }));
  const r = await a({ ...req('POST', '/v2/models/double/infer'), body, release });
  assert.equal(r.status, 200);
  assert.equal(held[0].sum, expectedSum, 'the observer read the whole input');
  assert.equal(seenAtRun[0], 1, 'the body was freed before the run');
  assert.equal(freed[0], body.buffer);
  const input = held[0].event.request.inputs[0].data as Float32Array;
  assert.ok(freed.includes(input.buffer), 'the decoded input was freed after onInfer');
});

test('a big binary body lives until the last observer that held it lets go', async () => {
  const { app: a, freed, held, release } = releasingApp({ hold: true });
  const { body, headerLength } = binaryBody();
  const r = await a({ ...req('POST', '/v2/models/double/infer', undefined, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) }), body, release });
  assert.equal(r.status, 200);
  const out = json(r.body.slice(0, Number(r.headers['inference-header-content-length']) || undefined));
  assert.ok(out.outputs, 'answered');
  assert.equal(held[0].sum, expectedSum);
  assert.equal((held[0].event.request.inputs[0].data as Float32Array).buffer, body.buffer, 'the input was read in place');
  assert.equal(freed.length, 0, 'nothing freed while an observer holds the event');
  const output = held[0].event.response!.outputs[0].data as Float32Array;
  assert.equal(output.byteLength, ROWS * 2 * 4, 'the answer (64 KiB) is encoded and still there for the observer');
  held[0].event.release?.();
  assert.ok(freed.includes(body.buffer), 'freed once the observer let go');
  assert.ok(freed.includes(output.buffer), "and so is the answer's output");
  const n = freed.length;
  held[0].event.release?.(); // a second release is ignored, and so is a hold after the last release
  held[0].event.hold?.();
  held[0].event.release?.();
  assert.equal(freed.length, n);
});

test('nothing is freed after a failed run (it may still be reading), nor for small bodies', async () => {
  const { app: a, freed, release } = releasingApp({ fail: true });
  const { body, headerLength } = binaryBody();
  const r = await a({ ...req('POST', '/v2/models/double/infer', undefined, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) }), body, release });
  assert.equal(r.status, 500);
  assert.deepEqual(freed, []);
  const small = releasingApp();
  const r2 = await small.app({ ...req('POST', '/v2/models/double/infer', { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }), release: small.release });
  assert.equal(r2.status, 200);
  assert.deepEqual(small.freed, []);
});
