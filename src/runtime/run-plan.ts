// How a model version is run when its config and the flags leave it open: on which thread, with how many
// onnxruntime threads, and how large its batches may grow. Decided at load from the model's own measured compute
// and from the cores this process may use, so that no flag is needed to be fast. Every choice is reported in the
// model's configuration (`parameters`) and in the load log line, and each one can be overridden.
// No node:* here: served-model.ts, which the browser SDK also uses, calls it.
import { allocate } from '../core/datatypes.ts';
import type { Tensor, TensorMetadata } from '../core/index.ts';
import { elementCount } from '../core/tensor.ts';
import type { Session, SessionOptions } from './backend.ts';
import { giveBackOutputs } from './give-back.ts';

/** Where a model's runs compute: `auto` measures the model at load and decides. */
export type RunOn = 'auto' | 'main' | 'worker';
export const RUN_ON: readonly RunOn[] = ['auto', 'main', 'worker'];

/**
 * A batch-1 run shorter than this runs on the main thread. A run on a worker thread costs a hand-off on top of its
 * compute: measured per run on this project's 2-core VMs with the load generator on the same cores (2026-12-06,
 * `run_on: main` against `run_on: worker`, interleaved 3 s rounds), about 110 µs of latency at one connection and
 * 120–170 µs more CPU over the two threads (the 784-128-10 MLP, 5 µs of compute: 0.56× the requests/s at one
 * connection on a worker; Silero VAD, 180–200 µs a run back to back, binary requests: 0.65× at 1 connection, 1.04× at
 * 16, 0.92× at 64). A worker pays off only for runs long enough that the main thread's time back outweighs that.
 * The trade: Silero VAD's JSON requests at 64 connections measured 1.27× on a worker (its main thread then parses
 * while the run goes on; 0.98× at 16) — a VAD client streams one window at a time, where the main thread wins.
 * Running on the main thread only while the worker would sit idle would take both: built for models that stay on
 * their worker because batching speeds them up (LONE_RUN_MAX_US), not for these.
 */
export const MAIN_THREAD_MAX_US = 250;
/**
 * A model on a worker thread because its file is too big to try on the main thread (MAIN_THREAD_MAX_FILE_BYTES; one
 * timed there on one core over MAIN_THREAD_MAX_US keeps that verdict) is timed on the worker without the hand-off,
 * and moved to the main thread when its batch-1 run
 * computes in at most this and it is not batched or batching would not speed it up enough (MOVE_BATCH_ROW_GAIN_MAX;
 * the main thread could not batch it: MAIN_THREAD_BATCH_BUDGET_US). A model that batching speeds up that much stays
 * on its worker, where batches may be long. The
 * hand-off each way (a wake of a thread on another core) costs more than the main thread's time back is worth to a
 * run this short. Measured 2026-12-06 on this project's 2-core VM with the load generator on the same cores, in-process
 * timestamps on both threads (BERT-mini, one connection): 110–185 µs from posting a run to the worker starting it,
 * 124–223 µs from its answer to the main thread reading it, against a 5 ms run. Served on the main thread instead
 * (interleaved 2 s rounds, binary requests, same intra-op threads): MobileNetV2 (3.3 ms a run) 243 against 210
 * req/s at 1 connection, 238/237 at 16, 248/240 at 64 (its JSON requests at 64 connections 35 against 39: there the
 * main thread's parsing no longer overlaps the runs). The main thread then blocks for up to this long per run, and
 * for a session's creation (MobileNetV2 124 ms) while the model loads. ResNet-50 (27 ms) stays on its worker.
 */
