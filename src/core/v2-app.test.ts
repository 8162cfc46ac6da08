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
