// Declared processing against hand-written pipelines doing the same steps (src/bench/peer-server.ts, modes image
// and embed):
//   image: JPEG body → top-5 (dais' Content-Type image/jpeg form vs node:http + sharp + onnxruntime-node), at
//          concurrency 1 and 16; dais' preprocessing time (decode + resize/crop/normalise) reported separately.
//   text:  POST /v1/embeddings (dais vs tokenizer + onnxruntime-node + pooling by hand).
// Goal (issue 18): requests/s ≥ 1.0× the baseline in each row. Rounds alternate between the servers so a slow
// spell of the machine weighs on both; each ratio is the median of per-round ratios. Load: the shared load client
// (src/bench/load.ts; wrk where installed, which reads seconds whole).
// DAIS_BENCH_SECONDS sets the seconds per round (default 2); DAIS_BENCH_ROUNDS the rounds (default 5).
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageToTensor } from '../src/core/processing/image.ts';
import { decodeImageWithSharp } from '../src/runtime/image-decoder-sharp.ts';
import { loadPoint } from '../src/bench/load.ts';
import { PEER_SERVER, TYPESCRIPT_LOADER } from '../src/bench/servers.ts';
import { median } from '../src/bench/stats.ts';
import { REPO_ROOT } from './paths.ts';

const FIX = join(REPO_ROOT, 'test', 'fixtures', 'processing');
const SECONDS = Number(process.env.DAIS_BENCH_SECONDS) || 2;
const ROUNDS = Number(process.env.DAIS_BENCH_ROUNDS) || 5;

function repository(): string {
  const root = mkdtempSync(join(tmpdir(), 'dais-bench-processing-'));
  mkdirSync(join(root, 'image', '1'), { recursive: true });
  copyFileSync(join(FIX, 'image', '1', 'model.onnx'), join(root, 'image', '1', 'model.onnx'));
  // No labels.txt: the hand-written peer answers "score:index", so dais does too (a label lookup is not compared).
  writeFileSync(join(root, 'image', 'config.yaml'), 'preprocess:\n  image: {resize: 36, crop: 32, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}\npostprocess: {softmax: true, top_k: 5}\n');
  mkdirSync(join(root, 'embed', '1'), { recursive: true });
  copyFileSync(join(FIX, 'text', '1', 'model.onnx'), join(root, 'embed', '1', 'model.onnx'));
  copyFileSync(join(FIX, 'text', 'tokenizer.json'), join(root, 'embed', 'tokenizer.json'));
  writeFileSync(join(root, 'embed', 'config.yaml'), 'preprocess:\n  text: {max_length: 64}\npostprocess: {pooling: mean, normalize: true}\n');
  return root;
}

/**
 * dais as a user starts it (`dais serve <repo>` with no flags: monitoring on, as shipped) or a hand-written peer
 * (peer-server.ts image|embed), each its own process.
 */
async function start(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const argv = args[0] === 'dais' ? [join(REPO_ROOT, 'bin', 'dais.js'), 'serve', args[1], '--port', '0', '--json', '--log-level', 'warn'] : ['--import', TYPESCRIPT_LOADER, PEER_SERVER, ...args];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => {
      const info = JSON.parse(d.toString().split('\n')[0]) as { url?: string; port?: number };
      resolve(info.url ?? `http://127.0.0.1:${info.port}`);
    });
    child.once('exit', (c) => reject(new Error(`${args[0]} exited ${c}`)));
  });
  return { child, url };
}

/** A request of a comparison, the same bytes for dais and the hand-written server. */
interface Target {
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** Requests/s from the shared load client (src/bench/load.ts): `concurrency` connections, one request in flight each. */
async function load(t: Target, concurrency: number, seconds: number): Promise<number> {
  const r = await loadPoint({ url: t.url, method: 'POST', headers: t.headers, bodyBase64: t.body.toString('base64'), connections: concurrency, durationS: seconds });
  if (r.errors || r.non2xx) throw new Error(`${t.url}: ${r.errors} errors and ${r.non2xx} non-2xx answers`);
  return r.rps;
}

async function compare(label: string, a: Target, b: Target, concurrency: number): Promise<boolean> {
  await load(a, concurrency, 1); // warm-up
  await load(b, concurrency, 1);
  const ratios: number[] = [], as: number[] = [], bs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const x = await load(a, concurrency, SECONDS);
    const y = await load(b, concurrency, SECONDS);
    as.push(x); bs.push(y); ratios.push(x / y);
  }
  const ratio = median(ratios);
  process.stdout.write(`${label.padEnd(34)} dais ${median(as).toFixed(0).padStart(6)} req/s   hand-written ${median(bs).toFixed(0).padStart(6)} req/s   ratio ${ratio.toFixed(2)}× (goal ≥ 1.0×) ${ratio >= 1 ? 'met' : 'MISSED'}\n`);
  return ratio >= 1;
}

