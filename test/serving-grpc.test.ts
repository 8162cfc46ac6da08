// gRPC over a real port: a client built from dais' .proto (the published field names and numbers) gets the same
// numbers from ModelInfer as REST does, with raw and typed contents; errors arrive as gRPC status codes; the
// repository and statistics extensions and bearer auth work as over REST.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { RunningServer } from '../src/serve/index.ts';
import protobuf from 'protobufjs';
import { PROTO_PATH } from '../src/serve/grpc/server.ts';
import { assertResponseMatches, exampleCases } from './support/examples.ts';
import { call, tempRepository, exampleModel, serveWithGrpc } from './support/serving.ts';

type Client = grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: any) => void) => void>; // eslint-disable-line @typescript-eslint/no-explicit-any

const TOKEN = 'grpc-secret';

function rpc(client: Client, method: string, req: unknown, token: string | undefined = TOKEN): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => client[method](req, md, (e, r) => (e ? reject(e) : resolve(r))));
}

function f32(raw: Buffer): number[] {
  const copy = new Uint8Array(raw);
  return Array.from(new Float32Array(copy.buffer, 0, copy.length / 4));
}

it('the .proto puts the raw contents and typed contents at the published field numbers', () => {
  const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
  const field = (type: string, name: string) => root.lookupType(`inference.${type}`).fields[name].id;
  assert.equal(field('ModelInferRequest', 'raw_input_contents'), 7);
  assert.equal(field('ModelInferResponse', 'raw_output_contents'), 6);
  assert.deepEqual(
    ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'].map((n) => field('InferTensorContents', n)),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  const service = root.lookupService('inference.GRPCInferenceService');
  for (const m of ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelMetadata', 'ModelInfer', 'RepositoryIndex', 'RepositoryModelLoad', 'RepositoryModelUnload']) {
    assert.ok(service.methods[m], `${m} is in the service`);
  }
});

describe('gRPC inference.GRPCInferenceService', () => {
  const repo = tempRepository();
  let server: RunningServer;
  let client: Client;
  before(async () => {
    repo.add('digits', '1');
    repo.add('maintenance', '1', exampleModel('maintenance'));
    ({ server, client } = await serveWithGrpc<Client>({ model: repo.root, authToken: TOKEN, modelControl: 'explicit' }));
  });
  after(async () => {
    client?.close();
    await server?.close();
    repo.remove();
  });

  it('answers health and metadata; health needs no token', async () => {
    assert.deepEqual(await rpc(client, 'ServerLive', {}, undefined), { live: true });
    assert.deepEqual(await rpc(client, 'ServerReady', {}, undefined), { ready: true });
    assert.deepEqual(await rpc(client, 'ModelReady', { name: 'digits' }, undefined), { ready: true });
    const meta = await rpc(client, 'ServerMetadata', {});
    assert.equal(meta.name, 'dais');
    assert.ok(meta.extensions.includes('model_repository'));
    const m = await rpc(client, 'ModelMetadata', { name: 'digits', version: '1' });
    assert.deepEqual(
      { ...m, inputs: m.inputs.map((t: { shape: string[] }) => ({ ...t, shape: t.shape.map(Number) })) },
      { name: 'digits', versions: ['1'], platform: 'onnxruntime_onnx', inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 1, 8, 8] }], outputs: m.outputs },
    );
  });

  it('ModelInfer with raw_input_contents returns the same numbers as REST', async () => {
    for (const c of exampleCases('digits')) {
      const input = c.request.inputs[0];
      const raw = Buffer.from(new Float32Array(input.data as number[]).buffer);
      const r = await rpc(client, 'ModelInfer', {
        model_name: 'digits',
        id: c.request.id ?? '',
        inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape }],
        raw_input_contents: [raw],
      });
      assert.equal(r.model_name, 'digits');
      assert.equal(r.model_version, '1');
      assert.equal(r.id, c.request.id ?? '');
      const rest = (await call(server.url, 'POST', '/v2/models/digits/infer', c.request, { authorization: `Bearer ${TOKEN}` })).json();
      assert.equal(r.outputs.length, 1);
      assert.equal(r.outputs[0].name, 'probabilities');
      assert.deepEqual(r.outputs[0].shape.map(Number), rest.outputs[0].shape);
      // REST writes each float32 as the shortest decimal that reads back as it: compared as float32, bit for bit.
      assert.deepEqual(f32(r.raw_output_contents[0]), Array.from(Float32Array.from(rest.outputs[0].data as number[])), `${c.requestFile}: gRPC and REST agree`);
      assertResponseMatches([{ ...rest.outputs[0] }], c.expected, `digits/${c.requestFile}`);
    }
  });

  it('ModelInfer with typed contents (FP32 in; INT64 and FP32 out) matches scikit-learn', async () => {
    for (const c of exampleCases('maintenance')) {
      const input = c.request.inputs[0];
      const r = await rpc(client, 'ModelInfer', {
        model_name: 'maintenance',
        inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape, contents: { fp32_contents: input.data } }],
        outputs: [{ name: 'label' }, { name: 'probabilities' }],
      });
      assert.deepEqual(r.outputs.map((o: { name: string }) => o.name), ['label', 'probabilities']);
      const label = new BigInt64Array(new Uint8Array(r.raw_output_contents[0]).buffer);
      assertResponseMatches(
        [
          { name: 'label', datatype: r.outputs[0].datatype, shape: r.outputs[0].shape.map(Number), data: label },
          { name: 'probabilities', datatype: r.outputs[1].datatype, shape: r.outputs[1].shape.map(Number), data: f32(r.raw_output_contents[1]) },
        ],
        c.expected,
        `maintenance/${c.requestFile}`,
      );
    }
  });

  it('reports errors as gRPC status codes with the same messages as REST', async () => {
    const codeOf = async (method: string, req: unknown, token?: string) => {
      try {
        await rpc(client, method, req, token);
      } catch (e) {
        return { code: (e as grpc.ServiceError).code, details: (e as grpc.ServiceError).details };
      }
      assert.fail(`${method} should have failed`);
    };
    const noModel = await codeOf('ModelInfer', { model_name: 'nope', inputs: [] });
    assert.equal(noModel.code, grpc.status.INVALID_ARGUMENT, noModel.details); // no inputs: refused before the lookup
    const notFound = await codeOf('ModelInfer', { model_name: 'nope', inputs: [{ name: 'image', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }] });
    assert.equal(notFound.code, grpc.status.NOT_FOUND);
    assert.match(notFound.details, /'nope'/);
    const shape = await codeOf('ModelInfer', { model_name: 'digits', inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 64], contents: { fp32_contents: new Array(64).fill(0) } }] });
    assert.equal(shape.code, grpc.status.INVALID_ARGUMENT);
    assert.match(shape.details, /shape \[1, 64\].*expects \[-1, 1, 8, 8\]/);
    const size = await codeOf('ModelInfer', { model_name: 'digits', inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 1, 8, 8] }], raw_input_contents: [Buffer.alloc(10)] });
    assert.equal(size.code, grpc.status.INVALID_ARGUMENT);
    assert.match(size.details, /binary_data_size is 10 bytes but shape \[1,1,8,8\] of FP32 needs 256/);
    const mixed = await codeOf('ModelInfer', { model_name: 'digits', inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 1, 8, 8], contents: { int_contents: [1] } }] });
    assert.match(mixed.details, /contents\.int_contents; use contents\.fp32_contents/);
    const unauth = await codeOf('ModelInfer', { model_name: 'digits' }, 'wrong');
    assert.equal(unauth.code, grpc.status.UNAUTHENTICATED);
    const noToken = await codeOf('ServerMetadata', {}, '');
    assert.equal(noToken.code, grpc.status.UNAUTHENTICATED);
    assert.match(noToken.details, /Authorization: Bearer/);
  });

  it('serves the repository and statistics extensions', async () => {
    const index = await rpc(client, 'RepositoryIndex', {});
    assert.deepEqual(index.models.map((m: { name: string; state: string }) => [m.name, m.state]), [
      ['digits', 'READY'],
      ['maintenance', 'READY'],
    ]);
    await rpc(client, 'RepositoryModelUnload', { model_name: 'maintenance' });
    assert.deepEqual((await rpc(client, 'RepositoryIndex', { ready: true })).models.map((m: { name: string }) => m.name), ['digits']);
    await rpc(client, 'RepositoryModelLoad', { model_name: 'maintenance' });
    assert.deepEqual(await rpc(client, 'ModelReady', { name: 'maintenance' }), { ready: true });
    const stats = await rpc(client, 'ModelStatistics', { name: 'digits' });
    assert.equal(stats.model_stats[0].name, 'digits');
    assert.ok(Number(stats.model_stats[0].inference_count) >= 11, 'the earlier gRPC and REST inferences are counted');
  });
});
