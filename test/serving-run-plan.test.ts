// The serving defaults chosen per model at load (src/runtime/run-plan.ts): where runs compute, batching, thread
// counts, all shown in /v2/models/{m}/config and the load log line; the same outputs on either thread; and no copy
// of a model's weights left in JavaScript once its session exists.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Writable } from 'node:stream';
import { createModel, writeOnnx } from '../src/formats/onnx/onnx.ts';
import { node, tensor, valueInfo } from '../src/formats/onnx/graph.ts';
import { onnxruntimeNodeWorker } from '../src/runtime/onnxruntime-node-worker.ts';
import { onnxruntimeNode, ortSessionOptions } from '../src/runtime/onnxruntime-node.ts';
import { autoMaxBatchSize, BATCH_PROBE_ROWS, LONE_RECENT_RUNS, MAIN_THREAD_MAX_US, ONE_THREAD_MAX_US, smallModelThreads, TRIAL_RUNS, TRIAL_UNTIMED } from '../src/runtime/run-plan.ts';
import { ServedModelVersion } from '../src/runtime/served-model.ts';
import type { Backend } from '../src/runtime/backend.ts';
import { decodeInferResponse, requestFromJson } from '../src/core/index.ts';
import { createLogger, serve, type RunningServer } from '../src/serve/index.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';
import { call, exampleModel, tempRepository } from './support/serving.ts';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

type Params = Record<string, string>;
async function parametersOf(server: RunningServer, model: string): Promise<Params & { max_batch_size: string }> {
  const c = (await call(server.url, 'GET', `/v2/models/${model}/config`)).json() as { max_batch_size: number; parameters: Record<string, { string_value: string }> };
  return { ...Object.fromEntries(Object.entries(c.parameters).map(([k, v]) => [k, v.string_value])), max_batch_size: String(c.max_batch_size) };
}

describe('run plan: main thread vs worker thread', () => {
  const repo = tempRepository();
  const lines: Record<string, unknown>[] = [];
  let server: RunningServer;
  before(async () => {
    for (const m of ['mlp', 'digits']) {
      repo.add(`${m}_main`, '1', exampleModel(m));
      repo.config(`${m}_main`, { run_on: 'main' });
      repo.add(`${m}_worker`, '1', exampleModel(m));
      repo.config(`${m}_worker`, { run_on: 'worker', intra_op_threads: 1 });
    }
    repo.add('auto', '1', exampleModel('mlp'));
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
        done();
      },
    });
    server = await serve({ model: repo.root, port: 0, logger: createLogger('info', sink) });
  });
  after(async () => {
    await server?.close();
    repo.remove();
  });

  it('the overrides are obeyed and reported; outputs are identical on both threads, batched or not', async () => {
    for (const m of ['mlp', 'digits']) {
      const main = await parametersOf(server, `${m}_main`);
      const worker = await parametersOf(server, `${m}_worker`);
      assert.equal(main.execution_thread, 'main');
      assert.equal(main.execution_thread_reason, 'configured (run_on: main)');
      assert.equal(worker.execution_thread, 'worker');
      assert.equal(worker.execution_thread_reason, 'configured (run_on: worker)');
      assert.equal(worker.intra_op_thread_count, '1');
      const single = JSON.parse(readFileSync(join(EXAMPLES_DIR, m, 'requests', 'single.json'), 'utf8'));
      const batch = JSON.parse(readFileSync(join(EXAMPLES_DIR, m, 'requests', 'batch-10.json'), 'utf8'));
      const expected = JSON.parse(readFileSync(join(EXAMPLES_DIR, m, 'expected.json'), 'utf8'));
      for (const body of [single, batch]) {
        // Several at once, so the batcher joins them on either thread.
        const answers = await Promise.all(
          [`${m}_main`, `${m}_worker`, `${m}_main`, `${m}_worker`].map(async (name) => {
            const r = await call(server.url, 'POST', `/v2/models/${name}/infer`, body);
            assert.equal(r.status, 200, r.text);
            return (r.json() as { outputs: { name: string; shape: number[]; data: number[] }[] }).outputs;
          }),
        );
        for (const a of answers) assert.deepEqual(a, answers[0]);
      }
      // And both equal the framework's own saved output.
      const want = expected['single.json'].outputs as Record<string, { data: number[] }>;
      const got = (await call(server.url, 'POST', `/v2/models/${m}_main/infer`, single)).json() as { outputs: { name: string; data: number[] }[] };
      for (const o of got.outputs) {
        o.data.forEach((x, i) => assert.ok(Math.abs(x - want[o.name].data[i]) <= 1e-4 * Math.max(1, Math.abs(want[o.name].data[i])), `${m} ${o.name}[${i}]: ${x}`));
      }
    }
  });

  it('a model with no config: batching on with no added delay, thread and threads chosen, all in the config and the load log line', async () => {
    const p = await parametersOf(server, 'auto');
    assert.equal(p.dynamic_batching_source, 'auto');
    assert.ok(Number(p.max_batch_size) > 1);
    const line = lines.find((l) => l.model === 'auto' && l.msg === 'model version loaded') as { run: Record<string, unknown>; batching: { maxBatchSize: number; maxQueueDelayMs: number } } | undefined;
    assert.ok(line, 'a load line for the model');
    assert.equal(line.run.thread, p.execution_thread);
    assert.equal(line.run.why, p.execution_thread_reason);
    assert.equal(String(line.run.intraOpThreads), p.intra_op_thread_count);
    // onnxruntime's pool stops spinning when a run returns, unless asked to spin on.
    assert.equal(p.force_spinning_stop, '1');
    assert.equal(line.run.spinAfterRun, false);
    assert.equal(line.run.batching, 'auto');
    assert.deepEqual(line.batching, { maxBatchSize: Number(p.max_batch_size), maxQueueDelayMs: 0 });
    assert.equal(String(line.run.memoryBytes), p.memory_bytes);
  });

  it('dais_model_memory_bytes reports each loaded version', async () => {
    const text = (await call(server.url, 'GET', '/metrics')).text;
    for (const m of ['auto', 'mlp_main', 'digits_worker']) assert.match(text, new RegExp(`dais_model_memory_bytes\\{model="${m}",version="1"\\} \\d+`));
  });
});

