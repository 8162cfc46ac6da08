// The v2 REST server end to end: a real server on a loopback port serving the bundled examples. Outputs are
// compared with the training frameworks' own predictions, responses are checked against the published
// Open Inference Protocol schema, and every class of bad input is sent over HTTP.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { decodeInferResponse, encodeInferRequest, requestFromJson } from '../src/core/index.ts';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { EXAMPLES_DIR, REPO_ROOT, requireShared } from './support/env.ts';
import { assertClose, assertResponseMatches, exampleCases, exampleModels } from './support/examples.ts';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');

let server: RunningServer;
before(async () => {
  server = await serve({ model: EXAMPLES_DIR, port: 0 });
});
after(async () => {
  await server?.close();
});

async function call(method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}, base = server.url) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body as BodyInit | undefined,
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes, json: () => JSON.parse(new TextDecoder().decode(bytes)) };
}

const post = (model: string, body: unknown, headers?: Record<string, string>) =>
  call('POST', `/v2/models/${model}/infer`, typeof body === 'string' ? body : JSON.stringify(body), headers);

function specValidator(t: TestContext) {
  const dir = requireShared(t, 'specs/open-inference-protocol');
  if (!dir) return undefined;
  const doc = parseYaml(readFileSync(join(dir, 'open_inference_rest.yaml'), 'utf8')) as { components: { schemas: Record<string, object> } };
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'oip', components: doc.components });
  return (schema: string, value: unknown) => {
    const validate = ajv.getSchema(`oip#/components/schemas/${schema}`)!;
    assert.ok(validate(value), `${schema}: ${JSON.stringify(validate.errors)}`);
  };
}

test('the examples are present', () => {
  assert.deepEqual(exampleModels().filter((m) => ['digits', 'keyword', 'maintenance'].includes(m)), ['digits', 'keyword', 'maintenance']);
});

test('health, server metadata and model metadata follow the published schema', async (t) => {
  assert.equal((await call('GET', '/v2/health/live')).status, 200);
  assert.equal((await call('GET', '/v2/health/ready')).status, 200);
  const validate = specValidator(t);
  const meta = (await call('GET', '/v2')).json();
  assert.equal(meta.name, 'dais');
  assert.ok(meta.extensions.includes('binary_tensor_data'));
  assert.deepEqual((await call('GET', '/v2/')).json(), meta);
  validate?.('metadata_server_response', meta);
  for (const m of exampleModels()) {
    const r = await call('GET', `/v2/models/${m}`);
    assert.equal(r.status, 200);
    const md = r.json();
    validate?.('metadata_model_response', md);
    assert.equal(md.name, m);
    assert.deepEqual(md.versions, ['1']);
    assert.equal(md.platform, 'onnxruntime_onnx');
    assert.equal(md.inputs[0].shape[0], -1, `${m}: batch dimension is dynamic (-1)`);
    assert.deepEqual((await call('GET', `/v2/models/${m}/versions/1`)).json(), md);
    assert.equal((await call('GET', `/v2/models/${m}/ready`)).status, 200);
    assert.equal((await call('GET', `/v2/models/${m}/versions/1/ready`)).status, 200);
  }
  const digits = (await call('GET', '/v2/models/digits')).json();
  assert.deepEqual(digits.inputs, [{ name: 'image', datatype: 'FP32', shape: [-1, 1, 8, 8], ...(digits.inputs[0].dimNames ? { dimNames: digits.inputs[0].dimNames } : {}) }]);
});

