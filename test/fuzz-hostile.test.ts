// Seeded structured fuzzing (issue 22): a few thousand hostile requests over REST, gRPC and Lambda events against
// every example model, in this process (so a native abort or a heap overflow fails the whole run). Every answer must
// be a client error with a JSON body and a code (or a success), never a 5xx, and a known-good request between
// attacks must still be answered. A failure prints its seed and case number, so it can be replayed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createV2App, type ModelMetadata } from '../src/core/index.ts';
import { loadInferenceService } from '../src/serve/grpc/server.ts';
import { serve, serverMetadata, type RunningServer } from '../src/serve/index.ts';
import { createLambdaHandler, type LambdaHandler } from '../src/targets/lambda/handler.ts';
import { EXAMPLES_DIR } from './support/env.ts';
import { servedExamples } from './support/examples.ts';
import { DATATYPES, hostileBody, hostileShape, int, pick } from '../src/bench/hostile-requests.ts';
import { seeded } from '../src/bench/random.ts';
import { call, exampleRequest } from './support/serving.ts';

const SEED = Number(process.env.DAIS_FUZZ_SEED ?? 2206);
const REST_CASES = 1500;
const GRPC_CASES = 400;
const LAMBDA_CASES = 600;
function assertClientError(status: number, text: string, where: string): void {
  assert.ok(status < 500, `${where}: answered ${status}: ${text.slice(0, 300)}`);
  if (status >= 400) {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown };
    assert.equal(typeof body.code, 'string', `${where}: error without a code: ${text.slice(0, 300)}`);
    assert.equal(typeof body.error, 'string', where);
  }
}