export const MAIN_THREAD_SHORT_RUN_US = 10_000;
/**
 * A model kept on its worker thread because batching speeds it up, whose batch-1 run computes in at most this (or
 * that could not be timed at load), gets a second session on the main thread for lone requests: a one-row request
 * that arrives while the worker is idle and nothing is queued runs there, within the call, and skips the hand-off
 * each way — while one of the last LONE_RECENT_RUNS runs computed a row within this (a worker's run at the worker's
 * own time for it, without the hand-off: what the run would hold this thread for); requests that arrive together
 * still queue and batch on the worker. Its cost is the model's memory twice (`memory_bytes` includes it; BERT-mini
 * 147 against 80 MB) and the main thread blocked while the session is made (BERT-mini 44–102 ms); `run_on: worker`
 * keeps a model off the main thread altogether, and serve makes none under --memory-budget. The hand-off measured
 * 2026-12-06/07 on this project's 2-core VM (BERT-mini, one connection, in-process timestamps on both threads): 83–185 µs from posting a run to the worker
 * starting it and 124–223 µs back, against a 4.6 ms run; a bare worker_threads echo there takes 11–16 µs each way
 * after 0.5 ms idle and 69–81 µs after 4.5 ms idle (the thread's vCPU halts while it waits). BERT-mini served at one
 * connection (binary, interleaved 4 s rounds against the hand-written server on the same two threads): 0.87–1.00 ×
 * on its worker, 0.93–0.99 × on the main thread.
 */
export const LONE_RUN_MAX_US = MAIN_THREAD_SHORT_RUN_US;
/**
 * How many of the latest runs decide whether lone requests may run on the main thread (LONE_RUN_MAX_US): it stays
 * open while any of them computed a row within it. Decided by the last run alone, one slow run — the thread
 * descheduled, a collection — sent the next request through the hand-off to the worker, whose first run after a
 * long idle is slow too, so the one after it went there as well. BERT-mini, one connection, binary, 2026-12-07 on
 * this project's 2-core VM: lone runs of 10.3-19.1 ms against a usual 4.5, and 4 worker runs in 10 s. With three
 * runs deciding (three processes of each, six interleaved 3 s rounds): 10,346 against 10,294 requests, +0.5 %, within
 * the rounds' spread (the hand-written server 10,694). The cost: a model whose requests turn long (a variable
 * sequence) may block the main thread for up to two more long runs before its lone requests move to the worker.
 */
export const LONE_RECENT_RUNS = 3;
/** The biggest model file that gets the main-thread session for lone requests (LONE_RUN_MAX_US): it costs its memory. */
export const LONE_MAX_FILE_BYTES = 128 << 20;
/** The longest the main thread may block on one batch; bounds the automatic batch size of a main-thread model. */
export const MAIN_THREAD_BATCH_BUDGET_US = 1000;
/**
 * The automatic batch size of a worker-thread model keeps one batch under this. A CPU gains little from batching a
 * model whose single run already keeps every thread busy, and each row of a batch holds its activations in memory.
 */
export const WORKER_BATCH_BUDGET_US = 50_000;
export const AUTO_MAX_BATCH_SIZE = 64;
/**
 * Automatic batching on a worker thread is kept only where a timed batch computes a row in at most this fraction of
 * a batch-1 run, both timed on the worker without the hand-off: a batch costs the main thread copies of every row
 * into one tensor, and a model whose operators already keep the pool busy at batch 1 gains nothing from it.
 * Measured 2026-12-06 on this project's 2-core VM (onnxruntime-node 1.30, two intra-op threads, spinning), one
 * row's compute at 1/2/4/8 rows: MobileNetV2 3.34/3.11/3.17/3.37 ms, BERT-mini (sequence 128) 4.48/4.17/3.94/3.80,
 * ResNet-50 28.6/27.4/25.7/24.4; served with binary requests (interleaved 2 s rounds), batching up to 13 rows cost
 * MobileNetV2 8 % of its requests/s at 16 connections and 14 % at 64 (0.8 ms more CPU a request), and batching
 * up to 16 gained BERT-mini 21 % at both. Timed with the hand-off, MobileNetV2's batch of 4 measured 0.82–0.86 × four
 * batch-1 runs: the hand-off, not the compute, is what a batch saves there.
 */
export const BATCH_ROW_GAIN_MAX = 0.92;
/**
 * A model whose batch-1 run is short enough for the main thread (MAIN_THREAD_SHORT_RUN_US), timed on its worker,
 * stays there to batch only where a batch computes a row in at most this × a batch-1 run — stricter than
 * {@link BATCH_ROW_GAIN_MAX}, which decides batching for a model that is on its worker anyway. On the worker it pays
 * the hand-off, and its pool shares the cores with the main thread's request work; on the main thread it pays
 * neither. MobileNetV2 on a 2-core AMD EPYC VM (2026-12-07, binary requests, interleaved rounds, one process each):
 * in a start whose probe read under the 0.92 × then in force it stayed batched on its worker and served 0.83 × the
 * hand-written server at 64 connections, against 0.93–1.02 × on the main thread; the probe in turn reads it at
 * 0.90–1.01 × there, so it now runs on the main thread in every start.
 */
