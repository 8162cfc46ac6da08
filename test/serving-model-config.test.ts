// Triton's model configuration extension over real REST and gRPC: GET /v2/models/{m}[/versions/{v}]/config and the
// ModelConfig RPC describe how each model is actually served (batching, shapes without the batch dimension,
// instances, queue, version policy), in model_config.proto's field names and numbers, and agree with each other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { RunningServer } from '../src/serve/index.ts';
import { PROTO_PATH } from '../src/serve/grpc/server.ts';
import { availableParallelism } from 'node:os';
import { MAIN_THREAD_MAX_US } from '../src/runtime/run-plan.ts';
import { call, exampleModel, serveWithGrpc, tempRepository } from './support/serving.ts';

type Client = grpc.Client & Record<string, (req: unknown, cb: (e: grpc.ServiceError | null, r: any) => void) => void>; // eslint-disable-line @typescript-eslint/no-explicit-any

const rpc = (client: Client, method: string, req: unknown): Promise<any> => // eslint-disable-line @typescript-eslint/no-explicit-any
  new Promise((resolve, reject) => client[method](req, (e, r) => (e ? reject(e) : resolve(r))));

/** proto-loader's object (int64 as strings, oneof names added) in the REST JSON form. */
function plain(x: unknown, key = ''): unknown {
  if (Array.isArray(x)) return x.map((v) => plain(v));
  if (x && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (k !== 'policy_choice' && k !== 'scheduling_choice') out[k] = plain(v, k);
    return out;
  }
  // A parameter's string_value is a string in both forms.
  return typeof x === 'string' && key !== 'string_value' && /^-?\d+$/.test(x) ? Number(x) : x;
}

it('the .proto declares ModelConfig at the field numbers of Triton model_config.proto', () => {
  const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
  const ids = (type: string, names: string[]) => names.map((n) => root.lookupType(`inference.${type}`).fields[n].id);
  assert.deepEqual(ids('ModelConfig', ['name', 'platform', 'version_policy', 'max_batch_size', 'input', 'output', 'instance_group', 'default_model_filename', 'dynamic_batching', 'parameters', 'backend']), [1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 17]);
  assert.deepEqual(ids('ModelParameter', ['string_value']), [1]);
  assert.deepEqual(ids('ModelInput', ['name', 'data_type', 'format', 'dims']), [1, 2, 3, 4]);
  assert.deepEqual(ids('ModelOutput', ['name', 'data_type', 'dims']), [1, 2, 3]);
  assert.deepEqual(ids('ModelDynamicBatching', ['preferred_batch_size', 'max_queue_delay_microseconds', 'default_queue_policy']), [1, 2, 6]);
  assert.deepEqual(ids('ModelQueuePolicy', ['timeout_action', 'default_timeout_microseconds', 'allow_timeout_override', 'max_queue_size']), [1, 2, 3, 4]);
  assert.deepEqual(ids('ModelInstanceGroup', ['name', 'count', 'kind']), [1, 2, 4]);
  assert.deepEqual(ids('ModelVersionPolicy', ['latest', 'all', 'specific']), [1, 2, 3]);
  assert.deepEqual(ids('ModelConfigRequest', ['name', 'version']), [1, 2]);
  assert.deepEqual(ids('ModelConfigResponse', ['config']), [1]);
  const types = root.lookupEnum('inference.DataType').values;
  assert.deepEqual([types.TYPE_BOOL, types.TYPE_INT64, types.TYPE_FP32, types.TYPE_STRING], [1, 9, 11, 13]);
  assert.equal(root.lookupService('inference.GRPCInferenceService').methods.ModelConfig.requestType, 'ModelConfigRequest');
});