/** An ONNX model whose weights are one float initializer of `count` values, read by index: y = W[x]. */
function heavyModel(count: number): Uint8Array {
  const w = new Float32Array(count).map((_, i) => i % 1000);
  return writeOnnx(
    createModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'heavy',
        node: [node('Gather', ['w', 'x'], ['y'])],
        initializer: [tensor('w', [count], w)],
        input: [valueInfo('x', 7, [-1, 1])],
        output: [valueInfo('y', 1, [-1, 1])],
      },
    }),
  );
}

describe('model weights are not kept in JavaScript', () => {
  const repo = tempRepository();
  after(() => repo.remove());

  it('serving a model file: the weights never become an ArrayBuffer on this thread', async () => {
    repo.write('heavy', '1', heavyModel(16 << 20)); // 64 MiB of weights
    const size = statSync(join(repo.root, 'heavy', '1', 'model.onnx')).size;
    gc();
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const probe = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 1);
    const server = await serve({ model: repo.root, port: 0, warmUp: false });
    clearInterval(probe);
    try {
      gc();
      const held = process.memoryUsage().arrayBuffers - before;
      assert.ok(held < size / 8, `${held} bytes of ArrayBuffers held after loading a ${size}-byte model`);
      assert.ok(peak - before < size / 8, `${peak - before} bytes of ArrayBuffers at the peak of loading a ${size}-byte model`);
      assert.equal((await parametersOf(server, 'heavy')).execution_thread, 'worker');
    } finally {
      await server.close();
    }
  });

  it('bytes given to the worker backend are moved to its thread, not copied', async () => {
    const bytes = heavyModel(1 << 20);
    const length = bytes.byteLength;
    const session = await onnxruntimeNodeWorker.createSession(bytes, { intraOpThreads: 1 });
    try {
      assert.equal(bytes.byteLength, 0, 'the caller no longer holds the bytes (transferred)');
      assert.ok(length > 4 << 20);
      const [y] = await session.run([{ name: 'x', datatype: 'INT64', shape: [2, 1], data: new BigInt64Array([12345n, 7n]) }], ['y']);
      assert.deepEqual([...(y.data as Float32Array)], [345, 7]);
    } finally {
      await session.dispose();
    }
  });
});

describe('worker sessions: big feeds are moved to the worker thread and handed back', () => {
  it('answers as the main thread does and leaves the request\'s tensors readable after the run', async () => {
    const model = exampleModel('mlp');
    const worker = await onnxruntimeNodeWorker.createSession(model, { intraOpThreads: 1 });
    const main = await onnxruntimeNode.createSession(model, { intraOpThreads: 1 });
    try {
      const rows = 64; // 64 × 784 FP32 = 200 KB: over the size that is moved rather than copied
      const make = () => new Float32Array(rows * 784).map((_, i) => ((i * 7919) % 1000) / 1000);
      const feed = { name: 'input', datatype: 'FP32' as const, shape: [rows, 784], data: make() };
      const before = feed.data;
      const [expected] = await main.run([{ ...feed, data: make() }], ['probabilities']);
      const [got] = await worker.run([feed], ['probabilities']);
      assert.deepEqual(got.data, expected.data);
      // The buffer went to the worker (the original array is detached) and came back into the same tensor.
      assert.equal(before.byteLength, 0, 'moved, not copied');
      assert.deepEqual(feed.data, make(), 'the tensor reads its values again after the run');
      // A small feed is copied as before: the caller's array is untouched.
      const small = { name: 'input', datatype: 'FP32' as const, shape: [1, 784], data: make().slice(0, 784) };
      const kept = small.data;
      await worker.run([small], ['probabilities']);
      assert.equal(small.data, kept);
      assert.equal(kept.byteLength, 784 * 4);
    } finally {
      await worker.dispose();
      await main.dispose();
    }
  });
});

describe('onnxruntime session options', () => {
  it('the intra-op pool stops spinning when a run returns unless spinAfterRun asks otherwise; allow_spinning passes through', () => {
    assert.deepEqual(ortSessionOptions({ intraOpThreads: 2 }).extra, { session: { force_spinning_stop: '1' } });
    assert.deepEqual(ortSessionOptions({ spinAfterRun: true }).extra, { session: {} });
    assert.deepEqual(ortSessionOptions({ allowSpinning: false }).extra, { session: { intra_op: { allow_spinning: '0' }, force_spinning_stop: '1' } });
  });
});

