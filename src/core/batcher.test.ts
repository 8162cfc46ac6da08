import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DynamicBatcher, concatRows, sliceRows } from './batcher.ts';
import { InferenceError } from './errors.ts';
import type { Tensor } from './tensor.ts';

// A small deterministic "model": doubled = 2x, rowsum = sum of each row. It counts its runs and their sizes.
function model(opts: { delayMs?: number; dropBatchDim?: boolean } = {}) {
  const runs: number[] = [];
  const run = async (feeds: Tensor[], outputNames: readonly string[]): Promise<Tensor[]> => {
    const x = feeds[0];
    runs.push(x.shape[0]);
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    const d = x.data as Float32Array;
    const cols = x.shape[1];
    const doubled = Float32Array.from(d, (v) => v * 2);
    const rowsum = new Float32Array(x.shape[0]);
    for (let i = 0; i < x.shape[0]; i++) for (let j = 0; j < cols; j++) rowsum[i] += d[i * cols + j];
    const all: Record<string, Tensor> = {
      doubled: { name: 'doubled', datatype: 'FP32', shape: [...x.shape], data: doubled },
      rowsum: opts.dropBatchDim
        ? { name: 'rowsum', datatype: 'FP32', shape: [], data: Float32Array.of(rowsum.reduce((a, b) => a + b, 0)) }
        : { name: 'rowsum', datatype: 'FP32', shape: [x.shape[0]], data: rowsum },
    };
    return outputNames.map((n) => all[n]);
  };
  return { run, runs };
}

const input = (rows: number, cols: number, start: number): Tensor => ({
  name: 'x',
  datatype: 'FP32',
  shape: [rows, cols],
  data: Float32Array.from({ length: rows * cols }, (_, i) => start + i),
});

