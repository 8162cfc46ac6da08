// The KServe runtime run for real: `dais build --target kserve` writes the runtime image (no model inside), a
// modelcar (only the model, under /models) and the manifests; podman loads both images, mounts the modelcar's
// filesystem (`podman image mount`) and serves it to the generated Deployment at /mnt/models through a hostPath
// volume, and `podman kube play` runs that Deployment. The server in it answers the digits examples with
// scikit-learn's predictions over REST and gRPC (ServerReady, ModelReady, ModelInfer), under the name
// --model_name gave it, and answers grpc.health.v1.Health/Check (what a Kubernetes gRPC probe calls) with SERVING.
// The same runtime image also serves a real Keras .h5 (../shared/models/keras-mnist) placed at /mnt/models as
// KServe's storage initializer would, with Keras's own predictions, and a model that declares preprocess.image (the
// runtime image ships sharp for any such model) answering a JPEG with torch's logits. Pods, containers and images are removed afterwards.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { parse, stringify } from 'yaml';
import { loadInferenceService } from '../src/serve/grpc/server.ts';
import type { KServeBuildReport } from '../src/cli/build-kserve.ts';
import { assertResponseMatches, exampleCases } from './support/examples.ts';
import { EXAMPLES_DIR, REPO_ROOT, requireRoot, requireShared, requireTool } from './support/env.ts';
import { assertClose } from './fixtures/keras/assert-close.ts';
import { waitForReady } from './container-support.ts';
import { expected as processingExpected, fixture, IMAGE_CONFIG, PROCESSING_FIXTURES } from './support/processing.ts';

const DAIS = join(REPO_ROOT, 'bin', 'dais.js');
// Ports of this suite's range, bound on loopback only.
const HTTP_PORT = 18801;
const GRPC_PORT = 18802;
const KERAS_PORT = 18803;
const POD = `dais-kserve-test-${process.pid}`;
const KERAS_CONTAINER = `dais-kserve-keras-test-${process.pid}`;
const IMAGE_PORT = 19301;
const IMAGE_CONTAINER = `dais-kserve-image-test-${process.pid}`;

function run(cmd: string, args: string[], timeout = 300_000) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout });
  return { status: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

type Client = grpc.Client & Record<string, (req: unknown, cb: (e: grpc.ServiceError | null, r: any) => void) => void>; // eslint-disable-line @typescript-eslint/no-explicit-any
const rpc = (c: Client, method: string, req: unknown) => new Promise<any>((res, rej) => c[method](req, (e, r) => (e ? rej(e) : res(r)))); // eslint-disable-line @typescript-eslint/no-explicit-any

// The gRPC health protocol as a client knows it (grpc.health.v1, field numbers from its published health.proto),
// written here so the test does not take the server's own copy on trust.
const HEALTH_PROTO = `syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
`;

function healthClient(dir: string, address: string): Client {
  const file = join(dir, 'health.proto');
  writeFileSync(file, HEALTH_PROTO);
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(file, { keepCase: true, enums: String, defaults: true })) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as unknown as Client;
}