describe('worker threads for small models', () => {
  it('a model under 1 ms a run gets one intra-op thread on its worker unless threads were configured', () => {
    const chosen = { intraOpThreads: 2, allowSpinning: false };
    assert.deepEqual(smallModelThreads(chosen, undefined, 212), { intraOpThreads: 1, allowSpinning: undefined });
    assert.equal(smallModelThreads(chosen, undefined, ONE_THREAD_MAX_US), chosen, 'from 1 ms on, the cores split as before');
    assert.equal(smallModelThreads(chosen, undefined, undefined), chosen, 'not timed: as before');
    assert.equal(smallModelThreads(chosen, 2, 212), chosen, '--threads / intra_op_threads win');
    assert.equal(smallModelThreads(chosen, 0, 212), chosen, "0 (onnxruntime's choice) is a choice too");
  });
});

describe('big feeds moved to worker threads are never shared', () => {
  it('a shadow version and two instances warming up each get their own data: the served answer equals the reference', async () => {
    const repo = tempRepository();
    repo.add('mlp', '1');
    repo.add('mlp', '2');
    // Worker sessions, two instances each (warm-up runs the same feeds on both), version 2 shadowing version 1.
    writeFileSync(join(repo.root, 'mlp', 'config.json'), JSON.stringify({ run_on: 'worker', instance_count: 2, traffic: { '1': 1 }, shadow: '2', version_policy: { all: true } }));
    const server = await serve({ model: repo.root, port: 0 });
    const main = await onnxruntimeNode.createSession(exampleModel('mlp'), { intraOpThreads: 1 });
    try {
      const rows = 64; // 200 KB of FP32: over the size that is moved rather than copied
      const x = new Float32Array(rows * 784).map((_, i) => ((i * 7919) % 1000) / 1000);
      const [expected] = await main.run([{ name: 'input', datatype: 'FP32', shape: [rows, 784], data: x.slice() }], ['probabilities']);
      const header = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 784], parameters: { binary_data_size: x.byteLength } }], parameters: { binary_data_output: true } }));
      const body = new Uint8Array(header.length + x.byteLength);
      body.set(header);
      body.set(new Uint8Array(x.buffer), header.length);
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${server.url}/v2/models/mlp/infer`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } });
        assert.equal(res.status, 200, await res.clone().text());
        const answer = decodeInferResponse(new Uint8Array(await res.arrayBuffer()), Number(res.headers.get('inference-header-content-length')));
        assert.deepEqual(answer.outputs[0].data, expected.data);
      }
    } finally {
      await main.dispose();
      await server.close({ timeoutMs: 1000 });
    }
  });
});

describe('run plan: a model that cannot be timed at load is timed on its first runs', () => {
  const repo = tempRepository();
  let server: RunningServer;
  before(async () => {
    repo.add('short', '1', join(FIXTURES, 'variable-length.onnx'));
    repo.add('long', '1', join(FIXTURES, 'variable-length-slow.onnx'));
    server = await serve({ model: repo.root, port: 0 });
  });
  after(async () => {
    await server?.close();
    repo.remove();
  });

  const infer = async (model: string, row: number[]) => {
    const r = await call(server.url, 'POST', `/v2/models/${model}/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, row.length], data: row }] });
    assert.equal(r.status, 200, r.text);
    return (r.json() as { outputs: { data: number[] }[] }).outputs[0].data[0];
  };

  it('starts on the main thread on trial, then stays or moves as its measured runs say, answering the same throughout', async () => {
    for (const m of ['short', 'long']) {
      const p = await parametersOf(server, m);
      assert.equal(p.execution_thread, 'main', m);
      assert.match(p.execution_thread_reason, /keeps it from being timed at load/, m);
    }
    const row = Array.from({ length: 64 }, (_, i) => (i % 7) / 7);
    const sum = row.reduce((a, b) => a + b, 0);
    // The Gram matrix of 2048 equal rows: every entry is the row's squared norm (its float32 mean over 4 M entries
    // drifts by about 0.5%, and differently with another thread count).
    const norm2 = row.reduce((a, b) => a + b * b, 0);
    const expected: Record<string, [number, number]> = { short: [sum, 1e-5], long: [norm2, 2e-2] };
    /** Requests until the trial has decided (a worker session may take a moment to make); every answer checked. */
    const settle = async (m: string) => {
      for (let i = 0; i < 100; i++) {
        const got = await infer(m, row);
        const [want, tolerance] = expected[m];
        assert.ok(Math.abs(got - want) / want < tolerance, `${m}: ${got} vs ${want}`);
        const p = await parametersOf(server, m);
        if (!/are timed here/.test(p.execution_thread_reason)) return p;
        if (i >= 16) await new Promise((r) => setTimeout(r, 20));
      }
      assert.fail(`${m}: the trial never decided`);
    };
    for (const m of ['short', 'long']) {
      const p = await settle(m);
      // The decision follows the measurement (which depends on this machine's load, so both outcomes are valid).
      const us = Number(p.batch1_compute_us);
      assert.ok(us > 0, `${m}: the fastest trial run is reported`);
      if (us > MAIN_THREAD_MAX_US) {
        assert.equal(p.execution_thread, 'worker', m);
        assert.match(p.execution_thread_reason, /took \d+ µs( at best)?, more than a hand-off .* then moved to a worker thread/, m);
      } else {
        assert.equal(p.execution_thread, 'main', m);
        assert.match(p.execution_thread_reason, /first 16 runs took \d+ µs at best, less than a hand-off/, m);
      }
      const [want, tolerance] = expected[m];
      const got = await infer(m, row);
      assert.ok(Math.abs(got - want) / want < tolerance, `${m} after the decision: ${got} vs ${want}`);
    }
    // Milliseconds per run: always moved.
    assert.equal((await parametersOf(server, 'long')).execution_thread, 'worker');
  });
});