export const MOVE_BATCH_ROW_GAIN_MAX = 0.8;
/**
 * The most rows of the batch timed to decide {@link BATCH_ROW_GAIN_MAX} (fewer where the batch size is smaller). A
 * worker model whose batch-1 run is too long for this many rows within {@link WORKER_BATCH_BUDGET_US} is timed at
 * this many all the same, and batches up to them unless the batch computes a row slower than a batch-1 run
 * ({@link LONG_RUN_BATCH_ROW_MAX}): with no added delay a batch forms only from requests already waiting, so a lone
 * request's run is unchanged, while a queue is worked off faster than the timing on a quiet worker says. ResNet-50
 * (27 ms a run; four probes at load put a batch of 8 at 0.92–1.00 × eight batch-1 runs) measured 2026-12-07 on this
 * project's 2-core VM, binary requests, interleaved 6 s rounds against the hand-written server on the same two
 * threads: batched up to 8 rows, 38/38/39 against 33/35/36 req/s at 16 connections and 39/38/38 against 36/36/35 at
 * 64, with 51.9 against 56.4 ms of CPU a request (unbatched: 34/34/34 and 35/35/35 req/s, 58.4 and 56.7 ms); its
 * resident memory after load 488 against 380 MB (the arena keeps what the batch of 8 needed).
 */
export const BATCH_PROBE_ROWS = 8;
/**
 * Beyond the time budget, a batch of {@link BATCH_PROBE_ROWS} rows is kept unless it computes a row slower than this
 * × a batch-1 run: the margin covers the spread of the timing at load (above), the gain is in serving.
 */
export const LONG_RUN_BATCH_ROW_MAX = 1.05;
/**
 * The most bytes of inputs and outputs the timed batch may hold: fewer rows are timed for a model with big rows, and
 * none (no verdict) where two rows would exceed it: a probe of 8 rows of a model answering 8 MB a row (a 22 MB
 * JSON answer) was the server's peak resident memory, over what answering its sample request took
 * (test/target-checks.test.ts). onnxruntime's arena keeps what the probe's batch needed.
 */
export const BATCH_PROBE_MAX_BYTES = 8 << 20;
/**
 * The batch probe times a batch-1 run and a batch in turn, at least this many pairs, more while within
 * {@link BATCH_PROBE_BUDGET_MS}, at most {@link BATCH_PROBE_MAX_PAIRS}; the median pair decides.
 */
export const BATCH_PROBE_MIN_PAIRS = 3;
export const BATCH_PROBE_MAX_PAIRS = 15;
export const BATCH_PROBE_BUDGET_MS = 400;
/** When dimension 1+ is variable the model cannot be timed at load; its batches are capped at this. */
export const UNMEASURED_MAX_BATCH_SIZE = 16;
/** A model file larger than this is never tried on the main thread: its session creation alone would stall it. */
export const MAIN_THREAD_MAX_FILE_BYTES = 4 << 20;

/**
 * A model whose batch-1 run on one thread is shorter than this gets one intra-op thread on its worker, whatever the
 * cores: its operators are too small to split, and waking a pool that does not spin costs more than it saves.
 * Silero VAD (212 µs a run), one thread against two on its worker, 2026-12-06, three 3 s rounds each: +6–31 % req/s
 * at 1 connection, +10–22 % at 16, +12–17 % at 64. MobileNetV2 (6 ms) keeps two (one measured 98–103 against
 * 115–143 req/s).
 */
export const ONE_THREAD_MAX_US = 1000;

/** The intra-op threads of a worker session, given what `options` chose and the model's one-thread batch-1 time. */
export function smallModelThreads(chosen: SessionOptions, explicit: number | undefined, batch1Us: number | undefined): SessionOptions {
  if (explicit !== undefined || batch1Us === undefined || batch1Us >= ONE_THREAD_MAX_US || chosen.intraOpThreads === 1) return chosen;
  return { ...chosen, intraOpThreads: 1, allowSpinning: undefined };
}

