// The OCI image archive built without Docker: `dais build examples --target container --image` as a user runs
// it, then checked by skopeo, by reading the archive back (every digest recomputed, Docker's manifest.json
// consistent), built again for the same digest, and run for real: umoci unpacks it, runc runs it as root with
// the host's network, the server answers the examples with the framework's predictions, and SIGTERM ends it
// with exit code 0.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildImage, extractArchive } from '../src/targets/container/oci/image.ts';
import { parseLdd } from '../src/targets/container/oci/runtime-files.ts';
import { buildContainer, type ContainerBuildOptions, type ContainerBuildReport } from '../src/targets/container/index.ts';
import { EXAMPLES_DIR, REPO_ROOT, requireRoot, requireTool } from './support/env.ts';
import { assertServesExamples, exampleCases, readTar, runImageUnderRunc } from './container-support.ts';

const DAIS = join(REPO_ROOT, 'bin', 'dais.js');
const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function dais(args: string[]) {
  return spawnSync(process.execPath, [DAIS, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

describe('OCI image archive of examples/', () => {
  let dir: string;
  let report: ContainerBuildReport;
  let image: NonNullable<ContainerBuildReport['image']>;
  let members: Awaited<ReturnType<typeof readTar>>;
  const blob = (digest: string) => members.find((m) => m.name === `blobs/sha256/${digest.slice(7)}`)!.data;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dais-image-'));
    const r = dais(['build', EXAMPLES_DIR, '--target', 'container', '--out', join(dir, 'ctx'), '--image', join(dir, 'img.tar'), '--json']);
    assert.equal(r.status, 0, r.stderr);
    report = JSON.parse(r.stdout) as ContainerBuildReport;
    image = report.image!;
    members = await readTar(readFileSync(join(dir, 'img.tar')));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is an OCI layout with Docker\'s manifest.json, every blob named by its sha256, entries sorted, timestamps 0', () => {
    const names = members.map((m) => m.name);
    assert.deepEqual(names, [...names].sort(), 'sorted members');
    for (const f of ['oci-layout', 'index.json', 'manifest.json']) assert.ok(names.includes(f), f);
    for (const m of members) {
      assert.equal(m.mtime, 0, `${m.name} mtime`);
      assert.equal(m.uid, 0, `${m.name} uid`);
      if (m.name.startsWith('blobs/sha256/') && m.type === 'file') assert.equal(sha(m.data), `sha256:${m.name.slice(13)}`, `${m.name} content digest`);
    }
    const index = JSON.parse(members.find((m) => m.name === 'index.json')!.data.toString());
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0].digest, image.digest);
    assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'latest');
    assert.equal(index.manifests[0].annotations['io.containerd.image.name'], 'dais-examples:latest');
    const manifest = JSON.parse(blob(image.digest).toString());
    assert.equal(manifest.config.digest, image.configDigest);
    const docker = JSON.parse(members.find((m) => m.name === 'manifest.json')!.data.toString());
    assert.deepEqual(docker, [
      { Config: `blobs/sha256/${image.configDigest.slice(7)}`, RepoTags: ['dais-examples:latest'], Layers: manifest.layers.map((l: { digest: string }) => `blobs/sha256/${l.digest.slice(7)}`) },
    ]);
    const config = JSON.parse(blob(image.configDigest).toString());
    // diff_ids are the digests of the uncompressed layers, as docker load and umoci check them.
    assert.deepEqual(config.rootfs.diff_ids, manifest.layers.map((l: { digest: string }) => sha(gunzipSync(blob(l.digest)))));
    assert.equal(config.created, '1970-01-01T00:00:00Z');
    assert.equal(config.config.User, '65532:65532');
    assert.deepEqual(config.config.Entrypoint, ['/usr/local/bin/node', '/app/server.mjs']);
    assert.equal(config.config.Cmd, null);
    assert.equal(config.config.StopSignal, 'SIGTERM');
    assert.deepEqual(config.config.ExposedPorts, { '8080/tcp': {} });
    assert.ok(config.config.Env.includes('PORT=8080'));
    assert.ok(config.config.Healthcheck.Test.join(' ').includes('/v2/health/ready'));
  });

  it('holds Node with its libraries, onnxruntime for linux/x64 only, the bundle and every example model', async () => {
    const manifest = JSON.parse(blob(image.digest).toString());
    const layers = await Promise.all(manifest.layers.map((l: { digest: string }) => readTar(gunzipSync(blob(l.digest)))));
    const all = layers.flat();
    const file = (p: string) => all.find((m) => m.name === p);
    assert.equal(file('usr/local/bin/node')?.data.byteLength, readFileSync(process.execPath).byteLength, 'this machine\'s node');
    assert.match(file('etc/passwd')!.data.toString(), /^nonroot:x:65532:65532:/m);
    for (const lib of parseLdd(spawnSync('ldd', [process.execPath], { encoding: 'utf8' }).stdout, 'node')) {
      // Stored where it really is (Debian's /lib is a symlink to usr/lib, kept as one).
      assert.ok(all.some((m) => m.name === realpathSync(lib.path).slice(1) && m.type === 'file'), `${lib.path} (needed by node) is in the image`);
    }
    const ortBins = all.filter((m) => m.name.includes('onnxruntime-node/bin/') && m.type === 'file').map((m) => m.name);
    assert.deepEqual(ortBins.sort(), ['app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1', 'app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node']);
    assert.ok(file('app/node_modules/onnxruntime-common/package.json'));
    assert.ok(file('app/server.mjs')!.data.byteLength > 10_000);
    for (const m of new Set(exampleCases().map((c) => c.model))) {
      assert.deepEqual(file(`models/${m}/1/model.onnx`)?.data, readFileSync(join(EXAMPLES_DIR, m, '1', 'model.onnx')), `models/${m}`);
    }
    assert.equal(file('tmp/')?.mode ?? file('tmp')?.mode, 0o1777);
    // No example declares preprocess.image: nothing of sharp, neither its packages nor its JavaScript in the bundle.
    assert.deepEqual(all.filter((m) => /(^|\/)(sharp|@img)(\/|$)|libvips/.test(m.name)).map((m) => m.name), []);
    assert.ok(!file('app/server.mjs')!.data.toString().includes('node_modules/sharp/'), 'sharp is not bundled');
  });

  it('skopeo inspects it: digest, platform, layers, config', (t) => {
    if (!requireTool(t, 'skopeo', 'skopeo')) return;
    const r = spawnSync('skopeo', ['inspect', `oci-archive:${join(dir, 'img.tar')}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.Digest, image.digest);
    assert.equal(info.Architecture, 'amd64');
    assert.equal(info.Os, 'linux');
    assert.deepEqual(info.Layers, image.layers.map((l) => l.digest));
    assert.ok(info.Env.includes('PORT=8080'));
  });

  it('reports its size, at most a third of a naive node image + npm install', () => {
    assert.equal(image.archiveSize, readFileSync(join(dir, 'img.tar')).byteLength);
    assert.equal(image.compressedSize, image.layers.reduce((s, l) => s + l.size, 0) + blob(image.configDigest).byteLength + blob(image.digest).byteLength);
    assert.ok(image.uncompressedSize > image.compressedSize);
    assert.ok(image.naive.nodeModulesBytes > 100e6, 'dais\' node_modules measured');
    assert.ok(image.compressedSize * 3 <= image.naive.baseCompressedBytes, `${image.compressedSize} B vs naive base alone ${image.naive.baseCompressedBytes} B`);
  });

  it('is reproducible: the same inputs give the same digest and the same archive bytes', async () => {
    const again = await buildImage({ context: join(dir, 'ctx'), archive: join(dir, 'again.tar'), arch: 'amd64', port: 8080, reference: 'dais-examples:latest', models: report.models });
    assert.equal(again.digest, image.digest);
    assert.equal(sha(readFileSync(join(dir, 'again.tar'))), sha(readFileSync(join(dir, 'img.tar'))));
    rmSync(join(dir, 'again.tar'));
  });

  it('runs under runc with a read-only root: answers the examples like the framework, as uid 65532 and PID 1, passes its HEALTHCHECK, exits 0 on SIGTERM', async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'runc', 'runc') || !requireTool(t, 'umoci', 'umoci') || !requireTool(t, 'skopeo', 'skopeo')) return;
    const c = await runImageUnderRunc(join(dir, 'img.tar'), dir);
    try {
      const state = JSON.parse(spawnSync('runc', ['state', c.id], { encoding: 'utf8' }).stdout) as { pid: number; status: string };
      assert.equal(state.status, 'running');
      const status = readFileSync(`/proc/${state.pid}/status`, 'utf8');
      assert.match(status, /^Uid:\s+65532\s/m, 'runs as the non-root user');
      assert.match(status, /^NSpid:\s+\d+\s+1$/m, 'node is PID 1 in the container');
      const n = await assertServesExamples(c.url);
      assert.ok(n >= 8, `${n} requests checked`);
      // The image's HEALTHCHECK command, run inside the container as Docker would.
      const hc = JSON.parse(spawnSync('skopeo', ['inspect', '--raw', '--config', `oci-archive:${join(dir, 'img.tar')}`], { encoding: 'utf8' }).stdout).config.Healthcheck.Test as string[];
      const probe = spawnSync('runc', ['exec', c.id, ...hc.slice(1)], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(probe.status, 0, `HEALTHCHECK ${hc.join(' ')}: ${probe.stderr}`);
      const kill = spawnSync('runc', ['kill', c.id, 'TERM'], { encoding: 'utf8' });
      assert.equal(kill.status, 0, kill.stderr);
      const code = await Promise.race([c.exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 20_000))]);
      assert.equal(code, 0, `runc run exits with the server's status after SIGTERM\n${c.log()}`);
    } finally {
      await c.remove();
    }
  });

  it('builds on a local OCI layout given as --base oci:<dir>:<ref>', async (t) => {
    if (!requireTool(t, 'skopeo', 'skopeo')) return;
    const layout = join(dir, 'base-layout');
    if (!existsSync(layout)) await extractArchive(join(dir, 'img.tar'), layout);
    const r = dais(['build', join(EXAMPLES_DIR, 'mlp'), '--target', 'container', '--out', join(dir, 'ctx2'), '--image', join(dir, 'on-base.tar'), '--base', `oci:${layout}:latest`, '--tag', 'acme/mlp:1', '--gzip-level', '1', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const onBase = (JSON.parse(r.stdout) as ContainerBuildReport).image!;
    assert.deepEqual(onBase.layers.filter((l) => l.fromBase).map((l) => l.digest), image.layers.map((l) => l.digest), 'the base\'s layers, unchanged');
    assert.equal(onBase.layers.filter((l) => !l.fromBase).length, 3, 'onnxruntime, server, models');
    const cfg = JSON.parse(spawnSync('skopeo', ['inspect', '--config', `oci-archive:${join(dir, 'on-base.tar')}`], { encoding: 'utf8' }).stdout);
    assert.deepEqual(cfg.config.Entrypoint, ['node', '/app/server.mjs'], 'node from the base\'s PATH');
    assert.equal(cfg.rootfs.diff_ids.length, 7);
    assert.equal(cfg.config.Labels['ai.dais.models'], 'mlp:1');
  });

  it('refuses bad input naming the fix, before writing anything; the CLI says it in one line, exit 1', async () => {
    const opts = { model: join(EXAMPLES_DIR, 'mlp'), out: join(dir, 'bad'), arch: 'amd64' as const, port: 8080, nodeImage: 'node:22', image: join(dir, 'x.tar') };
    const cases: Array<[Partial<ContainerBuildOptions>, RegExp]> = [
      [{ arch: 'arm64' }, /cannot make a arm64 image: give --base oci:<dir>/],
      [{ base: 'docker://node:22' }, /give a local OCI image layout as oci:<dir>/],
      [{ base: `oci:${dir}/nowhere` }, /holds no OCI image layout/],
      [{ tag: 'Bad Name' }, /--tag 'Bad Name'/],
    ];
    for (const [change, want] of cases) await assert.rejects(buildContainer({ ...opts, ...change }), want);
    assert.ok(!existsSync(join(dir, 'bad')), 'nothing written before the flags are checked');
    const r = dais(['build', join(EXAMPLES_DIR, 'mlp'), '--target', 'container', '--out', join(dir, 'bad'), '--tag', 'a:b']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, "dais build: --tag names the image archive (and the manifests' image): add --image <file.tar> or --k8s\n");
  });
});
