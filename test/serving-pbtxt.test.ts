// Triton's config.pbtxt in a repository: the fields dais does the same thing for are honoured (batching,
// instances, version policy, input constraints); any other field refuses the model by name, pointing at config.yaml.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { parsePbtxt, tritonConfigToRaw } from '../src/layout/pbtxt.ts';
import { call, exampleRequest, tempRepository } from './support/serving.ts';

const TRITON_MLP = `
# as Triton's docs write them
name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 32
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 784 ]
  }
]
output [ { name: "probabilities", data_type: TYPE_FP32, dims: [ 10 ] } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
version_policy: { latest: { num_versions: 1 } }
dynamic_batching {
  preferred_batch_size: [ 8, 16 ]
  max_queue_delay_microseconds: 1500
}
`;

test('parsePbtxt reads protobuf text: messages with and without colons, lists, enums, comments, repeated fields', () => {
  assert.deepEqual(parsePbtxt('a: 1 b { c: "x" d: [1, 2.5] } e: KIND_CPU\n# note\ne: true f < g: -3 >; h: \'y\''), {
    a: [1],
    b: [{ c: ['x'], d: [1, 2.5] }],
    e: ['KIND_CPU', true],
    f: [{ g: [-3] }],
    h: ['y'],
  });
  assert.throws(() => parsePbtxt('a { b: 1'), /line 1: a field name was expected/);
  assert.throws(() => parsePbtxt('a: 1\nb 2'), /line 2: ':' expected after 'b'/);
});

test('tritonConfigToRaw: every field dais cannot honour is named, with config.yaml as the way out', () => {
  const { problems } = tritonConfigToRaw('name: "m"\nmax_batch_size: 4\nsequence_batching { }\ndynamic_batching { priority_levels: 2 }\ninstance_group [ { kind: KIND_GPU } ]\noptimization { }', 'm');
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.match(problems.join('\n'), /'sequence_batching' is not something dais does: .*config\.yaml/);
  assert.match(problems.join('\n'), /'optimization' is not something dais does/);
  assert.match(problems.join('\n'), /'dynamic_batching\.priority_levels' is not something dais does/);
  assert.match(problems.join('\n'), /'instance_group\[0\]\.kind' is KIND_GPU: dais runs models on the CPU/);
  assert.match(tritonConfigToRaw('name: "other"', 'm').problems[0], /'name' is "other" but the model's folder is 'm'/);
});

describe('a repository with config.pbtxt', () => {
  const repo = tempRepository();
  let server: RunningServer;
  before(async () => {
    repo.add('mlp', '1');
    repo.add('mlp', '2');
    writeFileSync(join(repo.root, 'mlp', 'config.pbtxt'), TRITON_MLP);
    server = await serve({ model: repo.root, port: 0 });
  });
  after(async () => {
    await server?.close();
    repo.remove();
  });

  it('is honoured: batching, two instances, the latest version only, as /config reports', async () => {
    const c = (await call(server.url, 'GET', '/v2/models/mlp/config')).json() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(c.max_batch_size, 32);
    assert.deepEqual(c.instance_group, [{ name: 'mlp_0', kind: 'KIND_CPU', count: 2 }]);
    assert.deepEqual(c.version_policy, { latest: { num_versions: 1 } });
    assert.deepEqual(c.dynamic_batching.preferred_batch_size, [8, 16]);
    assert.equal(c.dynamic_batching.max_queue_delay_microseconds, 1500);
    assert.equal((await call(server.url, 'GET', '/v2/models/mlp/versions/1/ready')).status, 404);
    assert.equal((await call(server.url, 'POST', '/v2/models/mlp/infer', exampleRequest('mlp'))).status, 200);
  });
});

test('a config.pbtxt with a field dais does not do refuses the model at start, by name, instead of serving it without', async () => {
  const repo = tempRepository();
  try {
    repo.add('digits', '1');
    writeFileSync(join(repo.root, 'digits', 'config.pbtxt'), 'name: "digits"\nsequence_batching { }\n');
    await assert.rejects(serve({ model: repo.root, port: 0 }), /digits\/config\.pbtxt: 'sequence_batching' is not something dais does: .*config\.yaml/);
  } finally {
    repo.remove();
  }
});