/** The cores one session may use: this process's share of the machine split between the model's instances. */
export function autoIntraOpThreads(cpuBudget: number, instances: number): number {
  return Math.max(1, Math.floor(cpuBudget / Math.max(1, instances)));
}

/**
 * The automatic max batch size: as many rows as fit the thread's budget, from a timed run of `rows` rows
 * (undefined: not measured), assuming time grows with rows. 1 means no batching.
 */
export function autoMaxBatchSize(thread: 'main' | 'worker', runUs: number | undefined, rows = 1): number {
  if (runUs === undefined) return UNMEASURED_MAX_BATCH_SIZE;
  const budget = thread === 'main' ? MAIN_THREAD_BATCH_BUDGET_US : WORKER_BATCH_BUDGET_US;
  return Math.max(1, Math.min(AUTO_MAX_BATCH_SIZE, Math.floor((budget * rows) / Math.max(1, runUs))));
}

/** Zeros with `rows` rows for every input, or undefined when a dimension other than 0 is variable. */
export function probeFeeds(inputs: readonly TensorMetadata[], rows = 1): Tensor[] | undefined {
  const feeds: Tensor[] = [];
  for (const t of inputs) {
    if (t.shape.slice(1).some((d) => d < 0)) return undefined;
    const shape = t.shape.map((d, i) => (i === 0 && d < 0 ? rows : d));
    feeds.push({ name: t.name, datatype: t.datatype, shape, data: allocate(t.datatype, elementCount(shape)) });
  }
  return feeds;
}

/**
 * One run timed: its wall time, and the session's own time where it reports one (Session.lastComputeUs: a worker's
 * run without the hand-off), else the wall time again. Its outputs are given back at once (give-back.ts).
 */
export async function timeRun(session: Session, feeds: Tensor[], outputNames: readonly string[]): Promise<{ wallUs: number; computeUs: number }> {
  const t0 = performance.now();
  const outputs = await session.run(feeds, outputNames);
  const wallUs = (performance.now() - t0) * 1000;
  giveBackOutputs(outputs, feeds);
  return { wallUs, computeUs: session.lastComputeUs ?? wallUs };
}

/**
 * Median wall time of one run, µs: one untimed run first (lazy initialisation), then runs until `minRuns` are done
 * and about `budgetMs` has passed, at most `maxRuns`. Undefined when the model cannot be timed or fails to run.
 * `compute` takes the median of the session's own time for the same runs where it reports one (Session.lastComputeUs:
 * a worker's run without the hand-off), else of their wall time (one pass of runs for both: each run's outputs are
 * garbage, the load's peak memory).
 */
