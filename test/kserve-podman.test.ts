// The KServe runtime run for real: `dais build --target kserve` writes the runtime image (no model inside), a
// modelcar (only the model, under /models) and the manifests; podman loads both images, mounts the modelcar's
// filesystem (`podman image mount`) and serves it to the generated Deployment at /mnt/models through a hostPath
// volume, and `podman kube play` runs that Deployment. The server in it answers the digits examples with
// scikit-learn's predictions over REST and gRPC (ServerReady, ModelReady, ModelInfer), under the name
// --model_name gave it. Pods and images are removed afterwards.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parse, stringify } from 'yaml';
import { loadInferenceService } from '../src/serve/grpc/server.ts';
import type { KServeBuildReport } from '../src/cli/build-kserve.ts';
import { assertResponseMatches, exampleCases } from './support/examples.ts';
import { EXAMPLES_DIR, REPO_ROOT, requireRoot, requireTool } from './support/env.ts';
import { waitForReady } from './container-support.ts';

const DAIS = join(REPO_ROOT, 'bin', 'dais.js');
// Ports of this suite's range, bound on loopback only.
const HTTP_PORT = 18431;
const GRPC_PORT = 18432;
const POD = `dais-kserve-test-${process.pid}`;

function run(cmd: string, args: string[], timeout = 300_000) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout });
  return { status: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

type Client = grpc.Client & Record<string, (req: unknown, cb: (e: grpc.ServiceError | null, r: any) => void) => void>; // eslint-disable-line @typescript-eslint/no-explicit-any
const rpc = (c: Client, method: string, req: unknown) => new Promise<any>((res, rej) => c[method](req, (e, r) => (e ? rej(e) : res(r)))); // eslint-disable-line @typescript-eslint/no-explicit-any

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
});
