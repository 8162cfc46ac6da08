// `npm run goals hostile`: what hostile clients cost a running `dais serve examples` (issue 22), read from the
// server's own /metrics (prom-client's default metrics: nodejs_eventloop_lag_max_seconds, the worst event-loop delay
// since the previous scrape; process_resident_memory_bytes).
// Goals: the worst event-loop delay during the attacks < 100 ms — the worst requests, then the fuzz suite's
// seeded hostile REST bodies (src/bench/hostile-requests.ts, as test/fuzz-hostile.test.ts sends them) against every
// example model, the delay read every 50 of them; RSS with 50 slow readers (each pipelining 1 MB requests and never
// reading) < 1.5 × the idle RSS.
//   DAIS_HOSTILE_BENCH_READERS=50, DAIS_HOSTILE_BENCH_PIPELINED=8 (requests each slow reader sends),
//   DAIS_HOSTILE_BENCH_FUZZ=1500 (fuzz cases), DAIS_FUZZ_SEED=2206
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ModelMetadata } from '../src/core/index.ts';
import { hostileBody, pick } from '../src/bench/hostile-requests.ts';
import { seeded } from '../src/bench/random.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './paths.ts';

const READERS = Number(process.env.DAIS_HOSTILE_BENCH_READERS ?? 50);
const PIPELINED = Number(process.env.DAIS_HOSTILE_BENCH_PIPELINED ?? 8);
const FUZZ_CASES = Number(process.env.DAIS_HOSTILE_BENCH_FUZZ ?? 1500);
const SEED = Number(process.env.DAIS_FUZZ_SEED ?? 2206);
const LAG_GOAL_MS = 100;
const RSS_GOAL = 1.5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`/metrics has no ${name}`);
  return Number(line.split(' ')[1]);
}

/** The attacks, each under the 64 MiB body limit. */
function attacks(): { what: string; body: string }[] {
  const n = 20_000_000;
  return [
    { what: 'zero-size GRU input', body: '{"inputs":[{"name":"features","shape":[0,50,40],"datatype":"FP32","data":[]}]}' },
    { what: `BYTES tensor of ${n / 1e6} M empty strings for an FP32 input`, body: `{"inputs":[{"name":"features","shape":[${n}],"datatype":"BYTES","data":[${'"",'.repeat(n - 1)}""]}]}` },
    { what: 'id nested 30 M deep', body: `{"id":${'['.repeat(30_000_000)}` },
    { what: 'data nested 10,000 deep', body: `{"inputs":[{"name":"features","shape":[1],"datatype":"FP32","data":${'['.repeat(10_000)}0${']'.repeat(10_000)}}]}` },
  ];
}

async function main(): Promise<number> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'serve', EXAMPLES_DIR, '--port', '0', '--json', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const { url, port } = JSON.parse(await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))) as { url: string; port: number };
    await sleep(1000);
    const idleRss = await metric(url, 'process_resident_memory_bytes');
    await metric(url, 'nodejs_eventloop_lag_max_seconds'); // resets the window
    let worstLag = 0;
    for (const a of attacks()) {
      const r = await fetch(`${url}/v2/models/keyword/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: a.body });
      await r.arrayBuffer();
      await sleep(50);
      const lag = (await metric(url, 'nodejs_eventloop_lag_max_seconds')) * 1000;
      worstLag = Math.max(worstLag, lag);
      process.stdout.write(`  ${a.what}: HTTP ${r.status}, worst event-loop delay ${lag.toFixed(1)} ms\n`);
    }
    // The fuzz suite's hostile bodies, against every model the server holds.
    const models: ModelMetadata[] = [];
    for (const n of readdirSync(EXAMPLES_DIR)) {
      const m = await fetch(`${url}/v2/models/${n}`);
      if (m.ok) models.push((await m.json()) as ModelMetadata);
    }
    const r = seeded(SEED);
    let fuzzLag = 0;
    const statuses = new Map<number, number>();
    for (let i = 0; i < FUZZ_CASES; i++) {
      const model = pick(r, models);
      const { body, headers } = hostileBody(r, model);
      const res = await fetch(`${url}/v2/models/${model.name}/infer`, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (i % 50 === 49 || i === FUZZ_CASES - 1) fuzzLag = Math.max(fuzzLag, (await metric(url, 'nodejs_eventloop_lag_max_seconds')) * 1000);
    }
    worstLag = Math.max(worstLag, fuzzLag);
    const answered = [...statuses].sort((a, b) => a[0] - b[0]).map(([st, n]) => `${n} × ${st}`).join(', ');
    process.stdout.write(`  ${FUZZ_CASES} fuzz-suite hostile bodies (seed ${SEED}, ${models.length} models: ${answered}): worst event-loop delay ${fuzzLag.toFixed(1)} ms\n`);
    // Slow readers: pipelined 1 MB requests, nothing read.
    const data = Array.from({ length: 1_500_000 / 6 }, () => '0.5').join(',');
    const body = `{"inputs":[{"name":"input","shape":[${data.split(',').length / 784 | 0},784],"datatype":"FP32","data":[${data.split(',').slice(0, (data.split(',').length / 784 | 0) * 784).join(',')}]}]}`;
    const request = `POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const sockets: Socket[] = [];
    for (let i = 0; i < READERS; i++) {
      const s = connect(port, '127.0.0.1');
      s.pause();
      s.on('error', () => {});
      for (let j = 0; j < PIPELINED; j++) s.write(request);
      sockets.push(s);
    }
    await sleep(5000);
    const slowRss = await metric(url, 'process_resident_memory_bytes');
    for (const s of sockets) s.destroy();
    const ratio = slowRss / idleRss;
    process.stdout.write(
      `worst event-loop delay during the attacks: ${worstLag.toFixed(1)} ms (goal < ${LAG_GOAL_MS} ms)\n` +
        `RSS idle ${(idleRss / 2 ** 20).toFixed(0)} MiB, with ${READERS} slow readers × ${PIPELINED} pipelined ${(Buffer.byteLength(body) / 1e6).toFixed(1)} MB requests ${(slowRss / 2 ** 20).toFixed(0)} MiB: ${ratio.toFixed(2)}× (goal < ${RSS_GOAL}×)\n`,
    );
    return worstLag < LAG_GOAL_MS && ratio < RSS_GOAL ? 0 : 1;
  } finally {
    child.kill('SIGTERM');
  }
}

process.exit(await main());