describe('DynamicBatcher', () => {
  it('with defer and no queue delay, takes every request queued in this turn into one run, and waits for no later one', async () => {
    const m = model();
    const later: (() => void)[] = [];
    const b = new DynamicBatcher({ instances: 1, batching: { maxBatchSize: 8, maxQueueDelayMs: 0 }, maxQueueSize: 100, run: m.run, defer: (f) => later.push(f) });
    const reqs = [input(1, 3, 0), input(1, 3, 10), input(2, 3, 20)];
    const pending = reqs.map((r) => b.submit([r], ['doubled']));
    assert.deepEqual(m.runs, [], 'no run before the deferred callback');
    assert.equal(later.length, 1, 'one deferred schedule for the whole turn');
    later.shift()!();
    const results = await Promise.all(pending);
    assert.deepEqual(m.runs, [4]);
    assert.deepEqual(Array.from(results[2].outputs[0].data as Float32Array), [40, 42, 44, 46, 48, 50]);
    // A request that cannot be batched (rows above the limit) is not deferred.
    const big = b.submit([input(9, 3, 0)], ['doubled']);
    assert.deepEqual(m.runs, [4, 9]);
    await big;
  });

  it('with defer, a lone client\'s request starts at once after a one-request run; overlapping requests bring deferring back', async () => {
    const m = model();
    const later: (() => void)[] = [];
    const endTurn = () => {
      for (const f of later.splice(0)) f();
    };
    const b = new DynamicBatcher({ instances: 1, batching: { maxBatchSize: 8, maxQueueDelayMs: 0 }, maxQueueSize: 100, run: m.run, defer: (f) => later.push(f) });
    const first = b.submit([input(1, 3, 0)], ['doubled']);
    assert.equal(later.length, 1, 'the first request waits for the turn (others might join it)');
    endTurn();
    await first;
    await new Promise((r) => setImmediate(r)); // the instance is let go just after the result (the run's finally)
    endTurn();
    const second = b.submit([input(1, 3, 0)], ['doubled']);
    assert.deepEqual(m.runs, [1, 1], 'after a run of one request, the next starts without a deferred turn');
    // Two more while the second runs: they queue behind it and run together, and deferring resumes after.
    const overlapping = [b.submit([input(1, 3, 0)], ['doubled']), b.submit([input(1, 3, 0)], ['doubled'])];
    await Promise.all([second, ...overlapping]);
    assert.deepEqual(m.runs, [1, 1, 2]);
    endTurn();
    const next = b.submit([input(1, 3, 0)], ['doubled']);
    assert.deepEqual(m.runs, [1, 1, 2], 'after a run that took two requests, a new one waits for the turn again');
    endTurn();
    await next;
    assert.deepEqual(m.runs, [1, 1, 2, 1]);
  });

  it('with defer and a run that ends within the call, the second request of a turn waits for the turn and takes the rest along', async () => {
    // A synchronous session (onnxruntime-node on the main thread) has finished before the next request of the turn
    // is read: without the turn's own mark, every request would find an idle instance and run alone.
    const runs: number[] = [];
    const later: (() => void)[] = [];
    const b = new DynamicBatcher({
      instances: 1,
      batching: { maxBatchSize: 16, maxQueueDelayMs: 0 },
      maxQueueSize: 100,
      run: async (feeds) => {
        runs.push(feeds[0].shape[0]);
        return [feeds[0]];
      },
      defer: (f) => later.push(f),
    });
    const settle = async () => {
      for (let i = 0; i < 5; i++) await Promise.resolve();
    };
    // A lone client: one run per request, none deferred, turn after turn.
    for (let turn = 0; turn < 3; turn++) {
      const lone = b.submit([input(1, 3, 0)], ['x']);
      await settle(); // the run and its finally, as the event loop drains microtasks between two sockets' callbacks
      if (turn > 0) assert.equal(runs.length, turn + 1, 'after a one-request run, a lone request runs at once');
      for (const f of later.splice(0)) f(); // the turn ends
      await lone;
    }
    const before = runs.length;
    // Sixteen requests read in one turn, each after the previous one's microtasks have drained.
    for (const f of later.splice(0)) f();
    await settle();
    const burst: Promise<unknown>[] = [];
    for (let i = 0; i < 16; i++) {
      burst.push(b.submit([input(1, 3, i)], ['x']));
      await settle();
    }
    for (const f of later.splice(0)) f();
    await Promise.all(burst);
    assert.deepEqual(runs.slice(before), [1, 15], 'the first ran at once, the other fifteen together at the turn\'s end');
  });

  it('runsInCall: requests that cannot share a run, read in a turn that already ran one, run one after another at its end and are answered after the last', async () => {
    // A model with no batching (Silero VAD: its state's batch is on dimension 1). With runs that end within the
    // call, answering each request as soon as its run ends interleaves parsing, runs and writes request by request;
    // running the turn's requests back to back first is what the hand-written server's setImmediate runs do.
    const order: string[] = [];
    const later: (() => void)[] = [];
    const make = (runsInCall: boolean) =>
      new DynamicBatcher({
        instances: 1,
        maxQueueSize: 100,
        run: async (feeds) => {
          order.push(`run ${(feeds[0].data as Float32Array)[0]}`);
          if ((feeds[0].data as Float32Array)[0] === 13) throw new Error('refused');
          return [feeds[0]];
        },
        defer: (f) => later.push(f),
        runsInCall,
      });
    const settle = async () => {
      for (let i = 0; i < 5; i++) await Promise.resolve();
    };
    const burst = async (b: DynamicBatcher) => {
      order.length = 0;
      const answered: Promise<unknown>[] = [];
      for (let i = 10; i < 16; i++) {
        answered.push(
          b.submit([input(1, 3, i)], ['x']).then(
            () => void order.push(`answer ${i}`),
            (e: InferenceError) => void order.push(`refused ${i}: ${e.code}`),
          ),
        );
        await settle();
      }
      for (const f of later.splice(0)) f();
      await Promise.all(answered);
      for (const f of later.splice(0)) f();
      return [...order];
    };
    assert.deepEqual(await burst(make(true)), [
      'run 10', 'answer 10',
      'run 11', 'run 12', 'run 13', 'run 14', 'run 15',
      'answer 11', 'answer 12', 'refused 13: INTERNAL', 'answer 14', 'answer 15',
    ]);
    // Without it (worker threads, browsers), each request runs as soon as the instance is free.
    assert.deepEqual(await burst(make(false)), [
      'run 10', 'answer 10', 'run 11', 'answer 11', 'run 12', 'answer 12', 'run 13', 'refused 13: INTERNAL', 'run 14', 'answer 14', 'run 15', 'answer 15',
    ]);
  });

  it('joins concurrent requests into one run and gives each its own rows back', async () => {
    const m = model();
    const b = new DynamicBatcher({ instances: 1, batching: { maxBatchSize: 8, maxQueueDelayMs: 20 }, maxQueueSize: 100, run: m.run });
    const reqs = [input(1, 3, 0), input(2, 3, 100), input(1, 3, 200)];
    const results = await Promise.all(reqs.map((r) => b.submit([r], ['doubled', 'rowsum'])));
    assert.deepEqual(m.runs, [4]);
    for (let i = 0; i < reqs.length; i++) {
      const own = await m.run([reqs[i]], ['doubled', 'rowsum']);
      assert.deepEqual(results[i].outputs.map((t) => t.shape), own.map((t) => t.shape));
      assert.deepEqual(results[i].outputs.map((t) => Array.from(t.data as Float32Array)), own.map((t) => Array.from(t.data as Float32Array)));
      assert.equal(results[i].batchRows, 4);
    }
  });

  it('sends a full batch at once without waiting for the delay', async () => {
    const m = model();
    const b = new DynamicBatcher({ instances: 1, batching: { maxBatchSize: 4, maxQueueDelayMs: 60_000 }, maxQueueSize: 100, run: m.run });
    const results = await Promise.all([0, 1, 2, 3].map((i) => b.submit([input(1, 2, i * 10)], ['rowsum'])));
    assert.deepEqual(m.runs, [4]);
    assert.deepEqual(results.map((r) => (r.outputs[0].data as Float32Array)[0]), [1, 21, 41, 61]);
  });

  it('never joins requests whose non-batch dimensions differ, and keeps a request that does not fit for the next run', async () => {
    const m = model();
    const b = new DynamicBatcher({ instances: 1, batching: { maxBatchSize: 4, maxQueueDelayMs: 5 }, maxQueueSize: 100, run: m.run });
    const all = await Promise.all([b.submit([input(1, 3, 0)], ['rowsum']), b.submit([input(1, 5, 0)], ['rowsum']), b.submit([input(3, 3, 0)], ['rowsum']), b.submit([input(2, 3, 0)], ['rowsum'])]);
    // [1x3] + [3x3] fill 4 rows; [2x3] waits for the next run; [1x5] runs on its own.
    assert.deepEqual(m.runs, [4, 1, 2]);
    assert.deepEqual(Array.from(all[1].outputs[0].data as Float32Array), [10]);
    assert.deepEqual(Array.from(all[2].outputs[0].data as Float32Array), [3, 12, 21]);
  });

  it('never joins requests that ask for different outputs or name their inputs differently, however they alternate', async () => {
    const m = model();
    const later: (() => void)[] = [];
    const b = new DynamicBatcher({ instances: 1, batching: { maxBatchSize: 16, maxQueueDelayMs: 0 }, maxQueueSize: 100, run: m.run, defer: (f) => later.push(f) });
    const renamed = (t: Tensor): Tensor => ({ ...t, name: 'z' });
    const asked = [
      b.submit([input(1, 3, 0)], ['doubled']),
      b.submit([input(1, 3, 1)], ['rowsum']),
      b.submit([input(1, 3, 2)], ['doubled']),
      b.submit([renamed(input(1, 3, 3))], ['doubled']),
      b.submit([input(1, 3, 4)], ['rowsum']),
      b.submit([input(1, 3, 5)], ['doubled', 'rowsum']),
    ];
    for (const f of later.splice(0)) f();
    const r = await Promise.all(asked);
    assert.deepEqual(m.runs, [2, 2, 1, 1], 'doubled ×2, rowsum ×2, the renamed input alone, both outputs alone');
    assert.deepEqual(r.map((x) => x.outputs.map((o) => o.name).join('+')), ['doubled', 'rowsum', 'doubled', 'doubled', 'rowsum', 'doubled+rowsum']);
    assert.deepEqual(Array.from(r[4].outputs[0].data as Float32Array), [4 + 5 + 6]);
  });

  it('sends a preferred batch size as soon as it can be formed', async () => {
    const m = model();
    const b = new DynamicBatcher({
      instances: 1,
      batching: { maxBatchSize: 16, maxQueueDelayMs: 60_000, preferredBatchSizes: [2] },
      maxQueueSize: 100,
      run: m.run,
    });
    await Promise.all([b.submit([input(1, 2, 0)], ['rowsum']), b.submit([input(1, 2, 0)], ['rowsum'])]);
    assert.deepEqual(m.runs, [2]);
  });

  it('runs each request alone when outputs lose dimension 0', async () => {
    const m = model({ dropBatchDim: true });
    const b = new DynamicBatcher({ instances: 1, batching: { maxBatchSize: 8, maxQueueDelayMs: 5 }, maxQueueSize: 100, run: m.run });
    const [a, c] = await Promise.all([b.submit([input(1, 2, 0)], ['rowsum']), b.submit([input(1, 2, 10)], ['rowsum'])]);
    assert.deepEqual(m.runs, [2, 1, 1]);
    assert.deepEqual(Array.from(a.outputs[0].data as Float32Array), [1]);
    assert.deepEqual(Array.from(c.outputs[0].data as Float32Array), [21]);
  });

  it('refuses a request with QUEUE_FULL when the queue is at its bound', async () => {
    const m = model({ delayMs: 30 });
    const b = new DynamicBatcher({ instances: 1, maxQueueSize: 1, run: m.run });
    const running = b.submit([input(1, 2, 0)], ['rowsum']); // takes the instance
    const waiting = b.submit([input(1, 2, 0)], ['rowsum']); // fills the queue
    await assert.rejects(b.submit([input(1, 2, 0)], ['rowsum']), (e: unknown) => e instanceof InferenceError && e.code === 'QUEUE_FULL');
    await Promise.all([running, waiting]);
    await b.drain();
  });

  it('fails a request that waits past its timeout with TIMEOUT and drops it from the queue', async () => {
    const m = model({ delayMs: 60 });
    const b = new DynamicBatcher({ instances: 1, maxQueueSize: 10, run: m.run });
    const first = b.submit([input(1, 2, 0)], ['rowsum']);
    await assert.rejects(b.submit([input(1, 2, 0)], ['rowsum'], { timeoutMs: 10 }), (e: unknown) => e instanceof InferenceError && e.code === 'TIMEOUT');
    await first;
    await b.drain();
    assert.deepEqual(m.runs, [1]);
  });

  it('a request whose run is under way when it times out says when that run has finished (outlived); a queued one does not', async () => {
    let finished = false;
    const m = model({ delayMs: 60 });
    const b = new DynamicBatcher({ instances: 1, maxQueueSize: 10, run: async (f, n) => {
      const out = await m.run(f, n);
      finished = true;
      return out;
    } });
    const running = await b.submit([input(1, 2, 0)], ['rowsum'], { timeoutMs: 10 }).then(
      () => assert.fail('should time out'),
      (e: unknown) => e as InferenceError,
    );
    assert.equal(running.code, 'TIMEOUT');
    assert.ok(running.outlived, 'the run was under way');
    assert.equal(finished, false, 'the answer did not wait for the run');
    await running.outlived;
    assert.equal(finished, true, 'outlived settles once the run has finished');
    // Queued behind a running request: dropped from the queue, no run to wait for.
    const first = b.submit([input(1, 2, 0)], ['rowsum']);
    const queued = await b.submit([input(1, 2, 0)], ['rowsum'], { timeoutMs: 10 }).then(
      () => assert.fail('should time out'),
      (e: unknown) => e as InferenceError,
    );
    assert.equal(queued.code, 'TIMEOUT');
    assert.equal(queued.outlived, undefined);
    await first;
    await b.drain();
  });

  it('runs on several instances at once', async () => {
    let concurrent = 0;
    let peak = 0;
    const b = new DynamicBatcher({
      instances: 3,
      maxQueueSize: 10,
      run: async (feeds) => {
        peak = Math.max(peak, ++concurrent);
        await new Promise((r) => setTimeout(r, 20));
        concurrent--;
        return feeds;
      },
    });
    await Promise.all([1, 2, 3, 4, 5, 6].map((i) => b.submit([input(1, 1, i)], ['x'])));
    assert.equal(peak, 3);
  });

  it('lone: where the instances compute elsewhere, a request that finds nothing queued or running runs within the call on the lone run; anything else goes to the instances', async () => {
    const worker: number[] = [];
    const lone: number[] = [];
    const events: { rows: number; requests: number; instance: number; lone?: boolean }[] = [];
    const later: (() => void)[] = [];
    const twice = (feeds: readonly Tensor[]) => [{ ...feeds[0], name: 'x', data: Float32Array.from(feeds[0].data as Float32Array, (v) => v * 2) }];
    const b = new DynamicBatcher({
      instances: 1,
      batching: { maxBatchSize: 16, maxQueueDelayMs: 0 },
      maxQueueSize: 100,
      run: async (feeds) => (worker.push(feeds[0].shape[0]), await new Promise((r) => setTimeout(r, 2)), twice(feeds)),
      lone: (feeds) => (lone.push(feeds[0].shape[0]), twice(feeds)),
      onExecute: (e) => events.push({ rows: e.rows, requests: e.requests, instance: e.instance, ...(e.lone ? { lone: e.lone } : {}) }),
      defer: (f) => later.push(f),
    });
    // The first request after start goes to the instances (requests are taken as overlapping until a run says not).
    assert.equal(b.canRunNow([input(1, 3, 0)], ['x']), false);
    const first = b.submit([input(1, 3, 0)], ['x']);
    for (const f of later.splice(0)) f();
    await first;
    await b.drain();
    for (const f of later.splice(0)) f();
    assert.equal(b.canRunNow([input(1, 3, 1)], ['x']), true);
    const r = b.runNow([input(1, 3, 1)], ['x']);
    assert.deepEqual(Array.from(r.outputs[0].data as Float32Array), [2, 4, 6]);
    assert.deepEqual(lone, [1]);
    // Reported as instance 0's, marked as the lone run's (its time is not the instance's: served-model.ts).
    assert.deepEqual(events.at(-1), { rows: 1, requests: 1, instance: 0, lone: true });
    assert.deepEqual(events[0], { rows: 1, requests: 1, instance: 0 }, 'the instance\'s run is not marked');
    // Two more in the same turn: they wait for its end and run together on the instance.
    assert.equal(b.canRunNow([input(1, 3, 2)], ['x']), false, 'a run already started in this turn');
    const pair = Promise.all([b.submit([input(1, 3, 2)], ['x']), b.submit([input(1, 3, 3)], ['x'])]);
    for (const f of later.splice(0)) f();
    assert.equal(b.canRunNow([input(1, 3, 4)], ['x']), false, 'a run under way on the instance');
    await pair;
    assert.deepEqual(worker, [1, 2]);
    assert.deepEqual(lone, [1]);
    b.close();
  });

  it('runNow: a request that would start at once runs within the call, reported like any run; one that would wait is left to submit', async () => {
    const runs: number[] = [];
    const events: { rows: number; requests: number; ok: boolean }[] = [];
    const later: (() => void)[] = [];
    let fail = false;
    const compute = (feeds: readonly Tensor[]) => {
      if (fail) throw new Error('the model failed');
      runs.push(feeds[0].shape[0]);
      return [{ ...feeds[0], name: 'x', data: Float32Array.from(feeds[0].data as Float32Array, (v) => v * 2) }];
    };
    const make = (batching?: { maxBatchSize: number; maxQueueDelayMs: number }) =>
      new DynamicBatcher({
        instances: 1,
        batching,
        maxQueueSize: 100,
        run: async (feeds) => compute(feeds),
        runNow: (feeds) => compute(feeds),
        runsInCall: true,
        onExecute: (e) => events.push({ rows: e.rows, requests: e.requests, ok: e.ok }),
        defer: (f) => later.push(f),
      });
    const b = make({ maxBatchSize: 16, maxQueueDelayMs: 0 });
    // A fresh batcher takes its first requests as overlapping (deferring on): the first goes through submit.
    assert.equal(b.canRunNow([input(1, 3, 0)], ['x']), false);
    const first = b.submit([input(1, 3, 0)], ['x']);
    for (const f of later.splice(0)) f(); // the turn's end: its run starts
    await first;
    await b.drain(); // and has finished
    for (const f of later.splice(0)) f();
    // A lone client from then on: within the call, its answer returned, the run reported.
    assert.equal(b.canRunNow([input(1, 3, 1)], ['x']), true);
    const r = b.runNow([input(1, 3, 1)], ['x']);
    assert.deepEqual(Array.from(r.outputs[0].data as Float32Array), [2, 4, 6]);
    assert.equal(r.batchRows, 1);
    assert.deepEqual(events.at(-1), { rows: 1, requests: 1, ok: true });
    // Given somewhere to defer it (the answer's sending), the run's report waits there; its computeMs is known now.
    for (const f of later.splice(0)) f();
    const deferred: (() => void)[] = [];
    const seen = events.length;
    const d = b.runNow([input(1, 3, 7)], ['x'], (w) => deferred.push(w));
    assert.ok(d.computeMs >= 0);
    assert.equal(events.length, seen, 'not reported before the answer has gone');
    for (const w of deferred) w();
    assert.deepEqual(events.slice(seen), [{ rows: 1, requests: 1, ok: true }]);
    // A second request read in the same turn waits for the turn's end, to batch with what else the turn reads.
    assert.equal(b.canRunNow([input(1, 3, 2)], ['x']), false, 'a run already started in this turn');
    for (const f of later.splice(0)) f();
    assert.equal(b.canRunNow([input(1, 3, 2)], ['x']), true);
    // Anything queued or running: submit's queue decides.
    const queued = b.submit([input(1, 3, 3)], ['x']);
    assert.equal(b.canRunNow([input(1, 3, 4)], ['x']), false, 'a run under way');
    await queued;
    await b.drain();
    for (const f of later.splice(0)) f();
    // A failing run: reported as failed, thrown as an InferenceError, the instance free again.
    fail = true;
    assert.throws(() => b.runNow([input(1, 3, 5)], ['x']), (e: unknown) => e instanceof InferenceError); // as submit's rejection (toInferenceError)
    assert.deepEqual(events.at(-1), { rows: 1, requests: 1, ok: false });
    fail = false;
    for (const f of later.splice(0)) f();
    assert.equal(b.canRunNow([input(1, 3, 6)], ['x']), true);
    await b.drain(); // idle: nothing queued or running
    // A queue delay makes a request wait for others: not now.
    const delayed = make({ maxBatchSize: 16, maxQueueDelayMs: 5 });
    for (const f of later.splice(0)) f();
    assert.equal(delayed.canRunNow([input(1, 3, 0)], ['x']), false);
    // No runNow, or runs that leave the call (a worker thread): never.
    const plain = new DynamicBatcher({ instances: 1, maxQueueSize: 10, run: async (feeds) => compute(feeds), runsInCall: true });
    assert.equal(plain.canRunNow([input(1, 3, 0)], ['x']), false);
    b.runsInCall = false;
    assert.equal(b.canRunNow([input(1, 3, 0)], ['x']), false);
    b.close();
    b.runsInCall = true;
    assert.equal(b.canRunNow([input(1, 3, 0)], ['x']), false, 'closed');
  });

  it('concatRows and sliceRows are inverses', () => {
    const parts = [input(2, 3, 0), input(1, 3, 50)];
    const joined = concatRows(parts);
    assert.deepEqual(joined.shape, [3, 3]);
    assert.deepEqual(Array.from(sliceRows(joined, 2, 1).data as Float32Array), [50, 51, 52]);
    const bytes: Tensor[] = [
      { name: 's', datatype: 'BYTES', shape: [1], data: [new Uint8Array([1])] },
      { name: 's', datatype: 'BYTES', shape: [2], data: [new Uint8Array([2]), new Uint8Array([3])] },
    ];
    assert.deepEqual(sliceRows(concatRows(bytes), 1, 2).data, [new Uint8Array([2]), new Uint8Array([3])]);
  });
});
