// The Lambda adapter in-process, without a socket: every event kind carries every example request to the core
// v2 app over the real models, and the answers equal the training frameworks' predictions. Error paths answer
// with the protocol's status and body, never a stack.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createV2App, decodeInferResponse, encodeInferRequest, requestFromJson, type ModelEndpoint, type ModelRegistry, type V2Handler } from '../src/core/index.ts';
import { onnxruntimeNode } from '../src/runtime/onnxruntime-node.ts';
import { ModelRepository, serverMetadata } from '../src/serve/index.ts';
import { processorFor, protocolPath } from '../src/targets/lambda/events.ts';
import { createLambdaHandler, MAX_RESPONSE_BYTES, type LambdaHandler } from '../src/targets/lambda/handler.ts';
import { HTTP_EVENT_KINDS, httpEvent, type HttpEventKind } from '../src/targets/lambda/sample-events.ts';
import { EXAMPLES_DIR } from './support/env.ts';
import { assertResponseMatches, exampleCases, exampleModels } from './support/examples.ts';

interface HttpResult {
  statusCode: number;
  statusDescription?: string;
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  body: string;
  isBase64Encoded: boolean;
}

let repository: ModelRepository;
let handler: LambdaHandler;
before(async () => {
  repository = await ModelRepository.open(EXAMPLES_DIR, { backend: onnxruntimeNode });
  handler = createLambdaHandler(createV2App({ registry: repository, server: serverMetadata() }), { onError: () => {} });
});
after(async () => repository?.close());

function header(r: HttpResult, name: string): string | undefined {
  return r.headers?.[name] ?? r.multiValueHeaders?.[name]?.[0];
}

function jsonOf(r: HttpResult): Record<string, unknown> & { outputs: never } {
  assert.equal(r.isBase64Encoded, false);
  return JSON.parse(r.body);
}

const KINDS = HTTP_EVENT_KINDS;

describe('the type guards pick one processor per event kind', () => {
  // Payloads as the Lambda developer guide shows them (trimmed to the fields that tell them apart).
  const docs: [string, unknown][] = [
    ['function-url', { version: '2.0', routeKey: '$default', rawPath: '/v2', headers: {}, requestContext: { domainName: 'abcdefg.lambda-url.us-west-2.on.aws', http: { method: 'GET', path: '/v2' }, stage: '$default' }, isBase64Encoded: false }],
    ['http-api-v2', { version: '2.0', routeKey: 'ANY /{proxy+}', rawPath: '/v2', headers: {}, requestContext: { domainName: 'id.execute-api.us-east-1.amazonaws.com', http: { method: 'GET', path: '/v2' }, stage: '$default' }, isBase64Encoded: false }],
    ['rest-api-v1', { resource: '/{proxy+}', path: '/v2', httpMethod: 'GET', headers: null, multiValueHeaders: null, requestContext: { stage: 'prod', resourcePath: '/{proxy+}' }, body: null, isBase64Encoded: false }],
    ['rest-api-v1', { version: '1.0', resource: '$default', path: '/v2', httpMethod: 'GET', headers: {}, requestContext: { stage: '$default' }, body: null, isBase64Encoded: false }],
    ['alb', { requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/lambda/1' } }, httpMethod: 'GET', path: '/v2', headers: {}, body: '', isBase64Encoded: false }],
    ['direct', { inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }],
    ['warmup', { warmup: true }],
    ['warmup', { version: '0', source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }],
  ];
  for (const [kind, event] of docs) test(kind, () => assert.equal(processorFor(event)?.kind, kind));
  test('anything else has no processor', () => {
    for (const e of [null, 42, 'x', [], {}, { Records: [] }]) assert.equal(processorFor(e), undefined);
  });
});

describe('every example through every event kind equals the framework\'s predictions', () => {
  test('all four examples are present', () => {
    for (const m of ['digits', 'keyword', 'maintenance', 'mlp']) assert.ok(exampleModels().includes(m), `examples/${m} is missing`);
  });
  for (const c of exampleCases()) {
    const path = `/v2/models/${c.model}/infer`;
    for (const kind of KINDS) {
      test(`${c.model}/${c.requestFile} via ${kind}`, async () => {
        const r = (await handler(httpEvent(kind, { method: 'POST', path, body: JSON.stringify(c.request) }), { awsRequestId: 'req-1' })) as HttpResult;
        assert.equal(r.statusCode, 200, r.body);
        assert.equal(header(r, 'content-type'), 'application/json');
        if (kind.startsWith('alb')) assert.equal(r.statusDescription, '200 OK');
        if (kind === 'alb-multi-value') assert.equal(r.headers, undefined, 'a multi-value target group gets multiValueHeaders only');
        const body = jsonOf(r);
        assert.equal(body.model_name, c.model);
        assert.equal(body.id, c.request.id);
        assertResponseMatches(body.outputs, c.expected, `${c.model}/${c.requestFile} (${kind})`);
      });
    }
    test(`${c.model}/${c.requestFile} via direct invocation`, async () => {
      const r = (await handler({ ...c.request, model_name: c.model })) as Record<string, unknown> & { outputs: never };
      assert.equal(r.model_name, c.model);
      assert.equal(r.model_version, '1');
      assertResponseMatches(r.outputs, c.expected, `${c.model}/${c.requestFile} (direct)`);
    });
    test(`${c.model}/${c.requestFile}: binary tensors base64 both ways (function URL)`, async () => {
      const request = requestFromJson(c.request);
      request.parameters = { binary_data_output: true };
      const encoded = encodeInferRequest(request, () => true);
      const event = httpEvent('function-url', {
        method: 'POST',
        path,
        body: encoded.body as Uint8Array,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(encoded.headerLength) },
      });
      assert.equal(event.isBase64Encoded, true);
      const r = (await handler(event)) as HttpResult;
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.isBase64Encoded, true);
      const bytes = new Uint8Array(Buffer.from(r.body, 'base64'));
      const decoded = decodeInferResponse(bytes, Number(header(r, 'inference-header-content-length')));
      assertResponseMatches(decoded.outputs as never, c.expected, `${c.model}/${c.requestFile} (binary)`);
    });
  }
});