export async function timeRuns(session: Session, feeds: Tensor[] | undefined, outputNames: readonly string[], budgetMs = 20, minRuns = 5, maxRuns = 200, compute?: { us?: number }): Promise<number | undefined> {
  if (!feeds) return undefined;
  try {
    giveBackOutputs(await session.run(feeds, outputNames), feeds);
    const times: number[] = [];
    const own: number[] = [];
    const start = performance.now();
    while (times.length < maxRuns && (times.length < minRuns || performance.now() - start < budgetMs)) {
      const { wallUs, computeUs } = await timeRun(session, feeds, outputNames);
      times.push(wallUs);
      own.push(computeUs);
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    if (compute) compute.us = median(own);
    return median(times);
  } catch {
    return undefined;
  }
}

/** What was chosen for a loaded version, and why (reported, never acted on again). */
export interface RunPlan {
  thread: 'main' | 'worker';
  /** Why this thread: the measurement, or the override. */
  threadReason: string;
  /** onnxruntime intra-op threads per session (0 = the runtime's own choice). */
  intraOpThreads: number;
  /** undefined = the runtime's default (spinning). */
  allowSpinning: boolean | undefined;
  /** Whether the pool spins on after a run returns (SessionOptions.spinAfterRun; false: it stops). */
  spinAfterRun: boolean;
  memArena: boolean | undefined;
  memPattern: boolean | undefined;
  /** Median batch-1 run at load, µs, on the chosen thread (hand-off included for a worker); undefined if not timed. */
  batch1Us: number | undefined;
  /** 'auto' when the batching is the server's default sized from the measurement, 'configured' when asked for. */
  batchingSource: 'auto' | 'configured' | 'off';
  /**
   * Why automatic batching was left off for a model that could batch, or allowed past its time budget
   * (BATCH_PROBE_ROWS), when a measurement decided it.
   */
  batchingReason?: string;
  /** Resident memory the process grew by while the version's sessions were created and first run, bytes. */
  memoryBytes: number | undefined;
  /**
   * Set when a worker-thread model also has a session on the main thread for lone requests (LONE_RUN_MAX_US): why.
   */
  loneReason?: string;
}

/** The plan as model_config.proto `parameters` (string values), for /v2/models/{m}/config and the ModelConfig RPC. */
export function planParameters(plan: RunPlan): Record<string, { string_value: string }> {
  const p: Record<string, string> = {
    execution_thread: plan.thread,
    execution_thread_reason: plan.threadReason,
    intra_op_thread_count: String(plan.intraOpThreads),
    allow_spinning: plan.allowSpinning === undefined ? 'default' : plan.allowSpinning ? '1' : '0',
    force_spinning_stop: plan.spinAfterRun ? '0' : '1',
    enable_mem_arena: plan.memArena === undefined ? 'default' : plan.memArena ? '1' : '0',
    enable_mem_pattern: plan.memPattern === undefined ? 'default' : plan.memPattern ? '1' : '0',
    dynamic_batching_source: plan.batchingSource,
  };
  if (plan.batchingReason !== undefined) p.dynamic_batching_reason = plan.batchingReason;
  p.lone_request_thread = plan.loneReason === undefined ? plan.thread : 'main';
  if (plan.loneReason !== undefined) p.lone_request_thread_reason = plan.loneReason;
  if (plan.batch1Us !== undefined) p.batch1_compute_us = plan.batch1Us.toFixed(1);
  if (plan.memoryBytes !== undefined) p.memory_bytes = String(plan.memoryBytes);
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, { string_value: v }]));
}

/** The plan as fields of the load log line. */
export function runPlanLog(plan: RunPlan): Record<string, unknown> {
  return {
    thread: plan.thread,
    why: plan.threadReason,
    intraOpThreads: plan.intraOpThreads,
    allowSpinning: plan.allowSpinning ?? 'default',
    spinAfterRun: plan.spinAfterRun,
    batching: plan.batchingSource,
    ...(plan.batchingReason === undefined ? {} : { batchingWhy: plan.batchingReason }),
    ...(plan.loneReason === undefined ? {} : { loneThread: 'main', loneWhy: plan.loneReason }),
    batch1Us: plan.batch1Us === undefined ? null : Math.round(plan.batch1Us),
    memoryBytes: plan.memoryBytes ?? null,
  };
}

/**
 * Runs timed on the main thread for a model that could not be timed at load, after TRIAL_UNTIMED. The fastest of
 * them counts: a run timed under load (other processes, other requests' turns) only ever takes longer.
 */
export const TRIAL_RUNS = 16;
export const TRIAL_UNTIMED = 2;
/** One trial run longer than this moves the model at once: it would block the thread that reads requests. */
export const TRIAL_SLOW_US = 5000;
/** The fastest trial run that keeps a model on the main thread: see {@link MainThreadTrial}. */
export const trialLimitUs = (batched: boolean) => (batched ? MAIN_THREAD_MAX_US : MAIN_THREAD_SHORT_RUN_US);

/**
 * A model that could not be timed at load (a variable dimension beyond the batch: no size to time it with) starts on
 * the main thread, and its first real runs are timed there. The fastest of them decides (the fastest, because a run
 * timed from the call includes waiting for its turn of the event loop, which only ever adds): under the verdict's
 * limit it stays, otherwise a session is made on a worker thread and takes over at the next run.
 * The limit is the hand-off's cost (MAIN_THREAD_MAX_US) for a model that batches, whose queue a worker works off in
 * batches; a model that is not batched gains nothing there but the main thread's time back, which the hand-off costs
 * more than it gives: it stays up to MAIN_THREAD_SHORT_RUN_US (as a model timed on a worker moves back to the main
 * thread), TRIAL_SLOW_US still moving it at once. Silero VAD v5 (not batchable; 190–330 µs a run on this project's
 * 2-core AMD EPYC VM, 2026-12-07, binary requests, interleaved 3 s rounds): moved to a worker it did 0.58 × its
 * requests/s on the main thread at 64 connections (664 against 294 µs of CPU a request) and, before lone requests
 * kept the trial's session (below), 0.61 × at one; 1.06 × with JSON requests at 64 (the main thread's parsing then
 * overlaps the runs). A model the trial moves keeps its main-thread session for lone requests (LONE_RUN_MAX_US) when
 * its fastest run is within that.
 */