async function answer(t: Target): Promise<{ outputs?: { data: string[] }[]; data?: { embedding: number[] }[] }> {
  const r = await fetch(t.url, { method: 'POST', headers: t.headers, body: new Uint8Array(t.body) });
  if (r.status !== 200) throw new Error(`${t.url}: ${r.status} ${await r.text()}`);
  return r.json();
}

/**
 * Before any timing: both sides do the same work, so they give the same answer. Top-5 classes equal (scores may
 * differ in the third decimal: dais resizes in its core, the peer in libvips); embeddings equal within 1e-4.
 */
async function sameAnswers(daisImage: Target, peerImage: Target, daisText: Target, peerText: Target): Promise<void> {
  const classes = (a: { outputs?: { data: string[] }[] }) => a.outputs![0].data.map((s) => s.split(':')[1]).join(',');
  const [di, pi] = [classes(await answer(daisImage)), classes(await answer(peerImage))];
  if (di !== pi) throw new Error(`the image answers differ: dais top-5 classes ${di}, hand-written ${pi}`);
  const [de, pe] = [(await answer(daisText)).data!, (await answer(peerText)).data!];
  de.forEach((d, i) => d.embedding.forEach((v, k) => {
    if (Math.abs(v - pe[i].embedding[k]) > 1e-4) throw new Error(`the embeddings differ: text ${i} [${k}] dais ${v}, hand-written ${pe[i].embedding[k]}`);
  }));
  process.stdout.write(`same answers: top-5 classes ${di}; ${de.length} embeddings of ${de[0].embedding.length} within 1e-4\n`);
}

async function main() {
  const repo = repository();
  const jpeg = readFileSync(join(FIX, 'photo.jpg'));
  const step = { input: 'pixels', resize: 36, crop: [32, 32] as [number, number], scale: 1 / 255, mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number], layout: 'NCHW' as const, maxPixels: 1e6 };
  const n = 200;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) imageToTensor(await decodeImageWithSharp(jpeg, 1e6), step);
  process.stdout.write(`preprocessing (dais, in-process): ${((performance.now() - t0) / n).toFixed(3)} ms per ${jpeg.length}-byte JPEG (decode + resize/crop/normalise; ${n} runs)\n`);
  const dais = await start(['dais', repo]);
  // The peers get the intra-op thread count dais chose for each model (its run plan), one process each as dais.
  const threads: Record<string, string> = {};
  for (const m of ['image', 'embed']) {
    const config = (await (await fetch(`${dais.url}/v2/models/${m}/config`)).json()) as { parameters?: Record<string, { string_value: string }> };
    const p = (k: string) => config.parameters?.[k]?.string_value;
    threads[m] = /^\d+$/.test(p('intra_op_thread_count') ?? '') ? p('intra_op_thread_count')! : '1';
    process.stdout.write(`${m}: dais chose ${p('execution_thread') ?? '?'} thread, ${threads[m]} intra-op thread(s), max_batch_size ${(config as { max_batch_size?: number }).max_batch_size ?? '?'}; the peer runs with --threads ${threads[m]}\n`);
  }
  const [image, embed] = await Promise.all([start(['image', join(repo, 'image', '1', 'model.onnx'), '--threads', threads.image]), start(['embed', join(repo, 'embed'), '--threads', threads.embed])]);
  const servers = [dais, image, embed];
  let ok = true;
  try {
    const img = { headers: { 'content-type': 'image/jpeg' }, body: jpeg };
    const text = { headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ model: 'embed', input: ['the cat sat on the mat.', 'a very good movie!'] })) };
    await sameAnswers({ url: `${dais.url}/v2/models/image/infer`, ...img }, { url: image.url, ...img }, { url: `${dais.url}/v1/embeddings`, ...text }, { url: embed.url, ...text });
    for (const c of [1, 16]) ok = (await compare(`image JPEG → top-5, concurrency ${c}`, { url: `${dais.url}/v2/models/image/infer`, ...img }, { url: image.url, ...img }, c)) && ok;
    ok = (await compare('/v1/embeddings, 2 texts, concurrency 16', { url: `${dais.url}/v1/embeddings`, ...text }, { url: embed.url, ...text }, 16)) && ok;
  } finally {
    for (const s of servers) s.child.kill();
    rmSync(repo, { recursive: true, force: true });
  }
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