describe('every example answers with the framework\'s predictions', () => {
  for (const c of exampleCases()) {
    test(`${c.model}/${c.requestFile}: JSON`, async (t) => {
      const r = await post(c.model, c.request);
      assert.equal(r.status, 200, new TextDecoder().decode(r.bytes));
      const body = r.json();
      specValidator(t)?.('inference_response', body);
      assert.equal(body.model_name, c.model);
      assert.equal(body.model_version, '1');
      assert.equal(body.id, c.request.id);
      assertResponseMatches(body.outputs, c.expected, `${c.model}/${c.requestFile}`);
    });

    test(`${c.model}/${c.requestFile}: binary tensors both ways`, async () => {
      const request = requestFromJson(c.request);
      request.parameters = { binary_data_output: true };
      const encoded = encodeInferRequest(request, () => true);
      const r = await call('POST', `/v2/models/${c.model}/infer`, encoded.body as Uint8Array, {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(encoded.headerLength),
      });
      assert.equal(r.status, 200, new TextDecoder().decode(r.bytes));
      const hl = Number(r.headers.get('inference-header-content-length'));
      assert.ok(hl > 0, 'binary response carries Inference-Header-Content-Length');
      const header = JSON.parse(new TextDecoder().decode(r.bytes.subarray(0, hl)));
      for (const o of header.outputs) {
        assert.equal(o.data, undefined);
        assert.equal(typeof o.parameters.binary_data_size, 'number');
      }
      const decoded = decodeInferResponse(r.bytes, hl);
      assertResponseMatches(decoded.outputs as never, c.expected, `${c.model}/${c.requestFile} (binary)`);
    });
  }

  test('"outputs" selects outputs, and per-output binary_data mixes JSON and binary', async () => {
    const c = exampleCases('maintenance')[0];
    const only = (await post('maintenance', { ...c.request, outputs: [{ name: 'probabilities' }] })).json();
    assert.deepEqual(only.outputs.map((o: { name: string }) => o.name), ['probabilities']);
    assertClose(only.outputs[0].data, c.expected.probabilities.data, 'probabilities');
    const mixed = await post('maintenance', { ...c.request, outputs: [{ name: 'label' }, { name: 'probabilities', parameters: { binary_data: true } }] });
    const hl = Number(mixed.headers.get('inference-header-content-length'));
    const decoded = decodeInferResponse(mixed.bytes, hl);
    const head = JSON.parse(new TextDecoder().decode(mixed.bytes.subarray(0, hl)));
    assert.deepEqual(head.outputs[0].data, c.expected.label.data);
    assertClose(decoded.outputs[1].data as Float32Array, c.expected.probabilities.data, 'binary probabilities');
  });

  test('nested data is accepted', async () => {
    const c = exampleCases('maintenance')[0];
    const input = c.request.inputs[0];
    const nested = { ...input, data: [input.data] };
    const r = await post('maintenance', { inputs: [nested] });
    assert.equal(r.status, 200);
    assertResponseMatches(r.json().outputs, c.expected, 'nested');
  });
});

describe('every v2 datatype over HTTP (identity model)', () => {
  const model = join(FIXTURES, 'all-types.onnx');
  let s: RunningServer | undefined;
  before(async () => {
    if (existsSync(model)) s = await serve({ model, port: 0 });
  });
  after(async () => s?.close());
  const samples: Record<string, unknown[]> = {
    bool: [true, false],
    uint8: [0, 255],
    uint16: [0, 65535],
    uint32: [0, 4294967295],
    uint64: [0, 9007199254740991],
    int8: [-128, 127],
    int16: [-32768, 32767],
    int32: [-2147483648, 2147483647],
    int64: [-9007199254740991, 9007199254740991],
    fp16: [0.5, -65504],
    fp32: [1.5, -3.25],
    fp64: [Math.PI, -1e300],
    bytes: ['hello', 'wörld'],
  };
  // The model needs every input in each request; each datatype's output is checked on its own.
  const body = {
    inputs: Object.entries(samples).map(([key, data]) => ({ name: `${key}_in`, shape: [1, 2], datatype: key.toUpperCase(), data })),
  };
  for (const binary of [false, true]) {
    test(binary ? 'binary tensors' : 'JSON tensors', async () => {
      assert.ok(s, `${model} is missing`);
      let outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[];
      if (binary) {
        const enc = encodeInferRequest({ ...requestFromJson(body), parameters: { binary_data_output: true } }, () => true);
        const r = await call('POST', '/v2/models/all-types/infer', enc.body as Uint8Array, { 'inference-header-content-length': String(enc.headerLength), 'content-type': 'application/octet-stream' }, s.url);
        assert.equal(r.status, 200, new TextDecoder().decode(r.bytes));
        const dec = decodeInferResponse(r.bytes, Number(r.headers.get('inference-header-content-length')));
        // Re-encode as JSON to compare with the samples in one way.
        outputs = JSON.parse(encodeInferRequest({ inputs: dec.outputs }).body as string).inputs;
      } else {
        const r = await call('POST', '/v2/models/all-types/infer', JSON.stringify(body), {}, s.url);
        assert.equal(r.status, 200, new TextDecoder().decode(r.bytes));
        outputs = r.json().outputs;
      }
      for (const [key, data] of Object.entries(samples)) {
        const out = outputs.find((o) => o.name === `${key}_out`);
        assert.ok(out, `${key}_out missing`);
        assert.deepEqual({ datatype: out.datatype, shape: out.shape, data: out.data }, { datatype: key.toUpperCase(), shape: [1, 2], data }, key);
      }
    });
  }
});