export class MainThreadTrial {
  private readonly times: number[] = [];
  private seen = 0;
  private creating?: Promise<void>;
  private made?: Session;
  private failed?: string;

  /** The worker session's options, once chosen. */
  private workerOptions: SessionOptions = {};

  /**
   * `optionsFor(fastestUs)`: the worker session's options, once the main-thread runs are timed. `maxUs`: the
   * fastest run that keeps the model on the main thread ({@link trialLimitUs}).
   */
  constructor(
    private readonly createWorkerSession: (options: SessionOptions) => Promise<Session>,
    private readonly optionsFor: (fastestUs: number) => SessionOptions,
    private readonly maxUs: number = MAIN_THREAD_MAX_US,
  ) {}

  /** Whether a run's time is still wanted (not decided, no worker session being made). */
  timing(): boolean {
    return this.failed === undefined && this.creating === undefined;
  }

  /** Takes one run's wall time, µs: 'stay' once decided for the main thread, else 'pending' (or moving). */
  record(us: number): 'stay' | 'pending' {
    if (this.failed !== undefined) return 'stay';
    if (this.creating) return 'pending';
    // A run at a shape it has not seen pays for onnxruntime's lazy work (its first two runs): not counted.
    if (++this.seen <= TRIAL_UNTIMED) return 'pending';
    this.times.push(us);
    const fastest = Math.min(...this.times);
    if (us > TRIAL_SLOW_US || (this.times.length >= TRIAL_RUNS && fastest > this.maxUs)) {
      this.workerOptions = this.optionsFor(fastest);
      this.creating = this.createWorkerSession(this.workerOptions).then(
        (s) => void (this.made = s),
        (e: unknown) => void (this.failed = String((e as Error)?.message ?? e)),
      );
      return 'pending';
    }
    return this.times.length >= TRIAL_RUNS ? 'stay' : 'pending';
  }

  /** The worker-thread session once it is made (then the trial is over). */
  replacement(): Session | undefined {
    return this.made;
  }

  /** The fastest timed run, µs (what the verdict read). */
  fastestUs(): number {
    return Math.min(...this.times);
  }

  stayPlan(): Partial<RunPlan> {
    const us = this.fastestUs();
    if (this.failed !== undefined) return { thread: 'main', batch1Us: us, threadReason: `auto: its runs took ${us.toFixed(0)} µs at best, but making a worker-thread session failed (${this.failed}), so it stays on this thread` };
    return { thread: 'main', batch1Us: us, threadReason: `auto: its first ${this.times.length} runs took ${us.toFixed(0)} µs at best, ${this.limitText('less than')}` };
  }

  movedPlan(): Partial<RunPlan> {
    const us = this.fastestUs();
    const why = us > TRIAL_SLOW_US && this.times.length < TRIAL_RUNS ? `a run took ${us.toFixed(0)} µs` : `its first ${this.times.length} runs took ${us.toFixed(0)} µs at best`;
    return {
      thread: 'worker',
      batch1Us: us,
      intraOpThreads: this.workerOptions.intraOpThreads ?? 0,
      allowSpinning: this.workerOptions.allowSpinning,
      threadReason: `auto: timed on the main thread after load (${why}, ${this.limitText('more than')}), then moved to a worker thread`,
    };
  }

  private limitText(than: 'less than' | 'more than'): string {
    return this.maxUs === MAIN_THREAD_MAX_US ? `${than} a hand-off to a worker thread (${MAIN_THREAD_MAX_US} µs)` : `${than} ${this.maxUs / 1000} ms for a model that is not batched`;
  }

  /** The version is going away: a worker session made meanwhile is released too. */
  async abandon(): Promise<void> {
    await this.creating;
    await this.made?.dispose();
    this.made = undefined;
  }
}
