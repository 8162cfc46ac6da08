// The container target's build context: the generated Dockerfile and .dockerignore compared whole with
// expected files (test/fixtures/container/; DAIS_UPDATE_GOLDEN=1 rewrites them), the lock cut out of dais'
// own, and the Dockerfile's dependency stage and entry run for real without Docker: `npm ci` of the context,
// its onnxruntime prune script under sh, then the bundled server on loopback answering the examples.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Script } from 'node:vm';
import { join } from 'node:path';
import {
  DEFAULT_NODE_IMAGE,
  DOCKERFILE_STEPS,
  NPM_CI_ARGS,
  checkSharpScript,
  generateDockerfile,
  generateDockerignore,
  pruneOnnxruntimeScript,
  type DockerfileOptions,
} from '../src/targets/container/dockerfile.ts';
import { contextPackage, resolveLockPath, type PackageLock } from '../src/targets/container/lockfile.ts';
import { readDaisLock, scanModels, writeBuildContext, type BuildContext } from '../src/targets/container/context.ts';
import { BUNDLE_EXTERNALS, BUNDLE_STUBBED } from '../src/targets/container/bundle.ts';
import * as grpc from '@grpc/grpc-js';
import { loadInferenceService } from '../src/serve/grpc/server.ts';
import * as ort from 'onnxruntime-node';
import { EXAMPLES_DIR, REPO_ROOT, requireShared } from './support/env.ts';
import { processingRepository } from './support/processing.ts';
import { assertServesExamples, exampleCases, freePort, waitForReady } from './container-support.ts';

const GOLDEN = join(REPO_ROOT, 'test', 'fixtures', 'container');

function assertGolden(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (process.env.DAIS_UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, actual);
  }
  assert.ok(existsSync(file), `${file} is missing: run with DAIS_UPDATE_GOLDEN=1 once and review it`);
  assert.equal(actual, readFileSync(file, 'utf8'), `${name} differs from ${file} (DAIS_UPDATE_GOLDEN=1 rewrites it)`);
}

const base: DockerfileOptions = { nodeImage: DEFAULT_NODE_IMAGE, arch: 'amd64', port: 8080, daisVersion: '0.1.0', models: ['digits', 'mlp'] };

describe('Dockerfile generator', () => {
  it('writes the expected Dockerfile for amd64 and for arm64', () => {
    assertGolden('Dockerfile.amd64', generateDockerfile(base));
    assertGolden('Dockerfile.arm64', generateDockerfile({ ...base, arch: 'arm64', port: 9000, models: ['keyword'] }));
  });

  it('writes the expected .dockerignore (an allow-list)', () => {
    assertGolden('dockerignore', generateDockerignore());
  });

  it('orders steps from least to most often changed, and keeps the production rules', () => {
    const text = generateDockerfile(base);
    const lines = text.split('\n');
    const at = (prefix: string) => {
      const i = lines.findIndex((l) => l.startsWith(prefix));
      assert.notEqual(i, -1, `a line starting with '${prefix}'`);
      return i;
    };
    const order = ['FROM node:', 'COPY package.json package-lock.json', 'RUN npm ci --omit=dev', 'COPY --from=deps', 'COPY app/ ./', 'COPY models/', 'USER ', 'ENTRYPOINT '];
    const idx = order.map(at);
    assert.deepEqual([...idx].sort((a, b) => a - b), idx, `steps in this order: ${order.join(' → ')}`);
    assert.equal(lines.filter((l) => l.startsWith('FROM ')).length, 2, 'two stages');
    assert.match(DEFAULT_NODE_IMAGE, /^node:\d+\.\d+\.\d+-bookworm-slim$/, 'base pinned to an exact Node release');
    assert.ok(text.includes('USER 1000:1000'), 'numeric non-root user');
    assert.ok(text.includes('STOPSIGNAL SIGTERM') && text.includes('EXPOSE 8080') && text.includes('PORT=8080'));
    assert.ok(text.includes('ENTRYPOINT ["node", "/app/server.mjs"]'), 'exec form: node is PID 1');
    assert.ok(!/curl|wget/.test(text), 'no curl/wget in a slim image');
    assert.equal(DOCKERFILE_STEPS.length, 8);
  });

  it('has a HEALTHCHECK whose command is valid JavaScript that probes /v2/health/ready', () => {
    const line = generateDockerfile(base).split('\n').find((l) => l.startsWith('HEALTHCHECK '))!;
    const args = JSON.parse(line.slice(line.indexOf('CMD ') + 4)) as string[];
    assert.deepEqual(args.slice(0, 2), ['node', '-e']);
    assert.ok(args[2].includes('/v2/health/ready'));
    assert.doesNotThrow(() => new Script(args[2]), 'the -e script parses');
  });
});