describe('KServe runtime under podman kube play', { timeout: 600_000 }, () => {
  let dir: string;
  let report: KServeBuildReport;
  let ready = false;
  let playFile = '';
  let modelcarRef = '';
  let runtimeRef = '';

  before(async (t) => {
    if (!requireTool(t as never, 'podman', 'podman catatonit') || !requireTool(t as never, 'catatonit', 'catatonit') || !requireRoot(t as never)) return;
    dir = mkdtempSync(join(tmpdir(), 'dais-kserve-'));
    const b = run(process.execPath, [DAIS, 'build', join(EXAMPLES_DIR, 'digits'), '--target', 'kserve', '--name', 'kserve-digits', '--out', join(dir, 'out'), '--image', join(dir, 'runtime.tar'), '--modelcar', join(dir, 'modelcar.tar'), '--tag', `dais-kserve-test:${process.pid}`, '--modelcar-tag', `dais-digits-modelcar-test:${process.pid}`, '--json']);
    assert.equal(b.status, 0, b.err);
    report = JSON.parse(b.out) as KServeBuildReport;
    for (const tar of ['runtime.tar', 'modelcar.tar']) {
      const l = run('podman', ['load', '-i', join(dir, tar)]);
      assert.equal(l.status, 0, l.err);
    }
    runtimeRef = `localhost/dais-kserve-test:${process.pid}`;
    modelcarRef = `localhost/dais-digits-modelcar-test:${process.pid}`;
    const m = run('podman', ['image', 'mount', modelcarRef]);
    assert.equal(m.status, 0, m.err);
    const modelsDir = join(m.out.trim(), 'models');
    assert.ok(existsSync(join(modelsDir, 'digits', '1', 'model.onnx')), `the modelcar holds models/digits/1/model.onnx (${modelsDir})`);

    // The generated Deployment, as written, with what a single host needs instead of a cluster: a pod name of its
    // own, the modelcar's files as the models volume, and host ports on loopback (podman 4.3 has no --publish).
    const dep = parse(readFileSync(join(dir, 'out', 'kserve', 'deployment.yaml'), 'utf8'));
    dep.metadata.name = POD;
    const spec = dep.spec.template.spec;
    spec.volumes = [{ name: 'models', hostPath: { path: modelsDir, type: 'Directory' } }];
    const c = spec.containers[0];
    c.image = runtimeRef;
    for (const p of c.ports) {
      p.hostPort = p.name === 'h2c' ? GRPC_PORT : HTTP_PORT;
      p.hostIP = '127.0.0.1';
    }
    c.args = c.args.map((a: string) => a.replace(/^--grpc-port=.*/, `--grpc-port=${GRPC_PORT}`).replace(/^--port=.*/, `--port=${HTTP_PORT}`));
    c.env = c.env.map((e: { name: string; value: string }) => (e.name === 'PORT' ? { ...e, value: String(HTTP_PORT) } : e));
    c.ports = c.ports.map((p: { containerPort: number; name: string }) => ({ ...p, containerPort: p.name === 'h2c' ? GRPC_PORT : HTTP_PORT }));
    playFile = join(dir, 'play.yaml');
    writeFileSync(playFile, stringify(dep));
    const play = run('podman', ['kube', 'play', playFile]);
    assert.equal(play.status, 0, `${play.out}\n${play.err}`);
    try {
      await waitForReady(`http://127.0.0.1:${HTTP_PORT}/v2/health/ready`, 120_000);
    } catch (e) {
      const logs = run('podman', ['pod', 'logs', `${POD}-pod`]);
      throw new Error(`${(e as Error).message}\n${logs.out}\n${logs.err}`);
    }
    ready = true;
  });

  after(() => {
    run('podman', ['rm', '-f', KERAS_CONTAINER]);
    run('podman', ['rm', '-f', IMAGE_CONTAINER]);
    if (playFile) run('podman', ['kube', 'down', playFile]);
    run('podman', ['pod', 'rm', '-f', `${POD}-pod`]);
    if (modelcarRef) run('podman', ['image', 'unmount', modelcarRef]);
    for (const ref of [runtimeRef, modelcarRef]) if (ref) run('podman', ['rmi', '-f', ref]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the runtime image holds no model; the modelcar holds only the model', () => {
    if (!ready) return;
    assert.ok(report.image && report.modelcar);
    assert.ok(report.image.layers.every((l) => !/digits/.test(l.createdBy)), 'no model layer in the runtime image');
    assert.equal(report.modelcar.layers.length, 1);
    assert.match(report.modelcar.layers[0].createdBy, /\/models \(digits\)/);
    assert.ok(report.image.layers.some((l) => /\/app\/node_modules \(onnxruntime-node, sharp \d+\.\d+\.\d+, linux\/amd64 binaries only\)/.test(l.createdBy)), 'sharp ships for image models arriving at run time');
  });

  it('answers REST under the --model_name it was given, with scikit-learn\'s predictions', async () => {
    if (!ready) return;
    const base = `http://127.0.0.1:${HTTP_PORT}`;
    const md = await (await fetch(`${base}/v2/models/kserve-digits`)).json();
    assert.equal(md.name, 'kserve-digits');
    for (const c of exampleCases('digits')) {
      const r = await fetch(`${base}/v2/models/kserve-digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(c.request) });
      const text = await r.text();
      assert.equal(r.status, 200, text);
      assertResponseMatches(JSON.parse(text).outputs, c.expected, `REST ${c.requestFile}`);
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /dais_startup_phase_seconds\{phase="warmup"\}/);
    assert.match(metrics, /dais_inference_queue_duration_seconds_sum\{model="kserve-digits"/);
  });

  it('answers grpc.health.v1.Health/Check on the h2c port: SERVING for the server and the inference service', async (t) => {
    if (!ready) return;
    const client = healthClient(dir, `127.0.0.1:${GRPC_PORT}`);
    try {
      let whole;
      try {
        whole = await rpc(client, 'Check', { service: '' });
      } catch (e) {
        // Only a server that predates the health service may pass here; every other failure fails the test.
        if ((e as grpc.ServiceError).code !== grpc.status.UNIMPLEMENTED) throw e;
        t.skip('this server has no grpc.health.v1.Health yet (UNIMPLEMENTED): it arrives with the triton branch');
        return;
      }
      assert.equal(whole.status, 'SERVING');
      assert.equal((await rpc(client, 'Check', { service: 'inference.GRPCInferenceService' })).status, 'SERVING');
    } finally {
      client.close();
    }
  });

  it('answers gRPC on the h2c port: ServerReady, ModelReady, ModelInfer', async () => {
    if (!ready) return;
    const Service = loadInferenceService();
    const client = new Service(`127.0.0.1:${GRPC_PORT}`, grpc.credentials.createInsecure()) as unknown as Client;
    try {
      assert.equal((await rpc(client, 'ServerReady', {})).ready, true);
      assert.equal((await rpc(client, 'ModelReady', { name: 'kserve-digits' })).ready, true);
      for (const c of exampleCases('digits')) {
        const input = c.request.inputs[0];
        const r = await rpc(client, 'ModelInfer', { model_name: 'kserve-digits', inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape }], raw_input_contents: [Buffer.from(new Float32Array(input.data as number[]).buffer)] });
        const outputs = r.outputs.map((o: { name: string; datatype: string; shape: string[] }, i: number) => {
          const raw = r.raw_output_contents[i] as Buffer;
          return { name: o.name, datatype: o.datatype, shape: o.shape.map(Number), data: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) };
        });
        assertResponseMatches(outputs, c.expected, `gRPC ${c.requestFile}`);
      }
    } finally {
      client.close();
    }
  });

  it('serves a Keras .h5 that KServe put at /mnt/models, with Keras\'s own predictions', async (t) => {
    if (!ready) return;
    const shared = requireShared(t, 'models/keras-mnist');
    if (!shared) return;
    // The file alone, as the storage initializer leaves a single-file storageUri; the host network and a loopback
    // address stand in for the pod's network (the runtime's entry reads /mnt/models, like in the cluster).
    const r = run('podman', ['run', '-d', '--name', KERAS_CONTAINER, '--network', 'host', '-v', `${join(shared, 'simple_dense_28x28.h5')}:/mnt/models/model.h5:ro`, runtimeRef, '--model_name=mnist', `--port=${KERAS_PORT}`, '--host=127.0.0.1']);
    assert.equal(r.status, 0, r.err);
    const base = `http://127.0.0.1:${KERAS_PORT}`;
    try {
      await waitForReady(`${base}/v2/health/ready`, 120_000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${run('podman', ['logs', KERAS_CONTAINER]).err}`);
    }
    const expected = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'keras', 'simple_dense_28x28.expected.json'), 'utf8'));
    const body = { inputs: [{ name: expected.input.name, shape: expected.input.shape, datatype: 'FP32', data: expected.input.data }] };
    const res = await fetch(`${base}/v2/models/mnist/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const out = JSON.parse(text).outputs[0];
    assert.deepEqual(out.shape, expected.output.shape);
    assertClose(out.data, expected.output.data, 'Keras .h5 served by the runtime image');
    assert.match(run('podman', ['logs', KERAS_CONTAINER]).err, /converted from Keras 2\.0\.4/);
  });
  it('serves a model that declares preprocess.image, put at /mnt/models: a JPEG and a PNG give torch\'s logits', async () => {
    if (!ready) return;
    // The processing fixture's image model with its config.yaml and labels, as a storageUri folder would hold it.
    const model = join(dir, 'image-model');
    cpSync(join(PROCESSING_FIXTURES, 'image'), model, { recursive: true });
    writeFileSync(join(model, 'config.yaml'), IMAGE_CONFIG);
    const r = run('podman', ['run', '-d', '--name', IMAGE_CONTAINER, '--network', 'host', '-v', `${model}:/mnt/models:ro`, runtimeRef, '--model_name=image', `--port=${IMAGE_PORT}`, '--host=127.0.0.1']);
    assert.equal(r.status, 0, r.err);
    const base = `http://127.0.0.1:${IMAGE_PORT}`;
    try {
      await waitForReady(`${base}/v2/health/ready`, 120_000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${run('podman', ['logs', IMAGE_CONTAINER]).err}`);
    }
    for (const [file, type] of [['photo.jpg', 'image/jpeg'], ['photo.png', 'image/png']]) {
      const res = await fetch(`${base}/v2/models/image/infer`, { method: 'POST', headers: { 'content-type': type }, body: fixture(file) as BodyInit });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      const got = JSON.parse(text).outputs[0].data as string[];
      const ref = processingExpected().image[file].logits;
      const order = ref.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, i]) => i);
      assert.deepEqual(got.map((c) => Number(c.split(':')[1])), order, `${file}: top 3 classes as torch's`);
      got.forEach((c, k) => assert.ok(Math.abs(Number(c.split(':')[0]) - ref[order[k]]) < 0.02, `${file}: ${c} vs torch ${ref[order[k]]}`));
    }
  });
});