describe('run plan: the trial times one row run again at once, not the request\'s own run', () => {
  it('runs each request as sent, then one row of it back to back, and reports that row\'s time', async () => {
    // A spy around real onnxruntime-node sessions: which shapes each run had, and in what order.
    const runs: number[][] = [];
    const spy: Backend = {
      name: 'spy',
      async createSession(source, options) {
        const s = await onnxruntimeNode.createSession(source, options);
        return { ...s, run: (feeds, names) => (runs.push(feeds[0].shape), s.run(feeds, names)) };
      },
    };
    const path = join(FIXTURES, 'variable-length.onnx');
    const model = await ServedModelVersion.load(path, {
      name: 'v', version: '1', backend: onnxruntimeNodeWorker, mainThreadBackend: spy, batching: { maxBatchSize: 8, maxQueueDelayMs: 0 }, batchingAuto: true, modelBytes: statSync(path).size,
    });
    try {
      const row = Array.from({ length: 64 }, (_, i) => (i % 7) / 7);
      const rows = 5;
      const x = new Float32Array(rows * row.length);
      for (let r = 0; r < rows; r++) x.set(row, r * row.length);
      const answer = await model.infer({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, row.length], data: x }] });
      const sum = row.reduce((a, b) => a + b, 0);
      assert.equal(answer.outputs[0].shape[0], rows);
      for (const v of answer.outputs[0].data as Float32Array) assert.ok(Math.abs(v - sum) / sum < 1e-5, `${v} vs ${sum}`);
      // The request's own run (all 5 rows), then its first row alone: the run that is timed.
      assert.deepEqual(runs, [[rows, 64], [1, 64]]);
      // Until the trial decides, every request is followed by its timed row; after, runs are the requests' own.
      for (let i = 0; i < 40 && /are timed here/.test(model.configuration().parameters?.execution_thread_reason?.string_value ?? ''); i++) {
        await model.infer({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, row.length], data: x }] });
        await new Promise((r) => setTimeout(r, 5));
      }
      const p = model.configuration().parameters!;
      assert.doesNotMatch(p.execution_thread_reason.string_value, /are timed here/, 'the trial decided');
      const reason = p.execution_thread_reason.string_value;
      // Two untimed rows, then 16 timed ones (fewer only when one run took over TRIAL_SLOW_US and moved it at once).
      if (!/a run took/.test(reason)) assert.equal(runs.filter((s) => s[0] === 1).length, TRIAL_UNTIMED + TRIAL_RUNS, reason);
      const before = runs.length;
      await model.infer({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, row.length], data: x }] });
      assert.equal(runs.length, before + (p.execution_thread.string_value === 'main' ? 1 : 0), 'no row is timed after the decision');
    } finally {
      await model.dispose();
    }
  });
});