describe('bad input gets a clear error and the right status, and the server keeps running', () => {
  const digits = () => exampleCases('digits').find((c) => c.requestFile === 'single.json')!.request;
  const input = () => digits().inputs[0];
  const cases: [string, () => Promise<Awaited<ReturnType<typeof call>>>, number, string, RegExp][] = [
    ['malformed JSON', () => post('digits', '{"inputs": [ {'), 400, 'INVALID_JSON', /JSON/],
    ['not an inference request', () => post('digits', { hello: 1 }), 400, 'INVALID_REQUEST', /inputs/],
    ['unknown input', () => post('digits', { inputs: [{ ...input(), name: 'pixels' }] }), 400, 'UNKNOWN_INPUT', /'pixels'.*image/],
    ['wrong datatype', () => post('digits', { inputs: [{ ...input(), datatype: 'FP64' }] }), 400, 'DATATYPE_MISMATCH', /'image'.*FP64.*FP32/],
    ['shape that does not fit the model', () => post('digits', { inputs: [{ ...input(), shape: [1, 64] }] }), 400, 'SHAPE_MISMATCH', /'image'.*\[1, 64\].*\[-1, 1, 8, 8\]/],
    ['data length that does not match the shape', () => post('digits', { inputs: [{ ...input(), shape: [2, 1, 8, 8] }] }), 400, 'DATA_LENGTH_MISMATCH', /'image'.*128.*64/],
    ['invalid element', () => post('digits', { inputs: [{ ...input(), data: ['x', ...input().data.slice(1)] }] }), 400, 'INVALID_DATA', /'image'.*data\[0\]/],
    ['unknown output', () => post('digits', { ...digits(), outputs: [{ name: 'logits' }] }), 400, 'UNKNOWN_OUTPUT', /'logits'.*probabilities/],
    [
      'bad binary sizes',
      () =>
        call('POST', '/v2/models/digits/infer', JSON.stringify({ inputs: [{ name: 'image', shape: [1, 1, 8, 8], datatype: 'FP32', parameters: { binary_data_size: 256 } }] }) + 'abcd', {
          'inference-header-content-length': String(JSON.stringify({ inputs: [{ name: 'image', shape: [1, 1, 8, 8], datatype: 'FP32', parameters: { binary_data_size: 256 } }] }).length),
        }),
      400,
      'BINARY_SIZE_MISMATCH',
      /'image'.*256/,
    ],
    ['unknown model', () => post('nope', digits()), 404, 'MODEL_NOT_FOUND', /^model 'nope' is not in the repository$/],
    ['unknown version', () => call('POST', '/v2/models/digits/versions/7/infer', JSON.stringify(digits())), 404, 'VERSION_NOT_FOUND', /'7'/],
    ['unsupported content type', () => post('digits', digits(), { 'content-type': 'multipart/form-data; boundary=x' }), 415, 'UNSUPPORTED_MEDIA_TYPE', /multipart\/form-data/],
    ['unknown path', () => call('GET', '/v1/models/digits'), 404, 'NOT_FOUND', /\/v1\/models/],
    ['wrong method', () => call('DELETE', '/v2/models/digits/infer'), 405, 'METHOD_NOT_ALLOWED', /DELETE/],
  ];
  for (const [name, send, status, code, message] of cases) {
    test(name, async () => {
      const r = await send();
      assert.equal(r.status, status, new TextDecoder().decode(r.bytes));
      const body = r.json();
      assert.equal(body.code, code);
      assert.match(body.error, message);
      assert.doesNotMatch(body.error, /\n\s+at /);
      assert.equal((await call('GET', '/v2/health/live')).status, 200, 'server still alive');
    });
  }

  test('a missing model input is named', async () => {
    const m = join(FIXTURES, 'all-types.onnx');
    assert.ok(existsSync(m), `${m} is missing`);
    const s = await serve({ model: m, port: 0 });
    try {
      const r = await call('POST', '/v2/models/all-types/infer', JSON.stringify({ inputs: [{ name: 'fp32_in', shape: [1, 1], datatype: 'FP32', data: [1] }] }), {}, s.url);
      assert.equal(r.status, 400);
      assert.equal(r.json().code, 'MISSING_INPUT');
      assert.match(r.json().error, /'bool_in'/);
    } finally {
      await s.close();
    }
  });

  test('a body over the limit gets 413', async () => {
    const s = await serve({ model: join(EXAMPLES_DIR, 'digits', '1', 'model.onnx'), port: 0, maxBodyBytes: 1024 });
    try {
      const big = exampleCases('digits').find((c) => c.requestFile !== 'single.json')!.request;
      assert.ok(JSON.stringify(big).length > 1024);
      const r = await call('POST', '/v2/models/model/infer', JSON.stringify(big), {}, s.url);
      assert.equal(r.status, 413);
      assert.equal(r.json().code, 'PAYLOAD_TOO_LARGE');
      assert.match(r.json().error, /1024 bytes/);
      const ok = await call('GET', '/v2/health/live', undefined, {}, s.url);
      assert.equal(ok.status, 200);
    } finally {
      await s.close();
    }
  });

  test('a fixed-shape model refuses another shape', async () => {
    const m = join(FIXTURES, 'static-shape.onnx');
    assert.ok(existsSync(m), `${m} is missing`);
    const s = await serve({ model: m, port: 0 });
    try {
      const meta = (await call('GET', '/v2/models/static-shape', undefined, {}, s.url)).json();
      const inp = meta.inputs[0];
      assert.deepEqual(inp.shape, [2, 3]);
      const r = await call('POST', '/v2/models/static-shape/infer', JSON.stringify({ inputs: [{ name: inp.name, shape: [3, 2], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }] }), {}, s.url);
      assert.equal(r.status, 400);
      assert.equal(r.json().code, 'SHAPE_MISMATCH');
    } finally {
      await s.close();
    }
  });
});

