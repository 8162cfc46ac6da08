// examples/image-classifier with the real MobileNetV2 in the container target, built as a user runs it (`dais build
// <repository> --target container --image`). The image ships sharp's linux/x64 packages (no other platform's) and
// the libraries they link against; run under runc it answers a JPEG and a PNG with the same top 5 as `dais serve` on
// the same files, and the tensor form with torch's probabilities. The made MobileNetV2's weights give every class
// the same probability (its reference output is 0.001 throughout), so its top 5 cannot tell two decoders apart: the
// repository also holds the processing fixture's small image model, whose logits for the same files are torch's
// (test/fixtures/processing/expected.json) and must come back as `dais serve` gives them, to the last digit. The Dockerfile route's context locks sharp: `npm ci`
// of it, as the Dockerfile's deps stage runs it, installs sharp's linux/x64 packages, the Dockerfile's checks pass
// under sh, and the bundle answers the JPEG the same. Without the arm64 packages an arm64 image is refused, naming
// the npm command that installs them.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { checkSharpScript, NPM_CI_ARGS, pruneOnnxruntimeScript } from '../src/targets/container/dockerfile.ts';
import type { ContainerBuildReport } from '../src/targets/container/index.ts';
import { buildImage } from '../src/targets/container/oci/image.ts';
import { parseLdd } from '../src/targets/container/oci/runtime-files.ts';
import { EXAMPLES_DIR, REPO_ROOT, requireRoot, requireTool } from './support/env.ts';
import { expected, fixture, IMAGE_CONFIG, PROCESSING_FIXTURES } from './support/processing.ts';
import { realModelFile, realModelMade, referenceValues, requireRealModel, type Reference } from './support/real-models.ts';
import { freePort, imageLayerMembers, runImageUnderRunc, waitForReady } from './container-support.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dais-container-image-'));
const repo = join(tmp, 'repository');
const ctx = join(tmp, 'ctx');
const archive = join(tmp, 'img.tar');
const FILES = [
  ['photo.jpg', 'image/jpeg'],
  ['photo.png', 'image/png'],
] as const;
const SHARP_VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'sharp', 'package.json'), 'utf8')) as { version: string }).version;

let reference: Reference | undefined;
let report: ContainerBuildReport | undefined;
let server: RunningServer | undefined;
/** `dais serve`'s classification strings for each model and file, the answer the image must give. */
const served = new Map<string, string[]>();
const MODELS = ['image-classifier', 'image'];

before(async () => {
  if (!realModelMade('mobilenetv2')) return;
  cpSync(join(EXAMPLES_DIR, 'image-classifier'), join(repo, 'image-classifier'), { recursive: true });
  mkdirSync(join(repo, 'image-classifier', '1'));
  copyFileSync(realModelFile('mobilenetv2'), join(repo, 'image-classifier', '1', 'model.onnx'));
  cpSync(join(PROCESSING_FIXTURES, 'image'), join(repo, 'image'), { recursive: true });
  writeFileSync(join(repo, 'image', 'config.yaml'), IMAGE_CONFIG);
  const built = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'build', repo, '--target', 'container', '--out', ctx, '--image', archive, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(built.status, 0, built.stdout + built.stderr);
  report = JSON.parse(built.stdout) as ContainerBuildReport;
  server = await serve({ model: repo, port: 0 });
  for (const model of MODELS) for (const [file, type] of FILES) served.set(`${model}/${file}`, await topK(server.url, model, file, type));
});
after(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function topK(url: string, model: string, file: string, type: string): Promise<string[]> {
  const r = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': type }, body: fixture(file) as BodyInit });
  const body = await r.json();
  assert.equal(r.status, 200, `${model}/${file}: ${JSON.stringify(body)}`);
  return body.outputs[0].data as string[];
}

/** Each model's answer to each file equals `dais serve`'s; the fixture model's is torch's within the stated tolerance. */
async function assertServesImages(url: string): Promise<void> {
  for (const model of MODELS) {
    for (const [file, type] of FILES) {
      const got = await topK(url, model, file, type);
      assert.deepEqual(got, served.get(`${model}/${file}`), `${model}/${file}: the image's answer vs dais serve's`);
      if (model === 'image-classifier') assert.equal(got.length, 5);
      if (model !== 'image') continue;
      const ref = expected().image[file].logits;
      const order = ref.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, i]) => i);
      assert.deepEqual(got.map((c) => Number(c.split(':')[1])), order, `${file}: top 3 classes as torch's`);
      got.forEach((c, k) => assert.ok(Math.abs(Number(c.split(':')[0]) - ref[order[k]]) < 0.02, `${file}: ${c} vs torch ${ref[order[k]]}`));
    }
  }
}