describe('model configuration extension', () => {
  const repo = tempRepository();
  let server: RunningServer;
  let client: Client;
  before(async () => {
    repo.add('mlp', '1');
    repo.add('mlp', '2');
    repo.config('mlp', {
      dynamic_batching: { max_batch_size: 32, max_queue_delay_ms: 1.5, preferred_batch_size: [8, 16] },
      version_policy: { latest: 1 },
      instance_count: 2,
      max_queue_size: 100,
      request_timeout_ms: 5000,
    });
    repo.add('digits', '1');
    repo.config('digits', { dynamic_batching: { max_batch_size: 1 } });
    // No config at all: every choice is the server's own (run-plan.ts).
    repo.add('auto', '1', exampleModel('mlp'));
    ({ server, client } = await serveWithGrpc<Client>({ model: repo.root }));
  });
  after(async () => {
    client?.close();
    await server?.close();
    repo.remove();
  });

  const mlpConfig = {
    name: 'mlp',
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    max_batch_size: 32,
    input: [{ name: 'input', data_type: 'TYPE_FP32', format: 'FORMAT_NONE', dims: [784] }],
    output: [{ name: 'probabilities', data_type: 'TYPE_FP32', dims: [10] }],
    instance_group: [{ name: 'mlp_0', kind: 'KIND_CPU', count: 2 }],
    default_model_filename: 'model.onnx',
    version_policy: { latest: { num_versions: 1 } },
    dynamic_batching: {
      preferred_batch_size: [8, 16],
      max_queue_delay_microseconds: 1500,
      default_queue_policy: { timeout_action: 'REJECT', default_timeout_microseconds: 5_000_000, allow_timeout_override: false, max_queue_size: 100 },
    },
  };

  it('REST: a batched model reports its batcher, instances, queue and policy, with dims that leave out the batch dimension', async () => {
    const meta = (await call(server.url, 'GET', '/v2')).json() as { extensions: string[] };
    assert.ok(meta.extensions.includes('model_configuration'));
    const r = await call(server.url, 'GET', '/v2/models/mlp/config');
    assert.equal(r.status, 200);
    const { parameters, ...rest } = r.json() as { parameters: Record<string, { string_value: string }> };
    assert.deepEqual(rest, mlpConfig);
    // Two instances run in parallel, so on worker threads, with the cores split between them.
    assert.equal(parameters.execution_thread.string_value, 'worker');
    assert.match(parameters.execution_thread_reason.string_value, /2 instances/);
    assert.equal(parameters.intra_op_thread_count.string_value, String(Math.max(1, Math.floor(availableParallelism() / 2))));
    assert.equal(parameters.dynamic_batching_source.string_value, 'configured');
    // The metadata says the same shapes with the batch dimension in front.
    const md = (await call(server.url, 'GET', '/v2/models/mlp')).json() as { inputs: { shape: number[] }[] };
    assert.deepEqual(md.inputs[0].shape, [-1, ...mlpConfig.input[0].dims]);
    assert.deepEqual({ ...((await call(server.url, 'GET', '/v2/models/mlp/versions/2/config')).json() as object), parameters: undefined }, { ...mlpConfig, parameters: undefined });
  });

  it('REST: a model with no config gets automatic choices, each reported in parameters', async () => {
    const c = (await call(server.url, 'GET', '/v2/models/auto/config')).json() as {
      max_batch_size: number;
      dynamic_batching?: { max_queue_delay_microseconds: number };
      parameters: Record<string, { string_value: string }>;
    };
    const p = Object.fromEntries(Object.entries(c.parameters).map(([k, v]) => [k, v.string_value]));
    // Batching is on without a flag, with no added delay; its size comes from a timed run at load.
    assert.ok(c.max_batch_size > 1 && c.max_batch_size <= 64, `max_batch_size ${c.max_batch_size}`);
    assert.equal(c.dynamic_batching?.max_queue_delay_microseconds, 0);
    assert.equal(p.dynamic_batching_source, 'auto');
    assert.ok(Number(p.batch1_compute_us) > 0);
    assert.ok(Number(p.memory_bytes) >= 0);
    // The thread follows the measurement, and the reason says so.
    assert.ok(['main', 'worker'].includes(p.execution_thread));
    if (Number(p.batch1_compute_us) < MAIN_THREAD_MAX_US) assert.match(p.execution_thread_reason, /^auto: a batch-1 run takes \d+ µs, less than/);
    assert.equal(p.intra_op_thread_count, p.execution_thread === 'main' ? '1' : String(availableParallelism()));
  });

  it('REST: an unbatched model has max_batch_size 0, its full shapes, one instance and no dynamic_batching', async () => {
    const c = (await call(server.url, 'GET', '/v2/models/digits/config')).json() as Record<string, unknown>;
    assert.equal(c.max_batch_size, 0);
    assert.deepEqual(c.input, [{ name: 'image', data_type: 'TYPE_FP32', format: 'FORMAT_NONE', dims: [-1, 1, 8, 8] }]);
    assert.deepEqual(c.output, [{ name: 'probabilities', data_type: 'TYPE_FP32', dims: [-1, 10] }]);
    assert.deepEqual(c.instance_group, [{ name: 'digits_0', kind: 'KIND_CPU', count: 1 }]);
    assert.equal(c.dynamic_batching, undefined);
    assert.equal((c.parameters as Record<string, { string_value: string }>).dynamic_batching_source.string_value, 'off');
    assert.deepEqual(c.version_policy, { all: {} });
  });

  it('REST: unknown model or version → 404, wrong method → 405, each with the error body', async () => {
    const missing = await call(server.url, 'GET', '/v2/models/nope/config');
    assert.equal(missing.status, 404);
    assert.match((missing.json() as { error: string }).error, /nope/);
    const version = await call(server.url, 'GET', '/v2/models/mlp/versions/9/config');
    assert.equal(version.status, 404);
    assert.match((version.json() as { error: string }).error, /9/);
    const post = await call(server.url, 'POST', '/v2/models/mlp/config', {});
    assert.equal(post.status, 405);
    assert.match((post.json() as { error: string }).error, /GET/);
  });

  it('gRPC ModelConfig returns what REST returns; an unknown model is NOT_FOUND', async () => {
    for (const [name, version] of [['mlp', ''], ['mlp', '2'], ['digits', ''], ['auto', '']]) {
      const g = await rpc(client, 'ModelConfig', { name, version });
      const rest = (await call(server.url, 'GET', `/v2/models/${name}${version ? `/versions/${version}` : ''}/config`)).json();
      assert.deepEqual(plain(g.config), rest, `${name} ${version}`);
    }
    await assert.rejects(rpc(client, 'ModelConfig', { name: 'nope' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND && /nope/.test(e.details));
  });
});
