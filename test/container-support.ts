// Helpers shared by the container tests: the examples' requests and the framework's predictions, a v2 client
// that compares a server's answers with them, a free-port finder, and an image archive run under runc.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { extractArchive } from '../src/targets/container/oci/image.ts';
import { EXAMPLES_DIR } from './support/env.ts';

export interface ExampleCase {
  model: string;
  request: string;
  body: unknown;
  outputs: Record<string, { datatype: string; shape: number[]; data: number[] }>;
}

/** Every examples/<model>/requests/*.json with its expected.json entry. */
export function exampleCases(): ExampleCase[] {
  const cases: ExampleCase[] = [];
  for (const model of readdirSync(EXAMPLES_DIR).sort()) {
    const dir = join(EXAMPLES_DIR, model);
    if (!existsSync(join(dir, 'expected.json')) || !existsSync(join(dir, 'requests'))) continue;
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, { outputs: ExampleCase['outputs'] }>;
    for (const request of readdirSync(join(dir, 'requests')).filter((f) => f.endsWith('.json')).sort()) {
      if (!expected[request]) continue;
      cases.push({ model, request, body: JSON.parse(readFileSync(join(dir, 'requests', request), 'utf8')), outputs: expected[request].outputs });
    }
  }
  return cases;
}

function flat(data: unknown): number[] {
  return Array.isArray(data) ? data.flat(Infinity as 1).map(Number) : [Number(data)];
}

/** Sends every example request to a v2 server and compares with the framework's predictions (rel. 1e-4). */
export async function assertServesExamples(baseUrl: string, models?: string[]): Promise<number> {
  let checked = 0;
  for (const c of exampleCases()) {
    if (models && !models.includes(c.model)) continue;
    const res = await fetch(`${baseUrl}/v2/models/${c.model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(c.body) });
    const text = await res.text();
    assert.equal(res.status, 200, `${c.model}/${c.request}: HTTP ${res.status} ${text}`);
    const body = JSON.parse(text) as { model_name: string; outputs: Array<{ name: string; datatype: string; shape: number[]; data: unknown }> };
    assert.equal(body.model_name, c.model);
    for (const [name, want] of Object.entries(c.outputs)) {
      const got = body.outputs.find((o) => o.name === name);
      assert.ok(got, `${c.model}/${c.request}: output ${name}`);
      assert.equal(got.datatype, want.datatype, `${c.model}/${c.request}/${name}: datatype`);
      assert.deepEqual(got.shape, want.shape, `${c.model}/${c.request}/${name}: shape`);
      const values = flat(got.data);
      assert.equal(values.length, want.data.length);
      for (let i = 0; i < values.length; i++) {
        const tol = Math.max(1e-5, 1e-4 * Math.abs(want.data[i]));
        assert.ok(Math.abs(values[i] - want.data[i]) <= tol, `${c.model}/${c.request}/${name}[${i}]: served ${values[i]}, framework ${want.data[i]}`);
      }
    }
    checked++;
  }
  return checked;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls GET url until it answers 200 or the deadline passes; returns the last error otherwise. */
export async function waitForReady(url: string, ms: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`the server exited before ${url} answered`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${url} not ready after ${ms} ms: ${last}`);
}

export interface RuncContainer {
  id: string;
  /** The server's address on the host (the container shares the host's network). */
  url: string;
  /** Resolves with runc's exit code (the server's) once the container ends. */
  exited: Promise<number | null>;
  alive(): boolean;
  /** What the container wrote so far. */
  log(): string;
  /** Kills the container if it still runs and deletes it. */
  remove(): Promise<void>;
}

/**
 * Runs an image archive as Kubernetes would run its manifests, without an engine: umoci unpacks it, runc runs it as
 * its config says (user, entrypoint) with a read-only root and the host's network (so the test reaches the server on
 * 127.0.0.1 at a free port given as $PORT); resolves once /v2/health/ready answers. Needs root, runc, umoci.
 */
export async function runImageUnderRunc(archive: string, dir: string, readyMs = 30_000): Promise<RuncContainer> {
  const layout = join(dir, 'runc-layout');
  const bundle = join(dir, 'runc-bundle');
  await extractArchive(archive, layout);
  const unpack = spawnSync('umoci', ['unpack', '--image', `${layout}:latest`, bundle], { encoding: 'utf8' });
  assert.equal(unpack.status, 0, unpack.stderr);
  const port = await freePort();
  const cfgPath = join(bundle, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  cfg.process.terminal = false;
  cfg.process.env = [...cfg.process.env.filter((e: string) => !e.startsWith('PORT=')), `PORT=${port}`];
  cfg.linux.namespaces = cfg.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
  // As the Kubernetes manifests run it: nothing is written to the image's filesystem.
  cfg.root.readonly = true;
  writeFileSync(cfgPath, JSON.stringify(cfg));

  const id = `dais-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const runc = spawn('runc', ['run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  runc.stdout.on('data', (d) => (log += d));
  runc.stderr.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => runc.on('exit', (code) => resolve(code)));
  let alive = true;
  void exited.then(() => (alive = false));
  const container: RuncContainer = {
    id,
    url: `http://127.0.0.1:${port}`,
    exited,
    alive: () => alive,
    log: () => log,
    async remove() {
      if (alive) spawnSync('runc', ['kill', id, 'KILL']);
      await exited;
      spawnSync('runc', ['delete', '--force', id]);
      rmSync(bundle, { recursive: true, force: true });
      rmSync(layout, { recursive: true, force: true });
    },
  };
  try {
    await waitForReady(`${container.url}/v2/health/ready`, readyMs, () => alive);
  } catch (e) {
    await container.remove();
    throw new Error(`${(e as Error).message}\n${log}`);
  }
  return container;
}

/** Every member of a tar, in archive order. */
export async function readTar(data: Uint8Array): Promise<Array<{ name: string; type: string; mode: number; uid: number; mtime: number; linkname: string | null; data: Buffer }>> {
  const out: Array<{ name: string; type: string; mode: number; uid: number; mtime: number; linkname: string | null; data: Buffer }> = [];
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        out.push({ name: h.name, type: h.type, mode: h.mode, uid: h.uid, mtime: h.mtime.getTime(), linkname: h.linkname ?? null, data: Buffer.concat(chunks) });
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(Buffer.from(data));
  await done;
  return out;
}

/** Every member of every layer of an image archive, layers in order (the archive's one manifest). */
export async function imageLayerMembers(archive: string): Promise<Awaited<ReturnType<typeof readTar>>> {
  const members = await readTar(readFileSync(archive));
  const blob = (digest: string) => members.find((m) => m.name === `blobs/sha256/${digest.slice('sha256:'.length)}`)!.data;
  const index = JSON.parse(members.find((m) => m.name === 'index.json')!.data.toString()) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse(blob(index.manifests[0].digest).toString()) as { layers: Array<{ digest: string }> };
  return (await Promise.all(manifest.layers.map((l) => readTar(gunzipSync(blob(l.digest)))))).flat();
}