describe('paths, stages and methods', () => {
  test('a named HTTP API stage and a REST base path are stripped before /v2', async () => {
    const c = exampleCases('mlp')[0];
    const staged = httpEvent('http-api-v2', { method: 'POST', path: '/v2/models/mlp/infer', body: JSON.stringify(c.request) }, { stage: 'prod' });
    assert.equal(staged.rawPath, '/prod/v2/models/mlp/infer');
    const r = (await handler(staged)) as HttpResult;
    assert.equal(r.statusCode, 200, r.body);
    assertResponseMatches(jsonOf(r).outputs, c.expected, 'staged');
    assert.equal(protocolPath('/ml/v2/models/mlp/infer'), '/v2/models/mlp/infer');
    assert.equal(protocolPath('/api/v2'), '/v2');
    assert.equal(protocolPath('/v2/models/v2/infer'), '/v2/models/v2/infer');
  });

  test('metadata, health and server metadata answer through a function URL', async () => {
    const get = async (path: string) => (await handler(httpEvent('function-url', { method: 'GET', path }))) as HttpResult;
    assert.deepEqual(jsonOf(await get('/v2')), serverMetadata());
    assert.deepEqual(jsonOf(await get('/v2/health/ready')), { ready: true });
    const md = jsonOf(await get('/v2/models/mlp'));
    assert.equal(md.name, 'mlp');
    assert.deepEqual((md.inputs as { shape: number[] }[])[0].shape, [-1, 784]);
    // The model configuration extension answers in a function too (served by the shared v2 app).
    const config = jsonOf(await get('/v2/models/mlp/config'));
    assert.equal(config.name, 'mlp');
    // The repository batches by default (the run plan): Triton's dims then leave out the batch dimension.
    assert.ok((config.max_batch_size as number) > 0, `max_batch_size ${config.max_batch_size}`);
    assert.deepEqual((config.input as { dims: number[] }[])[0].dims, [784]);
  });

  test('HEAD answers with headers and an empty body', async () => {
    for (const kind of KINDS) {
      const r = (await handler(httpEvent(kind, { method: 'HEAD', path: '/v2/health/live' }))) as HttpResult;
      assert.equal(r.statusCode, 200, kind);
      assert.equal(r.body, '', kind);
    }
  });

  test('the keep-warm ping answers without running a model', async () => {
    assert.deepEqual(await handler({ warmup: true }), { warm: true, ready: true });
  });
});