describe('run plan: a model its trial moves to a worker keeps its main-thread session for lone requests', () => {
  /** onnxruntime-node on this thread, each run made 0.4 ms longer (over MAIN_THREAD_MAX_US: the trial moves it); its runs within the call counted. */
  function slowMain(count: { runNow: number }): Backend {
    return {
      name: 'slow-main',
      async createSession(source, options) {
        const s = await onnxruntimeNode.createSession(source, options);
        const wait = () => {
          for (const end = performance.now() + 0.4; performance.now() < end; );
        };
        return {
          ...s,
          run: async (f, n) => {
            const out = await s.run(f, n);
            wait();
            return out;
          },
          runNow: (f, n) => (count.runNow++, s.runNow!(f, n)),
        };
      },
    };
  }
  const row = Array.from({ length: 64 }, (_, i) => (i % 7) / 7);
  const sum = row.reduce((a, b) => a + b, 0);
  const request = () => ({ inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, row.length], data: Float32Array.from(row) }] });
  const check = (answer: { outputs: { data: unknown }[] }, what: string) => {
    const v = (answer.outputs[0].data as Float32Array)[0];
    assert.ok(Math.abs(v - sum) / sum < 1e-5, `${what}: ${v} vs ${sum}`);
  };
  /** Loads the variable-length fixture with the slow main-thread backend and sends requests until the trial has moved it. */
  async function moved(count: { runNow: number }, loneSession?: boolean): Promise<ServedModelVersion> {
    const path = join(FIXTURES, 'variable-length.onnx');
    const model = await ServedModelVersion.load(path, {
      name: 'v', version: '1', backend: onnxruntimeNodeWorker, mainThreadBackend: slowMain(count), batching: { maxBatchSize: 8, maxQueueDelayMs: 0 }, batchingAuto: true, modelBytes: statSync(path).size, loneSession,
    });
    for (let i = 0; i < 100 && model.configuration().parameters?.execution_thread?.string_value !== 'worker'; i++) {
      check(await model.infer(request()), `request ${i} while on trial`);
      if (i >= TRIAL_UNTIMED + TRIAL_RUNS) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(model.configuration().parameters!.execution_thread.string_value, 'worker', 'the trial moved it');
    return model;
  }

  it('a lone request runs on the main thread within the call; requests that arrive together go to the worker', async () => {
    const count = { runNow: 0 };
    const model = await moved(count);
    try {
      const p = model.configuration().parameters!;
      assert.equal(p.lone_request_thread.string_value, 'main');
      assert.match(p.lone_request_thread_reason.string_value, /its runs on this thread took \d+ µs at best, at most 10 ms, so its session here stays/);
      const before = count.runNow;
      // Each in a turn of the event loop of its own, as requests from one client over HTTP come (a request in the turn
      // of another's run waits for the turn's end: requests arriving together may batch).
      const nextTurn = () => new Promise((r) => setImmediate(r));
      for (let i = 0; i < 3; i++) {
        await nextTurn();
        check(await model.infer(request()), `lone request ${i}`);
      }
      assert.equal(count.runNow - before, 3, 'each lone request ran on the main-thread session');
      await nextTurn();
      const now = model.inferNow(request());
      assert.ok(now, 'answered within the call');
      check(now, 'inferNow');
      // Eight at once: the first runs here, the rest wait for its turn's end and go to the worker.
      await nextTurn();
      const at = count.runNow;
      const answers = await Promise.all(Array.from({ length: 8 }, () => model.infer(request())));
      answers.forEach((a, i) => check(a, `request ${i} of 8 together`));
      assert.equal(count.runNow - at, 1, 'only the first of a burst runs on the main thread');
    } finally {
      await model.dispose();
    }
  });

  it('a model that is not batched stays on the main thread: the hand-off would cost more than its time back', async () => {
    const count = { runNow: 0 };
    const path = join(FIXTURES, 'variable-length.onnx');
    // The same 0.4 ms runs, batching not asked for.
    const model = await ServedModelVersion.load(path, { name: 'v', version: '1', backend: onnxruntimeNodeWorker, mainThreadBackend: slowMain(count), modelBytes: statSync(path).size });
    try {
      assert.match(model.configuration().parameters!.execution_thread_reason.string_value, /moves to a worker thread if the fastest takes more than 10 ms \(it is not batched\)/);
      for (let i = 0; i < TRIAL_UNTIMED + TRIAL_RUNS; i++) check(await model.infer(request()), `request ${i} on trial`);
      const p = model.configuration().parameters!;
      assert.equal(p.execution_thread.string_value, 'main');
      assert.match(p.execution_thread_reason.string_value, /first 16 runs took \d+ µs at best, less than 10 ms for a model that is not batched/);
      assert.ok(Number(p.batch1_compute_us.string_value) > MAIN_THREAD_MAX_US, `${p.batch1_compute_us.string_value} µs: over the hand-off's cost, where a batched model moves`);
      await new Promise((r) => setImmediate(r));
      const before = count.runNow;
      const now = model.inferNow(request());
      assert.ok(now, 'answered within the call');
      check(now, 'inferNow');
      assert.equal(count.runNow - before, 1);
    } finally {
      await model.dispose();
    }
  });

  it('with lone sessions turned off (loneSession: false) its main-thread session is let go', async () => {
    const count = { runNow: 0 };
    const model = await moved(count, false);
    try {
      assert.equal(model.configuration().parameters!.lone_request_thread.string_value, 'worker');
      for (let i = 0; i < 3; i++) check(await model.infer(request()), `request ${i}`);
      assert.equal(count.runNow, 0, 'nothing ran within the call');
      assert.equal(model.inferNow(request()), undefined);
    } finally {
      await model.dispose();
    }
  });
});