describe('onnxruntime prune script (the deps stage, under sh)', () => {
  function fakeOrt(): string {
    const dir = mkdtempSync(join(tmpdir(), 'dais-prune-'));
    for (const p of ['darwin/arm64', 'linux/x64', 'linux/arm64', 'win32/x64', 'win32/arm64']) {
      mkdirSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6', p), { recursive: true });
      writeFileSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6', p, 'onnxruntime_binding.node'), 'x');
    }
    return dir;
  }
  const run = (dir: string, fallback: 'amd64' | 'arm64', targetArch: string) =>
    spawnSync('sh', ['-ec', pruneOnnxruntimeScript(fallback).join(' && ')], { cwd: dir, env: { ...process.env, TARGETARCH: targetArch }, encoding: 'utf8' });
  const left = (dir: string) => {
    const b = join(dir, 'node_modules/onnxruntime-node/bin/napi-v6');
    return readdirSync(b).flatMap((os) => readdirSync(join(b, os)).map((a) => `${os}/${a}`));
  };

  for (const [fallback, targetArch, want] of [
    ['amd64', '', 'linux/x64'],
    ['arm64', '', 'linux/arm64'],
    ['amd64', 'arm64', 'linux/arm64'],
    ['arm64', 'amd64', 'linux/x64'],
  ] as const) {
    it(`keeps only ${want} (fallback ${fallback}, TARGETARCH '${targetArch}')`, () => {
      const dir = fakeOrt();
      try {
        const r = run(dir, fallback, targetArch);
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(left(dir), [want]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('fails the build for an architecture onnxruntime does not ship', () => {
    const dir = fakeOrt();
    try {
      const r = run(dir, 'amd64', 's390x');
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /unsupported TARGETARCH s390x/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('context package-lock', () => {
  const lock: PackageLock = {
    lockfileVersion: 3,
    packages: {
      '': { name: 'dais', dependencies: { a: '^1' }, devDependencies: { t: '^1' } },
      'node_modules/a': { version: '1.0.0', integrity: 'sha512-a', dependencies: { b: '^1', c: '^1' } },
      'node_modules/b': { version: '1.0.0', integrity: 'sha512-b', dev: true },
      'node_modules/a/node_modules/c': { version: '2.0.0', integrity: 'sha512-c2', optionalDependencies: { gone: '^1' } },
      'node_modules/c': { version: '1.0.0', integrity: 'sha512-c1' },
      'node_modules/t': { version: '1.0.0', dev: true },
    },
  };

  it('resolves dependencies the way npm does (nearest node_modules first)', () => {
    assert.equal(resolveLockPath(lock.packages, 'node_modules/a', 'c'), 'node_modules/a/node_modules/c');
    assert.equal(resolveLockPath(lock.packages, 'node_modules/a', 'b'), 'node_modules/b');
    assert.equal(resolveLockPath(lock.packages, '', 'c'), 'node_modules/c');
    assert.equal(resolveLockPath(lock.packages, 'node_modules/a/node_modules/c', 'missing'), undefined);
  });

  it('keeps the roots\' closure only, drops dev flags, pins exact versions', () => {
    const pkg = contextPackage(lock, ['a'], { name: 'srv', version: '0.1.0', description: 'd' });
    assert.deepEqual(pkg.packageJson.dependencies, { a: '1.0.0' });
    assert.deepEqual(Object.keys(pkg.lock.packages), ['', 'node_modules/a', 'node_modules/a/node_modules/c', 'node_modules/b']);
    assert.equal(pkg.lock.packages['node_modules/b'].dev, undefined);
    assert.deepEqual(pkg.lock.packages[''], { name: 'srv', version: '0.1.0', dependencies: { a: '1.0.0' } });
  });

  it('names the missing package when the lock lacks one', () => {
    assert.throws(() => contextPackage(lock, ['nope'], { name: 's', version: '1', description: '' }), /nope is not installed/);
  });

  it('cuts onnxruntime-node and its dependencies out of dais\' real lock, with integrity hashes', async () => {
    const pkg = contextPackage(await readDaisLock(), ['onnxruntime-node'], { name: 's', version: '1', description: '' });
    const paths = Object.keys(pkg.lock.packages);
    assert.ok(paths.includes('node_modules/onnxruntime-node') && paths.includes('node_modules/onnxruntime-common'));
    for (const dev of ['node_modules/typescript', 'node_modules/esbuild', 'node_modules/tsx']) assert.ok(!paths.includes(dev), `${dev} is not a runtime dependency`);
    for (const p of paths.slice(1)) assert.match(String(pkg.lock.packages[p].integrity), /^sha(512|1)-/, `${p} has an integrity hash`);
  });
});

describe('model sources', () => {
  it('reads a model folder (<model>/<version>/model.onnx) as that model, a repository as its models', async () => {
    assert.deepEqual((await scanModels(join(EXAMPLES_DIR, 'mlp'))).map((s) => [s.name, s.version]), [['mlp', '1']]);
    const all = (await scanModels(EXAMPLES_DIR)).map((s) => s.name);
    for (const m of ['digits', 'maintenance', 'mlp']) assert.ok(all.includes(m), m);
  });
});

describe('build context for a model that declares preprocess.image', () => {
  it('names sharp in package.json and the lock (every linux CPU\'s prebuilt packages), and its Dockerfile checks the binary; without such a model neither', async () => {
    const repo = processingRepository();
    const dir = mkdtempSync(join(tmpdir(), 'dais-ctx-image-'));
    try {
      const image = await writeBuildContext({ model: join(repo.root, 'image'), out: join(dir, 'image'), arch: 'arm64', port: 8080, nodeImage: DEFAULT_NODE_IMAGE });
      assert.deepEqual(Object.keys(image.packages).sort(), ['onnxruntime-node', 'sharp']);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'image', 'package.json'), 'utf8')).dependencies, image.packages);
      const lock = JSON.parse(readFileSync(join(dir, 'image', 'package-lock.json'), 'utf8')).packages;
      for (const name of ['sharp', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64', '@img/sharp-linux-arm64', '@img/sharp-libvips-linux-arm64']) assert.ok(lock[`node_modules/${name}`], name);
      const dockerfile = readFileSync(join(dir, 'image', 'Dockerfile'), 'utf8');
      assert.ok(dockerfile.includes(` && ${checkSharpScript()[0]}`), dockerfile);
      assert.ok(!readFileSync(join(dir, 'image', 'app', 'server.mjs'), 'utf8').includes('node_modules/sharp/'), 'sharp stays out of the bundle');
      const plain = await writeBuildContext({ model: join(repo.root, 'mlp'), out: join(dir, 'plain'), arch: 'amd64', port: 8080, nodeImage: DEFAULT_NODE_IMAGE });
      assert.deepEqual(Object.keys(plain.packages), ['onnxruntime-node']);
      assert.ok(!Object.keys(JSON.parse(readFileSync(join(dir, 'plain', 'package-lock.json'), 'utf8')).packages).some((p) => /sharp|@img/.test(p)));
      assert.ok(!readFileSync(join(dir, 'plain', 'Dockerfile'), 'utf8').includes('sharp'));
    } finally {
      repo.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the deps stage\'s sharp check fails under sh when npm left out the platform\'s binary', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dais-sharp-check-'));
    try {
      mkdirSync(join(dir, 'node_modules/@img/sharp-linux-x64/lib'), { recursive: true });
      mkdirSync(join(dir, 'node_modules/@img/sharp-libvips-linux-x64/lib'), { recursive: true });
      const check = () => spawnSync('sh', ['-ec', ['ort=x64', ...checkSharpScript()].join(' && ')], { cwd: dir, encoding: 'utf8' });
      assert.notEqual(check().status, 0, 'no binary: the build fails');
      writeFileSync(join(dir, 'node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64-0.35.6.node'), '');
      assert.notEqual(check().status, 0, 'no libvips: the build fails');
      writeFileSync(join(dir, 'node_modules/@img/sharp-libvips-linux-x64/lib/libvips-cpp.so.8.18.8'), '');
      assert.equal(check().status, 0, check().stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('build context for a Keras file', () => {
  it('converts it to ONNX at build time (the image carries no Keras importer) and the ONNX equals the NumPy reference', async (t) => {
    const shared = requireShared(t, 'models/keras-mnist');
    if (!shared) return;
    const dir = mkdtempSync(join(tmpdir(), 'dais-ctx-keras-'));
    try {
      const ctx = await writeBuildContext({ model: join(shared, 'simple_dense_28x28.h5'), out: dir, arch: 'amd64', port: 8080, nodeImage: DEFAULT_NODE_IMAGE });
      assert.deepEqual(ctx.models.map((m) => [m.name, m.version, m.file, m.convertedFrom]), [['simple_dense_28x28', '1', 'models/simple_dense_28x28/1/model.onnx', 'keras-h5']]);
      const expected = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/keras/simple_dense_28x28.expected.json'), 'utf8'));
      const session = await ort.InferenceSession.create(join(dir, ctx.models[0].file));
      const out = await session.run({ [expected.input.name]: new ort.Tensor('float32', Float32Array.from(expected.input.data), expected.input.shape) });
      const y = Array.from(out[expected.output.name].data as Float32Array);
      assert.equal(y.length, expected.output.data.length);
      y.forEach((v, i) => assert.ok(Math.abs(v - expected.output.data[i]) <= Math.max(1e-5, 1e-4 * Math.abs(expected.output.data[i])), `[${i}] ${v} vs ${expected.output.data[i]}`));
      await session.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('build context for examples/, run without Docker', () => {
  let dir: string;
  let ctx: BuildContext;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dais-ctx-'));
    ctx = await writeBuildContext({ model: EXAMPLES_DIR, out: dir, arch: 'amd64', port: 8080, nodeImage: DEFAULT_NODE_IMAGE });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('holds the Dockerfile, .dockerignore, package files, the bundle and every example model byte for byte', () => {
    const models = [...new Set(exampleCases().map((c) => c.model))];
    for (const f of ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'app/server.mjs', 'app/inference.proto', 'app/health.proto']) assert.ok(ctx.files.includes(f), f);
    for (const m of models) {
      const rel = `models/${m}/1/model.onnx`;
      assert.ok(ctx.files.includes(rel), rel);
      assert.deepEqual(readFileSync(join(dir, rel)), readFileSync(join(EXAMPLES_DIR, m, '1', 'model.onnx')), `${rel} is the example's file`);
    }
    assert.equal(readFileSync(join(dir, 'Dockerfile'), 'utf8').split('\n')[1], `# Generated by dais 0.1.0 (dais build --target container) for: ${ctx.models.map((m) => m.name).filter((v, i, a) => a.indexOf(v) === i).join(', ')}.`);
  });

  it('bundles the server without TypeScript, tsx or the native runtime inside', () => {
    const code = readFileSync(join(dir, 'app/server.mjs'), 'utf8');
    assert.ok(code.length > 10_000 && code.length < 5_000_000, `bundle is ${code.length} bytes`);
    for (const ext of [...BUNDLE_EXTERNALS, ...BUNDLE_STUBBED]) assert.ok(!code.includes(`node_modules/${ext}/`), `${ext} is not inside`);
    assert.ok(!/from ["']tsx|require\(["']tsx/.test(code), 'no tsx at run time');
    assert.ok(/(from |import\(|resolve\()"onnxruntime-node"/.test(code), 'onnxruntime-node loaded from node_modules');
  });

  it('installs with npm ci --omit=dev as the deps stage does, prunes to linux/x64, and the bundle serves the examples', async (t) => {
    const npm = spawnSync('npm', [...NPM_CI_ARGS, '--prefer-offline'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NODE_ENV: 'production' } });
    if (npm.status !== 0 && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|network/i.test(npm.stderr)) {
      t.skip(`npm registry not reachable: ${npm.stderr.split('\n')[0]}`);
      return;
    }
    assert.equal(npm.status, 0, npm.stderr);
    const prune = spawnSync('sh', ['-ec', pruneOnnxruntimeScript('amd64').join(' && ')], { cwd: dir, encoding: 'utf8', env: { ...process.env, TARGETARCH: '' } });
    assert.equal(prune.status, 0, prune.stderr);
    assert.deepEqual(readdirSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6')), ['linux']);
    assert.deepEqual(readdirSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6/linux')), ['x64']);

    const port = await freePort();
    const grpcPort = await freePort();
    const child = spawn(process.execPath, [join(dir, 'app/server.mjs'), '--grpc-port', String(grpcPort)], {
      cwd: dir,
      env: { PATH: process.env.PATH, NODE_ENV: 'production', PORT: String(port), DAIS_MODEL_REPOSITORY: join(dir, 'models') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let alive = true;
    void exited.then(() => (alive = false));
    try {
      await waitForReady(`http://127.0.0.1:${port}/v2/health/ready`, 30_000, () => alive).catch((e) => {
        throw new Error(`${(e as Error).message}\n${log}`);
      });
      const n = await assertServesExamples(`http://127.0.0.1:${port}`);
      assert.ok(n >= 8, `${n} example requests checked`);
      // text-classifier through its declared steps: labels and tokenizer.json travel with its config.
      const texts = (JSON.parse(readFileSync(join(EXAMPLES_DIR, 'text-classifier', 'expected.json'), 'utf8')) as { texts: { text: string; probabilities: number[] }[] }).texts;
      const body = JSON.stringify({ inputs: [{ name: 'input_ids', datatype: 'BYTES', shape: [1], data: [texts[0].text] }], outputs: [{ name: 'logits', parameters: { classification: 1 } }] });
      const cls = (await (await fetch(`http://127.0.0.1:${port}/v2/models/text-classifier/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()) as { outputs: { data: string[] }[] };
      const best = texts[0].probabilities.indexOf(Math.max(...texts[0].probabilities));
      const [score, index, label] = cls.outputs[0].data[0].split(':');
      assert.deepEqual([Number(index), label], [best, ['negative', 'positive'][best]], cls.outputs[0].data[0]);
      assert.ok(Math.abs(Number(score) - texts[0].probabilities[best]) <= 2e-6, `${score} vs torch ${texts[0].probabilities[best]}`);
      // gRPC reads its .proto beside the bundle (app/inference.proto).
      const Service = loadInferenceService();
      const client = new Service(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure()) as unknown as {
        ServerReady(req: object, cb: (err: Error | null, res: { ready: boolean }) => void): void;
        close(): void;
      };
      const ready = await new Promise<{ ready: boolean }>((resolve, reject) => client.ServerReady({}, (err, res) => (err ? reject(err) : resolve(res))));
      client.close();
      assert.equal(ready.ready, true, 'gRPC ServerReady');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `clean exit on SIGTERM\n${log}`);
  });

  it('a model that declares preprocess.image, given at run time to a server built without one, is refused naming sharp and the fix', (t) => {
    if (!existsSync(join(dir, 'node_modules', 'onnxruntime-node'))) return void t.skip('npm ci did not run');
    assert.ok(!existsSync(join(dir, 'node_modules', 'sharp')), 'no sharp beside this server');
    const repo = processingRepository();
    try {
      const r = spawnSync(process.execPath, [join(dir, 'app/server.mjs')], {
        cwd: dir,
        env: { PATH: process.env.PATH, NODE_ENV: 'production', PORT: '0', DAIS_MODEL_REPOSITORY: join(repo.root, 'image') },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /preprocess\.image needs sharp \(the image decoder\), which is not installed beside this server.*dais build <model> --target container or edge.*--target kserve --image/);
    } finally {
      repo.remove();
    }
  });
});
