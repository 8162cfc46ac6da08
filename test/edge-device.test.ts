// The device bundle, run for real: `examples/` is built for linux-x64, copied out of the repository into a clean
// temporary folder (no node_modules of ours above it), started with plain node, and must answer v2 requests with
// the framework's predictions for every example. Also: only one platform's binary ships, install.sh installs a
// systemd unit that systemd accepts, predict works, and an arm64 bundle refuses to install on this machine.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, parse } from 'node:path';
import { decodeInferResponse, encodeInferRequest, requestFromJson } from '../src/core/index.ts';
import { buildEdge } from '../src/targets/edge/build.ts';
import type { DeviceBuildReport } from '../src/targets/edge/device-bundle.ts';
import { formatBytes } from '../src/targets/edge/files.ts';
import { assertMatchesExpected, examples, type JsonOutput } from './edge-support.ts';
import { EXAMPLES_DIR, REPO_ROOT, requireTool } from './support/env.ts';

/** An environment in which nothing of this repository can be found by node. */
function cleanEnv(): NodeJS.ProcessEnv {
  const { NODE_PATH: _p, NODE_OPTIONS: _o, ...rest } = process.env;
  return rest;
}

function ancestorsHaveNodeModules(dir: string): string | undefined {
  for (let d = dirname(dir); d !== parse(d).root; d = dirname(d)) if (existsSync(join(d, 'node_modules'))) return join(d, 'node_modules');
  return existsSync('/node_modules') ? '/node_modules' : undefined;
}