test('a corrupt model file is refused at load with a clear message', async () => {
  const m = join(FIXTURES, 'not-a-model.onnx');
  assert.ok(existsSync(m), `${m} is missing`);
  await assert.rejects(serve({ model: m, port: 0 }), (e: Error) => /not-a-model/.test(e.message) && !/\n\s+at /.test(e.message));
});

test('scikit-learn ZipMap outputs are served as a probability tensor', async () => {
  const m = join(FIXTURES, 'zipmap-classifier.onnx');
  assert.ok(existsSync(m), `${m} is missing`);
  const expected = JSON.parse(readFileSync(join(FIXTURES, 'zipmap-classifier.expected.json'), 'utf8'));
  const s = await serve({ model: m, port: 0 });
  try {
    const meta = (await call('GET', '/v2/models/zipmap-classifier', undefined, {}, s.url)).json();
    const prob = meta.outputs.find((o: { name: string }) => o.name === 'output_probability');
    assert.ok(prob, JSON.stringify(meta.outputs));
    assert.equal(prob.datatype, 'FP32');
    const body = JSON.stringify({ inputs: expected.inputs ?? [expected.input] });
    const r = await call('POST', '/v2/models/zipmap-classifier/infer', body, {}, s.url);
    assert.equal(r.status, 200, new TextDecoder().decode(r.bytes));
    const out = r.json().outputs.find((o: { name: string }) => o.name === 'output_probability');
    assertClose(out.data, (expected.probabilities ?? expected.outputs?.output_probability?.data) as number[], 'zipmap probabilities');
  } finally {
    await s.close();
  }
});

test('a single model folder (<model>/<version>/model.onnx) is served as that model', async () => {
  const s = await serve({ model: join(EXAMPLES_DIR, 'mlp'), port: 0 });
  try {
    const meta = (await call('GET', '/v2/models/mlp', undefined, {}, s.url)).json();
    assert.equal(meta.name, 'mlp');
    assert.deepEqual(meta.versions, ['1']);
    const c = exampleCases('mlp')[0];
    const r = await call('POST', '/v2/models/mlp/infer', JSON.stringify(c.request), {}, s.url);
    assertResponseMatches(r.json().outputs, c.expected, 'mlp folder');
  } finally {
    await s.close();
  }
});