describe('errors: the protocol\'s status and message, never a stack', () => {
  const digits = () => exampleCases('digits')[0].request;
  const noStack = (text: string) => assert.doesNotMatch(text, /\n\s+at |\.ts:\d+|node:internal/, 'no stack trace in the answer');

  const cases: [string, () => { path: string; method?: string; body?: string; headers?: Record<string, string> }, number, string][] = [
    ['unknown model', () => ({ path: '/v2/models/nope/infer', body: JSON.stringify(digits()) }), 404, 'MODEL_NOT_FOUND'],
    ['unknown version', () => ({ path: '/v2/models/digits/versions/9/infer', body: JSON.stringify(digits()) }), 404, 'VERSION_NOT_FOUND'],
    ['malformed JSON', () => ({ path: '/v2/models/digits/infer', body: '{"inputs": [' }), 400, 'INVALID_JSON'],
    ['shape that does not fit', () => ({ path: '/v2/models/digits/infer', body: JSON.stringify({ inputs: [{ ...digits().inputs[0], shape: [digits().inputs[0].shape[0], 64] }] }) }), 400, 'SHAPE_MISMATCH'],
    ['GET on infer', () => ({ path: '/v2/models/digits/infer', method: 'GET' }), 405, 'METHOD_NOT_ALLOWED'],
    ['no such route', () => ({ path: '/predict', method: 'GET' }), 404, 'NOT_FOUND'],
    ['unsupported content type', () => ({ path: '/v2/models/digits/infer', body: 'x', headers: { 'content-type': 'image/png' } }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ];
  for (const [what, make, status, code] of cases) {
    test(`${what} → ${status} ${code} through every event kind`, async () => {
      const { path, method = 'POST', body, headers } = make();
      for (const kind of KINDS) {
        const r = (await handler(httpEvent(kind, { method, path, body, headers }))) as HttpResult;
        assert.equal(r.statusCode, status, `${kind}: ${r.body}`);
        const b = jsonOf(r);
        assert.equal(b.code, code, kind);
        assert.equal(typeof b.error, 'string');
        noStack(r.body);
      }
    });
  }

  test('direct invocation errors come back as the v2 error body with the status', async () => {
    const r = (await handler({ ...digits(), model_name: 'digits', inputs: [{ ...digits().inputs[0], datatype: 'FP64' }] })) as Record<string, unknown>;
    assert.equal(r.status, 400);
    assert.equal(r.code, 'DATATYPE_MISMATCH');
    assert.match(String(r.error), /'image'.*FP64.*FP32/);
    const noModel = (await handler(digits())) as Record<string, unknown>;
    assert.equal(noModel.status, 400);
    assert.match(String(noModel.error), /"model_name"/);
    assert.deepEqual(Object.keys(noModel).sort(), ['code', 'error', 'status']);
  });

  test('an event of no known kind gets a clear error naming the kinds', async () => {
    const r = (await handler({ Records: [{ eventSource: 'aws:sqs' }] })) as Record<string, unknown>;
    assert.equal(r.status, 400);
    assert.match(String(r.error), /function URL.*API Gateway.*ALB.*"inputs"/);
  });

  test('a model that throws → 500 with a generic message; the cause goes to the operator log only', async () => {
    const broken: ModelEndpoint = {
      name: 'broken',
      version: '1',
      isReady: () => true,
      metadata: () => ({ name: 'broken', platform: 'test', inputs: [], outputs: [] }),
      infer: async () => {
        throw new TypeError('secret internal detail');
      },
    };
    const registry: ModelRegistry = { isReady: () => true, resolve: () => broken };
    const logged: string[] = [];
    const h = createLambdaHandler(createV2App({ registry, server: serverMetadata(), onInfer: ({ error }) => error && logged.push(String((error.cause as Error).message)) }), { onError: () => {} });
    const r = (await h(httpEvent('function-url', { method: 'POST', path: '/v2/models/broken/infer', body: JSON.stringify(digits()) }))) as HttpResult;
    assert.equal(r.statusCode, 500);
    assert.deepEqual(JSON.parse(r.body), { error: 'internal server error', code: 'INTERNAL' });
    assert.deepEqual(logged, ['secret internal detail']);
  });

  test('a response over Lambda\'s 6 MB payload limit becomes a clear 413', async () => {
    const big: V2Handler = async () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: `"${'x'.repeat(MAX_RESPONSE_BYTES)}"` });
    const r = (await createLambdaHandler(big)(httpEvent('function-url', { method: 'GET', path: '/v2' }))) as HttpResult;
    assert.equal(r.statusCode, 413);
    assert.match(JSON.parse(r.body).error, /6291456-byte limit.*smaller batch/);
  });
});