describe('run plan: a model on trial that cannot run one row', () => {
  it('answers the request with its own run and stays on the main thread, saying why', async () => {
    // y = x for [rows, length], through a reshape to [2, rows / 2, length]: an odd number of rows fails.
    const dir = mkdtempSync(join(tmpdir(), 'dais-even-rows-'));
    const path = join(dir, 'model.onnx');
    writeFileSync(
      path,
      writeOnnx(
        createModel({
          irVersion: 8,
          opsetImport: [{ domain: '', version: 13 }],
          graph: {
            name: 'even_rows',
            node: [
              node('Shape', ['x'], ['s']),
              node('Slice', ['s', 'one', 'two'], ['length']),
              node('Concat', ['halves', 'length'], ['target'], { axis: 0 }),
              node('Reshape', ['x', 'target'], ['r']),
              node('Reshape', ['r', 's'], ['y']),
            ],
            initializer: [tensor('halves', [2], BigInt64Array.of(2n, -1n)), tensor('one', [1], BigInt64Array.of(1n)), tensor('two', [1], BigInt64Array.of(2n))],
            input: [valueInfo('x', 1, [-1, -1])],
            output: [valueInfo('y', 1, [-1, -1])],
          },
        }),
      ),
    );
    const model = await ServedModelVersion.load(path, {
      name: 'even', version: '1', backend: onnxruntimeNodeWorker, mainThreadBackend: onnxruntimeNode, batching: { maxBatchSize: 8, maxQueueDelayMs: 0 }, batchingAuto: true, modelBytes: statSync(path).size,
    });
    try {
      const x = Float32Array.from({ length: 2 * 4 }, (_, i) => i + 0.5);
      for (let k = 0; k < 4; k++) {
        const answer = await model.infer({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: x }] });
        assert.deepEqual(Array.from(answer.outputs[0].data as Float32Array), Array.from(x), `request ${k} answered by its own run`);
      }
      const p = model.configuration().parameters!;
      assert.equal(p.execution_thread.string_value, 'main');
      assert.match(p.execution_thread_reason.string_value, /could not be timed one row at a time/);
    } finally {
      await model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('run plan: automatic batching on a worker thread only where a batch computes its rows faster', () => {
  /** Real worker sessions of the MLP whose runs also take `fixedMs + rows × rowMs` (1.5 × rowMs a row when batched). */
  const slowed = (fixedMs: number, rowMs: number): Backend => ({
    name: 'slowed',
    async createSession(source, options) {
      const s = await onnxruntimeNodeWorker.createSession(source, options);
      return {
        ...s,
        run: async (feeds, names) => {
          // Rows batched cost 1.5 × as much each: clear of the threshold however late a loaded machine's timers fire.
          await new Promise((r) => setTimeout(r, fixedMs + feeds[0].shape[0] * rowMs * (feeds[0].shape[0] > 1 ? 1.5 : 1)));
          return s.run(feeds, names);
        },
        dispose: () => s.dispose(),
      };
    },
  });
  const load = (backend: Backend) =>
    ServedModelVersion.load(exampleModel('mlp'), { name: 'mlp', version: '1', backend, runOn: 'worker', batching: { maxBatchSize: 64, maxQueueDelayMs: 0 }, batchingAuto: true });

  it('a model whose rows cost the same batched or not runs unbatched, and says why', async () => {
    const model = await load(slowed(0, 4));
    try {
      const c = model.configuration();
      assert.equal(c.max_batch_size, 0);
      assert.equal(c.parameters?.dynamic_batching_source.string_value, 'off');
      assert.match(c.parameters?.dynamic_batching_reason?.string_value ?? '', /^auto: a batch of 8 rows computed in [\d.]+ ms, [\d.]+ × 8 batch-1 runs/);
    } finally {
      await model.dispose();
    }
  });

  it('a run too long for a batch within the time budget is timed at 8 rows all the same, and batches them when they cost no more each', async () => {
    // 30 ms a run: the 50 ms budget alone would leave one row.
    assert.equal(autoMaxBatchSize('worker', 30_000), 1);
    const model = await load(slowed(30, 0.1));
    try {
      const c = model.configuration();
      assert.equal(c.max_batch_size, BATCH_PROBE_ROWS);
      assert.equal(c.parameters?.dynamic_batching_source.string_value, 'auto');
      assert.match(c.parameters?.dynamic_batching_reason?.string_value ?? '', /^auto: a batch of 8 rows computed in [\d.]+ ms, [\d.]+ × 8 batch-1 runs .*at most 1\.05 ×\); batches of up to 8 rows, longer than the 50 ms automatic batches are otherwise sized to, form only from requests already waiting$/);
    } finally {
      await model.dispose();
    }
  });

  it('a run too long for the time budget whose batched rows cost more each stays unbatched, and says why', async () => {
    const model = await load(slowed(0, 30));
    try {
      const c = model.configuration();
      assert.equal(c.max_batch_size, 0);
      assert.equal(c.parameters?.dynamic_batching_source.string_value, 'off');
      assert.match(c.parameters?.dynamic_batching_reason?.string_value ?? '', /^auto: a batch of 8 rows computed in [\d.]+ ms, [\d.]+ × 8 batch-1 runs .*at most 1\.05 ×\)$/);
    } finally {
      await model.dispose();
    }
  });

  it('a model whose batch computes a row in a fraction of a batch-1 run keeps batching', async () => {
    // 2 ms a run: a batch of 8 fits the 50 ms budget even on a loaded machine, so no reason is given.
    const model = await load(slowed(2, 0.1));
    try {
      const c = model.configuration();
      assert.ok(c.max_batch_size > 1, String(c.max_batch_size));
      assert.equal(c.parameters?.dynamic_batching_source.string_value, 'auto');
      assert.equal(c.parameters?.dynamic_batching_reason, undefined);
    } finally {
      await model.dispose();
    }
  });
});

describe('worker sessions report each run\'s compute time without the hand-off', () => {
  it('lastComputeUs is the host\'s own time for the run: positive, and under the wall time of the call', async () => {
    const s = await onnxruntimeNodeWorker.createSession(exampleModel('digits'), { intraOpThreads: 1 });
    try {
      assert.equal(s.lastComputeUs, undefined, 'nothing is reported before a run');
      const feeds = [{ name: s.inputs[0].name, datatype: s.inputs[0].datatype, shape: s.inputs[0].shape.map((d) => (d < 0 ? 1 : d)), data: new Float32Array(64) }];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        await s.run(feeds, [s.outputs[0].name]);
        const wallUs = (performance.now() - t0) * 1000;
        assert.ok(s.lastComputeUs! > 0 && s.lastComputeUs! < wallUs, `${s.lastComputeUs} µs of ${wallUs} µs`);
      }
    } finally {
      await s.dispose();
    }
  });
});