describe('fuzz: hostile requests over REST, gRPC and Lambda never take the server down', () => {
  let s: RunningServer;
  let lambda: LambdaHandler;
  let models: ModelMetadata[];
  const good = exampleRequest('mlp');

  before(async () => {
    s = await serve({ model: EXAMPLES_DIR, port: 0, grpcPort: 0 });
    lambda = createLambdaHandler(createV2App({ registry: s.repository, server: serverMetadata() }), { onError: () => {} });
    models = servedExamples().map((m) => s.repository.resolve(m).metadata());
    assert.ok(models.length >= 4, 'every example model is served');
  });
  after(async () => s.close({ timeoutMs: 2000 }));

  const knownGood = async (where: string) => {
    const r = await call(s.url, 'POST', '/v2/models/mlp/infer', good);
    assert.equal(r.status, 200, `${where}: the known-good request failed after the attack: ${r.text.slice(0, 200)}`);
  };

  it(`REST: ${REST_CASES} hostile bodies (seed ${SEED})`, async () => {
    const r = seeded(SEED);
    for (let i = 0; i < REST_CASES; i++) {
      const model = pick(r, models);
      const { body, headers } = hostileBody(r, model);
      const where = `seed ${SEED} REST case ${i} (${model.name})`;
      const res = await call(s.url, 'POST', `/v2/models/${model.name}/infer`, body, headers);
      assertClientError(res.status, res.text, where);
      if (i % 50 === 0) await knownGood(where);
    }
    await knownGood('after REST');
  });

  it(`gRPC: ${GRPC_CASES} hostile ModelInfer messages and raw bytes`, async () => {
    const r = seeded(SEED + 1);
    const Service = loadInferenceService();
    const client = new Service(`127.0.0.1:${s.grpc!.port}`, grpc.credentials.createInsecure()) as unknown as Record<string, (req: unknown, cb: (e: grpc.ServiceError | null) => void) => void>;
    const raw = new grpc.Client(`127.0.0.1:${s.grpc!.port}`, grpc.credentials.createInsecure());
    const bad = new Set([grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.DATA_LOSS]);
    try {
      for (let i = 0; i < GRPC_CASES; i++) {
        const model = pick(r, models);
        const where = `seed ${SEED + 1} gRPC case ${i} (${model.name})`;
        let err: grpc.ServiceError | null;
        if (r() < 0.25) {
          const bytes = Buffer.from(Uint8Array.from({ length: int(r, 0, 300) }, () => int(r, 0, 255)));
          err = await new Promise((resolve) => raw.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, bytes, (e) => resolve(e)));
        } else {
          const shape = hostileShape(r, Math.max(1, model.inputs[0].shape.length));
          const dims = Array.isArray(shape) ? shape.filter((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0 && d < 2 ** 53) : [];
          const n = Math.min(dims.reduce((a: number, b) => a * (b as number), 1), 20_000);
          const datatype = r() < 0.6 ? 'FP32' : pick(r, DATATYPES);
          const contents = pick(r, [
            { fp32_contents: Array.from({ length: n }, () => r()) },
            { bytes_contents: Array.from({ length: Math.min(n, 5000) }, () => Buffer.alloc(0)) },
            { int64_contents: ['9223372036854775807', '-1'] },
            {},
          ]);
          const req: Record<string, unknown> = { model_name: r() < 0.95 ? model.name : 'nope', inputs: [{ name: model.inputs[0].name, datatype, shape: dims, contents }] };
          if (r() < 0.2) req.raw_input_contents = [Buffer.alloc(int(r, 0, 64))];
          if (r() < 0.1) req.outputs = [];
          err = await new Promise((resolve) => client.ModelInfer(req, (e) => resolve(e)));
        }
        assert.ok(!err || !bad.has(err.code), `${where}: gRPC ${err?.code} ${err?.details}`);
      }
    } finally {
      raw.close();
      (client as unknown as grpc.Client).close();
    }
    await knownGood('after gRPC');
  });

  it(`Lambda: ${LAMBDA_CASES} hostile events through the handler`, async () => {
    const r = seeded(SEED + 2);
    for (let i = 0; i < LAMBDA_CASES; i++) {
      const model = pick(r, models);
      const where = `seed ${SEED + 2} Lambda case ${i} (${model.name})`;
      const { body } = hostileBody(r, model);
      const text = typeof body === 'string' ? body : Buffer.from(body).toString('latin1');
      const path = `/v2/models/${model.name}/infer`;
      const bodyField = pick(r, [text, text, 123, {}, null, [text]] as unknown[]);
      let event: unknown;
      switch (int(r, 0, 5)) {
        case 0: // function URL, sometimes without its method
          event = { version: '2.0', rawPath: path, headers: { 'content-type': 'application/json' }, body: bodyField, requestContext: { domainName: 'x.lambda-url.us-east-1.on.aws', http: r() < 0.7 ? { method: 'POST' } : {} } };
          break;
        case 1: // ALB, sometimes without its path
          event = { httpMethod: 'POST', ...(r() < 0.7 ? { path } : {}), headers: {}, body: bodyField, requestContext: { elb: { targetGroupArn: 'arn' } } };
          break;
        case 2: // REST API v1
          event = { httpMethod: pick(r, ['POST', 'GET', 'DELETE']), path, headers: null, body: bodyField, isBase64Encoded: r() < 0.2, requestContext: {} };
          break;
        case 3: { // direct invocation; data sometimes nested past any stack
          const deep: unknown[] = [];
          let at = deep;
          for (let d = 0; d < int(r, 0, 1) * 12_000; d++) at = (at[0] = []) as unknown[];
          event = { model_name: model.name, inputs: [{ name: model.inputs[0].name, datatype: 'FP32', shape: [1], data: r() < 0.5 ? deep : [1] }] };
          break;
        }
        case 4:
          event = pick(r, [null, 5, 'x', [], {}, { inputs: 5 }, { version: '2.0' }, { httpMethod: 5 }]);
          break;
        default:
          event = { version: '2.0', rawPath: path, headers: {}, body: bodyField, requestContext: { http: { method: 'POST' } } };
      }
      const result = (await lambda(event, { awsRequestId: `fuzz-${i}` })) as Record<string, unknown> | null;
      assert.ok(result && typeof result === 'object', `${where}: no result object`);
      if (typeof result.statusCode === 'number') assertClientError(result.statusCode, String(result.body ?? ''), where);
      else if (typeof result.status === 'number') {
        assert.ok(result.status < 500, `${where}: ${JSON.stringify(result).slice(0, 300)}`);
        assert.equal(typeof result.code, 'string', where);
      }
    }
    await knownGood('after Lambda');
  });
});
