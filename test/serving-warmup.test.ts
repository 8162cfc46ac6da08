// Warm before ready (issue 19): a server is live at once but not ready until its models are loaded and warmed up,
// and the first real request after ready costs about what a warm one does. test/fixtures/cold-start.onnx is built so
// that the first run at a new batch size is clearly slower: at batch 4 it fills 128 MiB of fresh activation memory
// (~0.3-0.5 s against ~10-60 ms warm on this machine). Requests here are batch 4, a size the server has no reason
// to have run before unless its warmup declares it (a load that times batch 1 does not warm it), so the control
// without warmup shows that the comparison can fail.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { serve } from '../src/serve/index.ts';
import { REPO_ROOT } from './support/env.ts';
import { call, sleep, tempRepository } from './support/serving.ts';

const COLD_START = join(REPO_ROOT, 'test', 'fixtures', 'cold-start.onnx');
const ROWS = 4;
const x = Array.from({ length: ROWS * 256 }, (_, i) => (i % 7) - 3);
const request = { inputs: [{ name: 'x', shape: [ROWS, 256], datatype: 'FP32', data: x }] };
// Batching fixed (not sized by the server), so each request runs as sent.
const BATCHING = { max_batch_size: ROWS, max_queue_delay_ms: 0 };
const expected = x.map((v) => Math.max(0, v));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * One fresh server: the first infer after ready (on a connection a readiness probe already opened, as a client's
 * would be), against the median of 20 warm ones after it. Returns first / warm median.
 */
async function firstOverWarm(warmUp: boolean): Promise<number> {
  const repo = tempRepository();
  repo.add('cold-start', '1', COLD_START);
  repo.config('cold-start', { dynamic_batching: BATCHING, warmup: { batch_sizes: [1, ROWS] } });
  const s = await serve({ model: repo.root, port: 0, warmUp });
  try {
    assert.equal((await call(s.url, 'GET', '/v2/health/ready')).status, 200);
    const infer = async () => {
      const t0 = performance.now();
      const r = await call(s.url, 'POST', '/v2/models/cold-start/infer', request);
      const ms = performance.now() - t0;
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json().outputs[0].data, expected);
      return ms;
    };
    const first = await infer();
    const warm: number[] = [];
    for (let i = 0; i < 20; i++) warm.push(await infer());
    return first / median(warm);
  } finally {
    await s.close({ timeoutMs: 0 });
    repo.remove();
  }
}

describe('warm before ready', () => {
  it('the first request after ready is not slower than 1.5× a warm one; without warmup it is', async (t) => {
    // Medians over fresh servers, because one sample on a busy machine can land on a scheduling hiccup. The servers
    // run in this process, so the first one's first request also pays for compiling the server's own JavaScript
    // (2.0-2.5 × where the later ones measure 1.0-1.6 ×, 2026-12-07): one server is started and measured first and
    // left out, so that what is compared is the model's warm-up, which this test is about.
    await firstOverWarm(true);
    const warmed: number[] = [];
    for (let i = 0; i < 5; i++) warmed.push(await firstOverWarm(true));
    const cold: number[] = [];
    for (let i = 0; i < 3; i++) cold.push(await firstOverWarm(false));
    const show = (xs: number[]) => xs.map((r) => r.toFixed(2)).join(', ');
    t.diagnostic(`first / warm median: with warmup ${show(warmed)}; without ${show(cold)}`);
    assert.ok(median(cold) > 1.5, `control: without warmup the first request should be slower than 1.5× a warm one (ratios ${show(cold)})`);
    assert.ok(median(warmed) <= 1.5, `with warmup the first request took ${show(warmed)} × a warm one (median must be ≤ 1.5)`);
  });

  it('live answers while models load; ready and model ready stay 503 until warmup ran', async () => {
    const repo = tempRepository();
    repo.add('cold-start', '1', COLD_START);
    repo.config('cold-start', { dynamic_batching: BATCHING, warmup: { runs: 8, batch_sizes: [ROWS] } }); // ≥ 0.5 s of warming to watch
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'dais.js'), 'serve', repo.root, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
    const lines = () =>
      log
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; url?: string; time: string });
    try {
      let url: string | undefined;
      for (let i = 0; i < 600 && !url; i++) {
        url = lines().find((l) => l.msg.startsWith('listening'))?.url;
        if (!url) await sleep(50);
      }
      assert.ok(url, `the server says where it listens before loading; log so far:\n${log}`);
      const base: string = url;
      const seen: { live: number; ready: number; model: number; infer: number; at: number }[] = [];
      for (let i = 0; i < 3000; i++) {
        // Readiness is asked after the others have answered: the server may turn ready between any two calls, and
        // it never turns back, so a 503 from the last call says the model was not ready for the earlier ones either.
        const [live, model, infer] = await Promise.all([
          call(base, 'GET', '/v2/health/live'),
          call(base, 'GET', '/v2/models/cold-start/ready'),
          call(base, 'POST', '/v2/models/cold-start/infer', request),
        ]);
        const ready = await call(base, 'GET', '/v2/health/ready');
        seen.push({ live: live.status, ready: ready.status, model: model.status, infer: infer.status, at: Date.now() });
        if (ready.status === 503) {
          assert.equal(model.status, 503, 'model ready is false while the server is not ready');
          assert.equal(infer.status, 503);
          assert.equal(infer.json().code, 'MODEL_NOT_READY');
          assert.match(infer.json().error, /still loading and warming/);
        }
        if (ready.status === 200) break;
        await sleep(10);
      }
      const loading = seen.filter((s) => s.ready === 503);
      assert.ok(loading.length >= 2, `readiness was seen false while loading (${seen.length} polls)`);
      assert.ok(loading.every((s) => s.live === 200), 'live answers 200 from the start: a liveness probe must not kill a loading pod');
      const last = seen.at(-1)!;
      assert.equal(last.ready, 200, 'the server turned ready');
      const [model, infer] = [await call(base, 'GET', '/v2/models/cold-start/ready'), await call(base, 'POST', '/v2/models/cold-start/infer', request)];
      assert.deepEqual([model.status, infer.status], [200, 200], 'once ready, the model answers');
      // Warmup finished before readiness turned true (log times are the server's own clock, in ms).
      const warmed = lines().find((l) => l.msg === 'model version warmed up') as { time: string; runs?: number } | undefined;
      assert.ok(warmed, `warmup ran; log:\n${log}`);
      assert.equal(warmed.runs, 8, 'the declared number of warmup runs');
      assert.ok(Date.parse(warmed.time) <= last.at, 'the warmup ended before ready was first seen true');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      repo.remove();
    }
  });
});