describe('run plan: a model too big to try on the main thread moves there when its run is short and batching gains nothing', () => {
  /**
   * Real worker sessions of the MLP whose runs also take `fixedMs + rows × rowMs` (1.5 × rowMs a row when batched; a spy: it reports no
   * lastComputeUs, so the wall time counts as the compute).
   */
  const slowed = (fixedMs: number, rowMs = 0): Backend => ({
    name: 'slowed',
    async createSession(source, options) {
      const s = await onnxruntimeNodeWorker.createSession(source, options);
      // Rows batched cost 1.5 × as much each: clear of the threshold however late a loaded machine's timers fire.
      const delay = (rows: number) => fixedMs + rows * rowMs * (rows > 1 ? 1.5 : 1);
      return { ...s, run: async (feeds, names) => (await new Promise((r) => setTimeout(r, delay(feeds[0].shape[0]))), s.run(feeds, names)), dispose: () => s.dispose() };
    },
  });
  const load = (backend: Backend, runOn: 'auto' | 'worker' = 'auto') =>
    ServedModelVersion.load(exampleModel('mlp'), { name: 'mlp', version: '1', backend, mainThreadBackend: onnxruntimeNode, runOn, cpuBudget: 2, modelBytes: 64 << 20, batching: { maxBatchSize: 64, maxQueueDelayMs: 0 }, batchingAuto: true });

  it('a run under MAIN_THREAD_SHORT_RUN_US whose rows cost the same batched: made again on the main thread with the worker\'s threads, unbatched, answers the same', async () => {
    const model = await load(slowed(0, 2));
    try {
      const c = model.configuration();
      const p = c.parameters!;
      assert.equal(p.execution_thread.string_value, 'main');
      assert.match(p.execution_thread_reason.string_value, /computes in [\d.]+ ms on a worker thread, at most 10 ms, and batching would not speed it up enough \(a batch of \d+ rows computed a row in [\d.]+ × a batch-1 run; at most 0.8 × keeps it on the worker to batch\), so it runs on this thread/);
      assert.equal(p.intra_op_thread_count.string_value, '2');
      // Unbatched: its run (the worker's compute time, not timed again here) is over the main thread's batch budget.
      assert.equal(c.max_batch_size, 0);
      assert.equal(p.batch1_compute_us?.string_value !== undefined && Number(p.batch1_compute_us.string_value) >= 2000, true, p.batch1_compute_us?.string_value);
      const single = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'requests', 'single.json'), 'utf8'));
      const want = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'expected.json'), 'utf8'))['single.json'].outputs as Record<string, { data: number[] }>;
      const answer = await model.infer(requestFromJson(single));
      for (const o of answer.outputs) [...(o.data as Float32Array)].forEach((x, i) => assert.ok(Math.abs(x - want[o.name].data[i]) <= 1e-4 * Math.max(1, Math.abs(want[o.name].data[i])), `${o.name}[${i}]`));
    } finally {
      await model.dispose();
    }
  });

  it('bytes (moved to the worker) stay there; a main-thread session that cannot be made leaves it on the worker', async () => {
    const fromBytes = await ServedModelVersion.load(new Uint8Array(readFileSync(exampleModel('mlp'))), { name: 'mlp', version: '1', backend: slowed(0), mainThreadBackend: onnxruntimeNode, runOn: 'auto', cpuBudget: 2, modelBytes: 64 << 20 });
    const refused: Backend = { name: 'refuses', createSession: () => Promise.reject(new Error('no room here')) };
    const noMain = await ServedModelVersion.load(exampleModel('mlp'), { name: 'mlp', version: '1', backend: slowed(0), mainThreadBackend: refused, runOn: 'auto', cpuBudget: 2, modelBytes: 64 << 20 });
    try {
      assert.equal(fromBytes.configuration().parameters!.execution_thread.string_value, 'worker');
      const p = noMain.configuration().parameters!;
      assert.equal(p.execution_thread.string_value, 'worker');
      assert.match(p.execution_thread_reason.string_value, /could not be made on the main thread \(no room here\)/);
      const single = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'requests', 'single.json'), 'utf8'));
      for (const m of [fromBytes, noMain]) assert.equal((await m.infer(requestFromJson(single))).outputs.length, 1);
    } finally {
      await fromBytes.dispose();
      await noMain.dispose();
    }
  });

  it('a longer run, a run that batching speeds up, or run_on: worker stays on the worker thread', async () => {
    // Lone requests: the main thread's session only for the short run (LONE_RUN_MAX_US) that is not run_on: worker.
    // The reason says why it stays: the run's length, or the batch that was timed.
    const cases = [
      [await load(slowed(15)), true, 'worker', /^auto: the model file is too large to try on the main thread; a batch-1 run computes in [\d.]+ ms there, over the 10 ms the main thread may block for$/],
      [await load(slowed(4)), true, 'main', /^auto: the model file is too large to try on the main thread; it stays there to batch: a batch of \d+ rows computed a row in [\d.]+ × a batch-1 run \([\d.]+ ms; at most 0\.8 × keeps batching\)$/],
      [await load(slowed(0, 2), 'worker'), false, 'worker', /^configured \(run_on: worker\)$/],
    ] as const;
    // Every case's sessions are released however an assertion ends (a worker left open keeps the file running).
    try {
      for (const [model, batched, lone, why] of cases) {
        const c = model.configuration();
        assert.equal(c.parameters!.execution_thread.string_value, 'worker');
        assert.match(c.parameters!.execution_thread_reason.string_value, why);
        assert.equal(c.max_batch_size > 1, batched, String(c.max_batch_size));
        assert.equal(c.parameters!.lone_request_thread.string_value, lone);
      }
    } finally {
      await Promise.all(cases.map(([model]) => model.dispose()));
    }
  });
});