function ready(t: TestContext): boolean {
  reference = requireRealModel(t, 'mobilenetv2');
  return reference !== undefined;
}

describe('MobileNetV2 with its image step in the container target', () => {
  test('the context names sharp and locks its linux packages, the Dockerfile checks its binary, the bundle leaves sharp outside', (t) => {
    if (!ready(t)) return;
    const pkg = JSON.parse(readFileSync(join(ctx, 'package.json'), 'utf8'));
    assert.deepEqual(Object.keys(pkg.dependencies).sort(), ['onnxruntime-node', 'sharp']);
    assert.equal(pkg.dependencies.sharp, SHARP_VERSION, "dais' own sharp");
    const lock = JSON.parse(readFileSync(join(ctx, 'package-lock.json'), 'utf8')).packages;
    for (const arch of ['x64', 'arm64']) {
      for (const name of [`@img/sharp-linux-${arch}`, `@img/sharp-libvips-linux-${arch}`]) assert.ok(lock[`node_modules/${name}`]?.integrity, `${name} locked with its hash`);
    }
    assert.ok(readFileSync(join(ctx, 'Dockerfile'), 'utf8').includes(` && ${checkSharpScript()[0]}`), 'the deps stage fails without sharp\'s binary');
    const code = readFileSync(join(ctx, 'app', 'server.mjs'), 'utf8');
    assert.ok(!code.includes('node_modules/sharp/'), "sharp's JavaScript is not in the bundle");
    assert.match(code, /require\("sharp"\)/, 'sharp is required from node_modules when an image model loads');
  });

  test('the image holds sharp with linux/x64 libvips only, and the host libraries the addon needs', async (t) => {
    if (!ready(t)) return;
    const files = (await imageLayerMembers(archive)).filter((m) => m.type === 'file').map((m) => m.name);
    const img = files.filter((f) => f.startsWith('app/node_modules/@img/')).map((f) => f.split('/').slice(2, 4).join('/'));
    assert.deepEqual([...new Set(img)].sort(), ['@img/colour', '@img/sharp-libvips-linux-x64', '@img/sharp-linux-x64']);
    assert.ok(files.includes(`app/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64-${SHARP_VERSION}.node`));
    assert.ok(files.some((f) => /^app\/node_modules\/@img\/sharp-libvips-linux-x64\/lib\/libvips-cpp\.so\./.test(f)));
    for (const f of ['app/node_modules/sharp/package.json', 'app/node_modules/sharp/dist/index.cjs', 'app/node_modules/detect-libc/package.json', 'app/node_modules/semver/package.json']) assert.ok(files.includes(f), f);
    assert.ok(!files.some((f) => f.startsWith('app/node_modules/sharp/src/')), "sharp's C++ source stays out");
    // What the addon and libvips link against beyond themselves, stored where it really is (as node's libraries are).
    for (const bin of [`@img/sharp-linux-x64/lib/sharp-linux-x64-${SHARP_VERSION}.node`, ...readdirSync(join(REPO_ROOT, 'node_modules/@img/sharp-libvips-linux-x64/lib')).filter((f) => f.startsWith('libvips')).map((f) => `@img/sharp-libvips-linux-x64/lib/${f}`)]) {
      const path = join(REPO_ROOT, 'node_modules', bin);
      for (const lib of parseLdd(spawnSync('ldd', [path], { encoding: 'utf8' }).stdout, bin)) {
        if (lib.path.includes('/@img/')) continue;
        assert.ok(files.includes(realpathSync(lib.path).slice(1)), `${lib.path} (needed by ${bin}) is in the image`);
      }
    }
    const deps = report!.image!.layers.find((l) => l.createdBy.includes('/app/node_modules'))!;
    assert.match(deps.createdBy, new RegExp(`sharp ${SHARP_VERSION.replace(/\./g, '\\.')}, linux/amd64`));
    t.diagnostic(`image ${(report!.image!.compressedSize / 1e6).toFixed(1)} MB compressed; node_modules layer ${(deps.size / 1e6).toFixed(1)} MB`);
  });

  test("runs under runc: a JPEG and a PNG give dais serve's answers (torch's logits for the fixture model), the tensor form torch's probabilities", async (t) => {
    if (!ready(t) || !requireRoot(t) || !requireTool(t, 'runc', 'runc') || !requireTool(t, 'umoci', 'umoci')) return;
    const c = await runImageUnderRunc(archive, tmp, 60_000);
    try {
      await assertServesImages(c.url);
      const k = reference!.cases.find((x) => x.inputs[0].shape[0] === 1) ?? reference!.cases[0];
      const input = referenceValues('mobilenetv2', k.inputs[0]);
      const want = referenceValues('mobilenetv2', k.outputs[0]);
      const body = JSON.stringify({ inputs: [{ name: k.inputs[0].name, datatype: 'FP32', shape: k.inputs[0].shape, data: Array.from(input, Number) }] });
      const r = await fetch(`${c.url}/v2/models/image-classifier/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const got = (await r.json()) as { outputs: Array<{ data: number[] }> };
      assert.equal(r.status, 200, JSON.stringify(got));
      assert.equal(got.outputs[0].data.length, want.length);
      got.outputs[0].data.forEach((v, i) => assert.ok(Math.abs(v - Number(want[i])) <= 1e-5 + 1e-4 * Math.abs(Number(want[i])), `[${i}] ${v} vs torch ${want[i]}`));
    } finally {
      await c.remove();
    }
  });

  test("the Dockerfile route: npm ci of the context installs sharp's linux/x64 packages, the deps stage's checks pass, the bundle answers as dais serve does", async (t) => {
    if (!ready(t)) return;
    const npm = spawnSync('npm', [...NPM_CI_ARGS, '--prefer-offline'], { cwd: ctx, encoding: 'utf8', env: { ...process.env, NODE_ENV: 'production' } });
    if (npm.status !== 0 && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|network/i.test(npm.stderr)) return void t.skip(`npm registry not reachable: ${npm.stderr.split('\n')[0]}`);
    assert.equal(npm.status, 0, npm.stderr);
    const script = [...pruneOnnxruntimeScript('amd64'), ...checkSharpScript()].join(' && ');
    const sh = spawnSync('sh', ['-ec', script], { cwd: ctx, encoding: 'utf8', env: { ...process.env, TARGETARCH: '' } });
    assert.equal(sh.status, 0, sh.stderr);
    const img = readdirSync(join(ctx, 'node_modules', '@img')).sort();
    assert.ok(img.includes('sharp-linux-x64') && img.includes('sharp-libvips-linux-x64'), img.join(', '));
    assert.deepEqual(img.filter((d) => /arm|darwin|win32|wasm/.test(d)), [], 'no other CPU\'s or OS\'s package');

    const port = await freePort();
    const child = spawn(process.execPath, [join(ctx, 'app', 'server.mjs')], {
      cwd: ctx,
      env: { PATH: process.env.PATH, NODE_ENV: 'production', PORT: String(port), DAIS_MODEL_REPOSITORY: join(ctx, 'models') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let alive = true;
    void exited.then(() => (alive = false));
    try {
      await waitForReady(`http://127.0.0.1:${port}/v2/health/ready`, 60_000, () => alive).catch((e) => {
        throw new Error(`${(e as Error).message}\n${log}`);
      });
      await assertServesImages(`http://127.0.0.1:${port}`);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `clean exit on SIGTERM\n${log}`);
  });

  test('an arm64 image without sharp\'s arm64 packages installed is refused, naming the npm command', async (t) => {
    if (!ready(t)) return;
    if (existsSync(join(REPO_ROOT, 'node_modules', '@img', 'sharp-linux-arm64'))) return void t.skip('sharp\'s arm64 packages are installed here');
    // A base layout is named (an arm64 image needs one); sharp is checked before it is read.
    const base = join(tmp, 'arm64-base');
    mkdirSync(base);
    writeFileSync(join(base, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [] }));
    await assert.rejects(
      buildImage({ context: ctx, archive: join(tmp, 'arm64.tar'), arch: 'arm64', base: `oci:${base}`, reference: 'dais-image-classifier:arm64', models: report!.models }),
      new RegExp(`sharp's linux-arm64 binary \\(@img/sharp-linux-arm64\\).*npm install --os=linux --cpu=arm64 --libc=glibc sharp@${SHARP_VERSION.replace(/\./g, '\\.')}`),
    );
    assert.ok(!existsSync(join(tmp, 'arm64.tar')), 'no archive written');
  });
});