function startServer(dir: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dais-edge.mjs', 'serve', '--port', '0'], { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s: ${out}${err}`)), 30_000);
    child.stderr!.on('data', (c: Buffer) => (err += c));
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

test('device bundle (linux-x64) from a clean directory', async (t: TestContext) => {
  const work = mkdtempSync(join(tmpdir(), 'dais-edge-device-'));
  let server: ChildProcess | undefined;
  try {
    const out = join(work, 'build');
    const { build } = await buildEdge(EXAMPLES_DIR, { platform: 'linux-x64', out, port: 8080 });
    const b = build as DeviceBuildReport;
    const exs = examples();
    // Every example with a network: the tensor-form ones (checked below) and text-classifier (text through its steps).
    assert.deepEqual(b.models.map((m) => m.name).sort(), [...exs.map((e) => e.name), 'text-classifier'].sort());
    t.diagnostic(`linux-x64 bundle: ${formatBytes(b.totalBytes)} (onnxruntime ${formatBytes(b.runtimeBytes)}, models ${formatBytes(b.modelBytes)}, server ${formatBytes(b.serverBytes)})`);

    await t.test('ships production runtime files only, for one platform', () => {
      assert.deepEqual(readdirSync(join(out, 'node_modules')).sort(), ['onnxruntime-common', 'onnxruntime-node']);
      const bin = join(out, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
      assert.deepEqual(readdirSync(bin), ['linux']);
      assert.deepEqual(readdirSync(join(bin, 'linux')), ['x64']);
      const manifest = JSON.parse(readFileSync(join(out, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8'));
      assert.equal(manifest.scripts, undefined, 'no install script that would download more binaries');
      assert.ok(b.totalBytes < 60 * 1024 * 1024, `bundle is ${formatBytes(b.totalBytes)}`);
    });

    // Copied out of the build folder into a fresh one: nothing of the repository is reachable from it.
    const clean = join(work, 'device');
    cpSync(out, clean, { recursive: true });
    assert.ok(!clean.startsWith(REPO_ROOT));
    assert.equal(ancestorsHaveNodeModules(clean), undefined, 'no node_modules above the clean directory');

    await t.test('the server answers v2 requests with the framework\'s predictions for every example', async () => {
      const started = await startServer(clean);
      server = started.child;
      const { url } = started;
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
      const meta = (await (await fetch(`${url}/v2`)).json()) as { extensions: string[] };
      assert.ok(meta.extensions.includes('binary_tensor_data'));
      for (const ex of exs) {
        const md = (await (await fetch(`${url}/v2/models/${ex.name}`)).json()) as { name: string; inputs: unknown[] };
        assert.equal(md.name, ex.name);
        for (const r of ex.requests) {
          const res = await fetch(`${url}/v2/models/${ex.name}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.body) });
          assert.equal(res.status, 200, `${ex.name}/${r.file}`);
          const body = (await res.json()) as { outputs: JsonOutput[]; id?: string; model_name: string };
          assert.equal(body.model_name, ex.name);
          assert.equal(body.id, r.body.id);
          assertMatchesExpected(body.outputs, r.expected, `device ${ex.name}/${r.file}`);
        }
      }
      // Binary tensors (Triton's extension) both ways.
      const ex = exs[0];
      const r = ex.requests[0];
      const request = requestFromJson({ ...r.body, parameters: { binary_data_output: true } });
      const enc = encodeInferRequest(request, () => true);
      const res = await fetch(`${url}/v2/models/${ex.name}/infer`, {
        method: 'POST',
        headers: { 'content-type': enc.contentType, 'inference-header-content-length': String(enc.headerLength) },
        body: enc.body as BodyInit,
      });
      assert.equal(res.status, 200);
      const decoded = decodeInferResponse(new Uint8Array(await res.arrayBuffer()), Number(res.headers.get('inference-header-content-length')));
      const { toJsonData } = await import('../src/core/index.ts');
      assertMatchesExpected(decoded.outputs.map((o) => ({ ...o, data: toJsonData(o) })), r.expected, `device binary ${ex.name}/${r.file}`);
      // Bad input: the REST API's error, naming the field.
      const bad = await fetch(`${url}/v2/models/${ex.name}/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'nope', shape: [1], datatype: 'FP32', data: [1] }] }) });
      assert.equal(bad.status, 400);
      const err = (await bad.json()) as { error: string; code: string };
      assert.equal(err.code, 'UNKNOWN_INPUT');
      assert.match(err.error, /input 'nope' is not an input/);
      assert.equal((await fetch(`${url}/v2/models/absent`)).status, 404);
    });
    server?.kill('SIGTERM');

    await t.test('predict runs one request from a file and from stdin', () => {
      const ex = exs[0];
      const r = ex.requests[0];
      const file = join(clean, 'requests', ex.name, r.file);
      const viaFile = spawnSync(process.execPath, ['dais-edge.mjs', 'predict', ex.name, file], { cwd: clean, env: cleanEnv(), encoding: 'utf8' });
      assert.equal(viaFile.status, 0, viaFile.stderr);
      assertMatchesExpected(JSON.parse(viaFile.stdout).outputs, r.expected, `predict ${ex.name}/${r.file}`);
      const viaStdin = spawnSync(process.execPath, ['dais-edge.mjs', 'predict', ex.name, '-'], { cwd: clean, env: cleanEnv(), input: JSON.stringify(r.body), encoding: 'utf8' });
      assert.equal(viaStdin.status, 0, viaStdin.stderr);
      assert.deepEqual(JSON.parse(viaStdin.stdout), JSON.parse(viaFile.stdout));
      const bad = spawnSync(process.execPath, ['dais-edge.mjs', 'predict', ex.name, '-'], { cwd: clean, env: cleanEnv(), input: '{"inputs": 3}', encoding: 'utf8' });
      assert.equal(bad.status, 1);
      assert.deepEqual(JSON.parse(bad.stderr), { error: 'request must have a non-empty "inputs" array', code: 'INVALID_REQUEST' });
      const missing = spawnSync(process.execPath, ['dais-edge.mjs', 'predict', 'absent', file], { cwd: clean, env: cleanEnv(), encoding: 'utf8' });
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /^dais-edge: model 'absent' is not in .*; models: /);
    });

    await t.test('install.sh installs the bundle and a systemd unit with its paths filled in', (t) => {
      const prefix = join(work, 'opt');
      const units = join(work, 'units');
      const r = spawnSync('sh', [join(clean, 'install.sh'), '--prefix', prefix, '--unit-dir', units, '--no-start'], { env: cleanEnv(), encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const unitFile = join(units, `${b.unit}.service`);
      const unit = readFileSync(unitFile, 'utf8');
      assert.match(unit, new RegExp(`^ExecStart=${process.execPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ${prefix}/dais-edge.mjs serve --host 127.0.0.1 --port 8080$`, 'm'));
      assert.doesNotMatch(unit, /@PREFIX@|@NODE@/);
      const ex = exs[0];
      const p = spawnSync(process.execPath, [join(prefix, 'dais-edge.mjs'), 'predict', ex.name, join(prefix, 'requests', ex.name, ex.requests[0].file)], { env: cleanEnv(), encoding: 'utf8' });
      assert.equal(p.status, 0, p.stderr);
      if (requireTool(t, 'systemd-analyze', 'systemd')) {
        const v = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' });
        assert.equal(v.status, 0, `systemd-analyze verify: ${v.stderr}`);
      }
    });
  } finally {
    server?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
});

test('device bundle (linux-arm64): only the arm64 binary, and it refuses to install on another machine', async (t: TestContext) => {
  const work = mkdtempSync(join(tmpdir(), 'dais-edge-arm64-'));
  try {
    const ex = examples()[0];
    const { build } = await buildEdge(ex.model, { platform: 'linux-arm64', out: work, port: 9000, host: '0.0.0.0', maxMemoryMb: 4096 });
    const b = build as DeviceBuildReport;
    assert.deepEqual(readdirSync(join(work, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux')), ['arm64']);
    const unit = readFileSync(join(work, `${b.unit}.service`), 'utf8');
    assert.match(unit, /serve --host 0\.0\.0\.0 --port 9000$/m);
    assert.match(unit, /^MemoryMax=4096M$/m);
    if (process.arch !== 'arm64') {
      const r = spawnSync('sh', [join(work, 'install.sh'), '--prefix', join(work, 'opt'), '--unit-dir', join(work, 'units'), '--no-start'], { encoding: 'utf8' });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /this bundle is for linux-arm64 but this machine is Linux x86_64; build one with: dais build <model> --target edge --platform linux-x64/);
      assert.ok(!existsSync(join(work, 'opt')), 'nothing copied');
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