describe('run plan: a worker model that batches, with a short run, answers lone requests on the main thread', () => {
  /**
   * Real worker sessions of the MLP whose runs also take 4 ms + `extra.ms` (batched rows cost nothing more); counts
   * their runs. The worker's own time for a run (Session.lastComputeUs) counts the 4 ms, and `extra.ms` too unless
   * `extra.handOff` says that was the way there and back (a slow wake on a busy host), not the run.
   */
  const extra = { ms: 0, runs: 0, handOff: false };
  const slowed: Backend = {
    name: 'slowed',
    async createSession(source, options) {
      const s = await onnxruntimeNodeWorker.createSession(source, options);
      let own: number | undefined;
      return {
        ...s,
        run: async (feeds, names) => {
          extra.runs++;
          const ms = 4 + extra.ms;
          await new Promise((r) => setTimeout(r, ms));
          const out = await s.run(feeds, names);
          own = (s.lastComputeUs ?? 0) + (extra.handOff ? 4 : ms) * 1000;
          return out;
        },
        get lastComputeUs() {
          return own;
        },
        dispose: () => s.dispose(),
      };
    },
  };
  const load = () =>
    ServedModelVersion.load(exampleModel('mlp'), { name: 'mlp', version: '1', backend: slowed, mainThreadBackend: onnxruntimeNode, runOn: 'auto', cpuBudget: 2, modelBytes: 64 << 20, batching: { maxBatchSize: 64, maxQueueDelayMs: 0 }, batchingAuto: true });
  const single = () => requestFromJson(JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'requests', 'single.json'), 'utf8')));
  const want = () => JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'expected.json'), 'utf8'))['single.json'].outputs as Record<string, { data: number[] }>;
  const checked = (outputs: readonly { name: string; data: unknown }[]) => {
    const w = want();
    for (const o of outputs) [...(o.data as Float32Array)].forEach((x, i) => assert.ok(Math.abs(x - w[o.name].data[i]) <= 1e-4 * Math.max(1, Math.abs(w[o.name].data[i])), `${o.name}[${i}]`));
  };
  const nextTurn = () => new Promise((r) => setImmediate(r));

  it('a lone request runs within the call on the main thread and answers as the worker does; requests that arrive together batch on the worker', async () => {
    const model = await load();
    try {
      const p = model.configuration().parameters!;
      assert.equal(p.execution_thread.string_value, 'worker');
      assert.equal(p.lone_request_thread.string_value, 'main');
      assert.match(p.lone_request_thread_reason.string_value, /^auto: a batch-1 run computes in [\d.]+ ms on the worker thread, so a request that arrives while the worker is idle and nothing is queued runs on this thread without the hand-off, while one of the last 3 runs computed a row in at most 10 ms \(a second session: the model's memory twice; run_on: worker turns it off\)$/);
      // Warmup runs both sessions (each pays its own first run).
      const runs = extra.runs;
      assert.equal(await model.warmUp(), true);
      assert.equal(extra.runs, runs + 1);
      // The first request after load finds the batcher expecting company: the worker answers it.
      checked((await model.infer(single())).outputs);
      await nextTurn();
      const before = extra.runs;
      for (let i = 0; i < 3; i++) {
        const answer = model.inferNow(single());
        assert.ok(answer, 'a lone request is answered within the call');
        checked(answer.outputs);
        await nextTurn();
      }
      // Through infer() too (the path of models with processing steps).
      checked((await model.infer(single())).outputs);
      assert.equal(extra.runs, before, 'no lone request went to the worker');
      // Four at once: the first may run here, the rest queue behind it for the worker, batched.
      const answers = await Promise.all([1, 2, 3, 4].map(() => model.infer(single())));
      for (const a of answers) checked(a.outputs);
      assert.ok(extra.runs > before && extra.runs <= before + 2, String(extra.runs - before));
      // A client's batch is never run here.
      await nextTurn();
      const batch = requestFromJson(JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'requests', 'batch-10.json'), 'utf8')));
      assert.equal(model.inferNow(batch), undefined);
    } finally {
      await model.dispose();
    }
  });

  it('while each of the last LONE_RECENT_RUNS runs computed a row in over LONE_RUN_MAX_US, lone requests go to the worker', async () => {
    const model = await load();
    // A client's batch of ten rows always runs on the worker: at 4 + 120 ms, 12.4 ms a row.
    const batch = () => requestFromJson(JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'requests', 'batch-10.json'), 'utf8')));
    try {
      extra.ms = 120;
      await model.infer(batch());
      await nextTurn();
      assert.ok(model.inferNow(single()), 'one slow run (a thread descheduled, a collection) leaves lone requests here');
      await nextTurn();
      for (let i = 0; i < LONE_RECENT_RUNS; i++) await model.infer(batch());
      await nextTurn();
      assert.equal(model.inferNow(single()), undefined, `${LONE_RECENT_RUNS} slow runs in a row: lone requests wait for the worker`);
      const before = extra.runs;
      extra.ms = 0;
      await model.infer(single());
      assert.equal(extra.runs, before + 1, 'it ran on the worker');
      await nextTurn();
      assert.ok(model.inferNow(single()), 'a short run again: lone requests run here');
    } finally {
      extra.ms = 0;
      await model.dispose();
    }
  });

  it('worker runs slow only on the way there and back (their own time short) leave lone requests here', async () => {
    const model = await load();
    const batch = () => requestFromJson(JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp', 'requests', 'batch-10.json'), 'utf8')));
    try {
      // 124 ms from handing each batch over to its answer, 4 ms of it the worker's run: 0.4 ms a row, not 12.4.
      extra.ms = 120;
      extra.handOff = true;
      for (let i = 0; i < LONE_RECENT_RUNS; i++) assert.equal((await model.infer(batch())).outputs[0].shape[0], 10);
      await nextTurn();
      const answer = model.inferNow(single());
      assert.ok(answer, `${LONE_RECENT_RUNS} runs slow in their hand-off only: lone requests still run here`);
      checked(answer.outputs);
    } finally {
      extra.ms = 0;
      extra.handOff = false;
      await model.dispose();
    }
  });
});
