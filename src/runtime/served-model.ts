// A served model version (ServedModelVersion): one runtime session per instance, a scheduler (bounded queue, optional dynamic batching)
// in front of them, and its v2 metadata, answering decoded infer requests. No node:* here: the browser SDK uses it too.
import {
  InferenceError,
  shapeFits,
  formatShape,
  toInferenceError,
  validateRequest,
  type ErrorCode,
  type InferContext,
  type InferenceRequest,
  type InferenceResponse,
  type ModelEndpoint,
  type ModelMetadata,
  type Tensor,
  type TensorMetadata,
  type Datatype,
  modelConfiguration,
  withOwnData,
  type ModelConfiguration,
  type ServingSettings,
} from '../core/index.ts';
import { DynamicBatcher, sliceRows, type BatchingOptions, type ExecuteEvent } from '../core/batcher.ts';
import { ModelStatistics } from '../core/statistics.ts';
import { ELEMENT_SIZE, allocate } from '../core/datatypes.ts';
import { elementCount } from '../core/tensor.ts';
import type { Backend, ModelSource, Session, SessionOptions } from './backend.ts';
import { giveBackOutputs } from './give-back.ts';
import { classifyOutputs, type ModelProcessing } from './processing.ts';
import {
  BATCH_PROBE_BUDGET_MS,
  BATCH_PROBE_MAX_BYTES,
  BATCH_PROBE_MAX_PAIRS,
  BATCH_PROBE_MIN_PAIRS,
  BATCH_PROBE_ROWS,
  BATCH_ROW_GAIN_MAX,
  MOVE_BATCH_ROW_GAIN_MAX,
  LONG_RUN_BATCH_ROW_MAX,
  LONE_MAX_FILE_BYTES,
  LONE_RECENT_RUNS,
  LONE_RUN_MAX_US,
  WORKER_BATCH_BUDGET_US,
  MAIN_THREAD_MAX_FILE_BYTES,
  MAIN_THREAD_SHORT_RUN_US,
  MAIN_THREAD_MAX_US,
  trialLimitUs,
  autoIntraOpThreads,
  autoMaxBatchSize,
  planParameters,
  probeFeeds,
  timeRun,
  timeRuns,
  MainThreadTrial,
  smallModelThreads,
  TRIAL_RUNS,
  type RunOn,
  type RunPlan,
} from './run-plan.ts';

export const ONNX_PLATFORM = 'onnxruntime_onnx';

/** A narrower contract than the model file's, from the repository config (e.g. a fixed image size). */
export interface InputConstraint {
  name: string;
  datatype?: Datatype;
  /** Same rank as the model's input; -1 = any size. Must fit the model's own shape. */
  shape?: number[];
}

export interface RequestEvent {
  model: string;
  version: string;
  ok: boolean;
  code?: ErrorCode;
  durationMs: number;
  /** Inferences in the request: its dimension 0 for a batchable model, else 1. */
  rows: number;
  queueMs?: number;
  computeMs?: number;
}

/** Hooks for metrics and logs; each is called synchronously and must not throw. */
export interface ModelObserver {
  request?(e: RequestEvent): void;
  execute?(e: ExecuteEvent & { model: string; version: string }): void;
  inFlight?(model: string, version: string, delta: 1 | -1): void;
}

export interface ServedModelOptions {
  name: string;
  version: string;
  backend: Backend;
  sessionOptions?: SessionOptions;
  /** Every version of this model the server holds, for the metadata's `versions`. */
  versions?: () => string[];
  /** Sessions that run at once (each its own copy of the model). Default 1. */
  instanceCount?: number;
  /** Dynamic batching, when the model allows it (dimension 0 variable on every input and output). */
  batching?: BatchingOptions;
  /** Requests that may wait for an instance; one more gets QUEUE_FULL (503). Default 1024. */
  maxQueueSize?: number;
  /** Queue + run time after which a request fails with TIMEOUT (504). 0 = none. */
  timeoutMs?: number;
  inputs?: InputConstraint[];
  observer?: ModelObserver;
  /** The repository's version policy for this model, reported in its configuration (it does not act here). */
  versionPolicy?: ServingSettings['versionPolicy'];
  /** Declared pre/post-processing and the labels file (config.yaml `preprocess`/`postprocess`, labels.txt). */
  processing?: (model: ModelMetadata) => ModelProcessing;
  /**
   * Sessions that run on the calling thread. With `runOn` 'auto', a model of one instance whose batch-1 run takes
   * less than a hand-off to a worker thread (run-plan.ts) runs here instead of on `backend`.
   */
  mainThreadBackend?: Backend;
  /**
   * Whether a worker-thread model may also get a `mainThreadBackend` session for lone requests (run-plan.ts,
   * LONE_RUN_MAX_US). Default true.
   */
  loneSession?: boolean;
  /** Default 'auto'. 'main' needs `mainThreadBackend`. */
  runOn?: RunOn;
  /**
   * `batching` is the server's default, not asked for: its max_batch_size is then sized from the model's measured
   * compute (run-plan.ts), and a model that cannot be batched runs unbatched without a note.
   */
  batchingAuto?: boolean;
  /** Size of the model, bytes: only small ones are tried on the main thread. */
  modelBytes?: number;
  /**
   * Cores this process may give its models (its share when several processes serve): the intra-op thread count of
   * worker-thread sessions, when `sessionOptions` does not set one, is this split between the instances.
   */
  cpuBudget?: number;
  /** The process's resident memory, bytes: read before and after the sessions are made, to report what they hold. */
  residentBytes?: () => number;
}

export const DEFAULT_MAX_QUEUE_SIZE = 1024;

/** The options of a worker-thread session, one of `instances`: the threads and spinning the options leave open. */
function workerSessionOptions(options: ServedModelOptions, instances: number): SessionOptions {
  const intra = options.sessionOptions?.intraOpThreads ?? (options.cpuBudget ? autoIntraOpThreads(options.cpuBudget, instances) : undefined);
  // Spinning stays onnxruntime's default (on). A pool that sleeps between operators is woken for each one: measured
  // 2026-12-06 on the 2-core VM, binary requests, interleaved 2 s rounds, two threads on the worker, spinning off
  // against on: MobileNetV2 163 against 223 req/s at 1 connection (the hand-written server on two threads: 228),
  // 206 against 228 at 16, 186 against 194 at 64; BERT-mini 144 against 178, 209 against 216, 217 against 223;
  // ResNet-50 the same within its rounds' spread (30-32 req/s).
  return { ...options.sessionOptions, intraOpThreads: intra };
}

/** How long lone requests keep to the main thread's session, and what it costs: the end of every lone-request reason. */
const LONE_RULE = `while one of the last ${LONE_RECENT_RUNS} runs computed a row in at most ${LONE_RUN_MAX_US / 1000} ms (a second session: the model's memory twice; run_on: worker turns it off)`;

/** Whether a model on trial (run-plan.ts, MainThreadTrial) is batched: batching asked for, and its shapes allow it. */
function trialBatches(options: ServedModelOptions, session: Session): boolean {
  return !!options.batching && options.batching.maxBatchSize > 1 && batchingObstacle(session.inputs, session.outputs) === undefined;
}

/** A version's sessions with its main-thread session for lone requests, if any, first (warmup needs that order). */
function everySession(sessions: readonly Session[], lone: Session | undefined): Session[] {
  return lone ? [lone, ...sessions] : [...sessions];
}

interface BatchProbe {
  rows: number;
  oneUs: number;
  batchUs: number;
  /** One row's compute in the batch ÷ a batch-1 run's. */
  perRow: number;
}

/**
 * A batch-1 run and a batch of up to BATCH_PROBE_ROWS rows, compute timed where they run (run-plan.ts); undefined
 * when a model's run fails or a batch of two would hold more than BATCH_PROBE_MAX_BYTES of tensors (the probe's
 * memory would be the server's peak).
 */
async function probeBatch(session: Session, maxBatchSize: number): Promise<BatchProbe | undefined> {
  const names = session.outputs.map((x) => x.name);
  const one = probeFeeds(session.inputs, 1);
  if (!one) return undefined;
  // A row's bytes from the metadata where every dimension but the batch is fixed (no run, no garbage), else from a run.
  const known = (ts: readonly TensorMetadata[]) => ts.every((t) => t.datatype !== 'BYTES' && t.shape.slice(1).every((d) => d >= 0));
  const bytesOf = (t: TensorMetadata) => ELEMENT_SIZE[t.datatype as Exclude<Datatype, 'BYTES'>] * elementCount([1, ...t.shape.slice(1)]);
  let rowBytes = 0;
  if (known(session.inputs) && known(session.outputs)) for (const t of [...session.inputs, ...session.outputs]) rowBytes += bytesOf(t);
  else {
    try {
      for (const t of [...one, ...(await session.run(one, names))]) rowBytes += ArrayBuffer.isView(t.data) ? t.data.byteLength : 0;
    } catch {
      return undefined;
    }
  }
  const rows = Math.min(BATCH_PROBE_ROWS, maxBatchSize, Math.floor(BATCH_PROBE_MAX_BYTES / Math.max(1, rowBytes)));
  if (rows < 2) return undefined;
  // Batch-1 runs and batches are timed in turn and compared pair by pair, the median pair taken: this VM's speed
  // drifts by several per cent over a second, and three batches timed after twenty batch-1 runs read MobileNetV2's
  // batch of 7 at 0.86–1.41 × as many batch-1 runs across starts (2026-12-07, a 2-core AMD EPYC VM), so a start's
  // verdict followed the moment it was timed at.
  const batchFeeds = probeFeeds(session.inputs, rows);
  if (!batchFeeds) return undefined;
  const computeUs = async (feeds: Tensor[]) => (await timeRun(session, feeds, names)).computeUs;
  try {
    // Once each untimed: a batch's first run sizes onnxruntime's arena for it.
    await computeUs(one);
    await computeUs(batchFeeds);
    const pairs: BatchProbe[] = [];
    const start = performance.now();
    while (pairs.length < BATCH_PROBE_MAX_PAIRS && (pairs.length < BATCH_PROBE_MIN_PAIRS || performance.now() - start < BATCH_PROBE_BUDGET_MS)) {
      const oneUs = await computeUs(one);
      const batchUs = await computeUs(batchFeeds);
      pairs.push({ rows, oneUs, batchUs, perRow: batchUs / rows / oneUs });
    }
    return pairs.sort((a, b) => a.perRow - b.perRow)[Math.floor(pairs.length / 2)];
  } catch {
    return undefined;
  }
}

/** Why a model cannot be batched along dimension 0, or undefined when it can. */
export function batchingObstacle(inputs: readonly TensorMetadata[], outputs: readonly TensorMetadata[]): string | undefined {
  const all = [...inputs.map((t) => ['input', t] as const), ...outputs.map((t) => ['output', t] as const)];
  for (const [kind, t] of all) {
    if (t.shape.length === 0) return `${kind} '${t.name}' has no dimension 0`;
    if (t.shape[0] !== -1) return `${kind} '${t.name}' has a fixed dimension 0 (${t.shape[0]})`;
  }
  // Named symbolic dimensions must agree: an output whose dimension 0 is another symbol does not follow the batch.
  const names = new Set(all.map(([, t]) => t.dimNames?.[0]).filter((n): n is string => typeof n === 'string'));
  if (names.size > 1) return `dimension 0 has different symbolic names (${[...names].join(', ')})`;
  return undefined;
}

function applyConstraints(name: string, inputs: readonly TensorMetadata[], constraints: readonly InputConstraint[]): TensorMetadata[] {
  const errors: string[] = [];
  const out = inputs.map((t) => ({ ...t }));
  for (const c of constraints) {
    const t = out.find((x) => x.name === c.name);
    if (!t) {
      errors.push(`config input '${c.name}' is not an input of the model; its inputs are: ${inputs.map((x) => x.name).join(', ')}`);
      continue;
    }
    if (c.datatype && c.datatype !== t.datatype) errors.push(`config input '${c.name}' says datatype ${c.datatype} but the model has ${t.datatype}`);
    if (c.shape) {
      if (t.shape.length && !shapeFits(c.shape.map((d, i) => (d === -1 ? (t.shape[i] ?? -1) : d)), t.shape)) {
        errors.push(`config input '${c.name}' has shape ${formatShape(c.shape)}, which does not fit the model's ${formatShape(t.shape)}`);
      } else t.shape = [...c.shape];
    }
  }
  if (errors.length) throw new InferenceError('UNSUPPORTED', `model '${name}': ${errors.join('; ')}`);
  return out;
}

export class ServedModelVersion implements ModelEndpoint {
  readonly name: string;
  readonly version: string;
  readonly statistics: ModelStatistics;
  /** The batching in force, or undefined (not asked for, or the model's shapes do not allow it). */
  readonly batching: BatchingOptions | undefined;
  /** Set when batching was asked for but the model cannot be batched: says why. */
  readonly batchingNote: string | undefined;
  private ready = true;
  private inFlight = 0;
  private idle: (() => void)[] = [];
  private readonly batcher: DynamicBatcher;
  private readonly batchable: boolean;
  /** Some session can be not ready for a while (a process-isolated one restarting): isReady asks them. */
  private readonly restartable: boolean;
  /** Built once: validation runs on every request. */
  private readonly base: ModelMetadata;
  /** Every output's name, the outputs a request that names none gets. */
  private readonly baseOutputNames: readonly string[];
  /** What clients see through the declared steps (metadata, configuration); `base` is what the session takes. */
  private readonly served: ModelMetadata;
  readonly processing: ModelProcessing | undefined;

  private constructor(
    private readonly sessions: Session[],
    private readonly options: ServedModelOptions,
    /** How it runs: thread, threads, batching source, measured compute and memory (reported in `configuration`). */
    readonly plan: RunPlan,
    /**
     * A main-thread session for lone requests beside a worker-thread instance (run-plan.ts, LONE_RUN_MAX_US); a model
     * moved to a worker by its trial keeps its main-thread session as this one (trialRun).
     */
    private lone?: Session,
  ) {
    this.name = options.name;
    this.version = options.version;
    this.restartable = sessions.some((s) => s.ready !== undefined);
    const first = sessions[0];
    const inputs = options.inputs?.length ? applyConstraints(this.name, first.inputs, options.inputs) : [...first.inputs];
    this.base = { name: this.name, platform: ONNX_PLATFORM, inputs, outputs: [...first.outputs] };
    this.baseOutputNames = this.base.outputs.map((o) => o.name);
    this.processing = options.processing?.(this.base);
    this.served = this.processing ? { ...this.base, ...this.processing.served(), parameters: { processing: this.processing.describe() } } : this.base;
    const obstacle = batchingObstacle(first.inputs, first.outputs);
    this.batchable = obstacle === undefined;
    const wanted = options.batching && options.batching.maxBatchSize > 1 ? options.batching : undefined;
    this.batching = wanted && this.batchable ? wanted : undefined;
    this.batchingNote = wanted && !this.batchable && !options.batchingAuto ? `dynamic batching is off for this model: ${obstacle}` : undefined;
    plan.batchingSource = this.batching ? (options.batchingAuto ? 'auto' : 'configured') : 'off';
    this.statistics = new ModelStatistics(this.name, this.version);
    if (plan.batch1Us !== undefined) this.recentRowUs.push(plan.batch1Us);
    const observer = options.observer;
    this.batcher = new DynamicBatcher({
      instances: sessions.length,
      batching: this.batching,
      maxQueueSize: options.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
      run: (feeds, outputNames, instance) => (this.trial ? this.trialRun(feeds, outputNames) : this.sessions[instance].run(feeds, outputNames)),
      onExecute: (e) => {
        if (e.ok) this.statistics.execution(e.rows, e.computeMs);
        if (this.lone && e.ok && e.rows > 0) {
          // A worker's run counts at the worker's own time for it (Session.lastComputeUs), without the hand-off both
          // ways: the rule bounds how long a run would hold this thread. With the hand-off counted, BERT-mini's runs
          // on a slow host (6-8 ms) read 10.4-15.3 ms from the worker and kept lone requests off this thread, on the
          // slower path, until a worker run came back under the bound (one connection, 2026-12-08: ~70 of ~460 requests).
          const us = e.lone ? e.computeMs * 1000 : (this.sessions[e.instance]?.lastComputeUs ?? e.computeMs * 1000);
          const recent = this.recentRowUs;
          recent.push(us / e.rows);
          if (recent.length > LONE_RECENT_RUNS) recent.shift();
        }
        observer?.execute?.({ rows: e.rows, requests: e.requests, computeMs: e.computeMs, ok: e.ok, instance: e.instance, model: this.name, version: this.version });
      },
      // Node: batch what this turn of the event loop read. Browsers have no setImmediate; runs start at once there.
      defer: typeof setImmediate === 'function' ? (f) => void setImmediate(f) : undefined,
      runsInCall: sessions.every((s) => s.synchronous),
      // Only while runsInCall holds (every session synchronous, none moved to a worker by a trial).
      runNow: (feeds, outputNames, instance) => this.sessions[instance].runNow!(feeds, outputNames),
      lone: lone?.runNow ? (feeds, outputNames) => lone.runNow!(feeds, outputNames) : undefined,
    });
  }

  /**
   * Creates the sessions (one after another, so that loading holds one session's worth of extra memory at a time),
   * times a batch-1 run, and settles what the options leave open (run-plan.ts). Bytes given as `source` may be
   * taken over by the backend (backend.ts); a path keeps the weights out of JavaScript.
   */
  static async load(source: ModelSource, options: ServedModelOptions): Promise<ServedModelVersion> {
    const count = Math.max(1, options.instanceCount ?? 1);
    const runOn = options.runOn ?? 'auto';
    const explicitThreads = options.sessionOptions?.intraOpThreads;
    const sessions: Session[] = [];
    let lone: Session | undefined;
    const before = options.residentBytes?.();
    /** Set for a model on trial (run-plan.ts, MainThreadTrial): the fastest run that keeps it on this thread. */
    let trialLimit: number | undefined;
    try {
      let batch1Us: number | undefined;
      /** The batch-1 time on one main-thread session, when it was timed and the model still goes to a worker. */
      let oneThreadUs: number | undefined;
      let threadReason = '';
      const main = options.mainThreadBackend;
      if (main && (runOn === 'main' || (runOn === 'auto' && count === 1 && (options.modelBytes ?? Infinity) <= MAIN_THREAD_MAX_FILE_BYTES))) {
        // Only the first session is tried here: its timing decides whether the model stays on this thread.
        const first = await main.createSession(source, { ...options.sessionOptions, intraOpThreads: explicitThreads ?? 1 });
        sessions.push(first);
        const feeds = probeFeeds(first.inputs);
        batch1Us = await timeRuns(first, feeds, first.outputs.map((o) => o.name));
        if (runOn === 'main') threadReason = 'configured (run_on: main)';
        else if (batch1Us !== undefined && batch1Us < MAIN_THREAD_MAX_US) {
          threadReason = `auto: a batch-1 run takes ${batch1Us.toFixed(0)} µs, less than a hand-off to a worker thread (${MAIN_THREAD_MAX_US} µs)`;
        } else if (feeds === undefined && typeof source === 'string' && count === 1 && runOn === 'auto') {
          // No size to time it with (Silero VAD's audio length): its first real runs are timed instead (run-plan.ts).
          const limit = (trialLimit = trialLimitUs(trialBatches(options, first)));
          threadReason = `auto: a variable dimension beyond the batch keeps it from being timed at load, so its first ${TRIAL_RUNS} runs are timed here; it moves to a worker thread if the fastest takes more than ${limit < 1000 ? `${limit} µs` : `${limit / 1000} ms`}${limit === MAIN_THREAD_MAX_US ? '' : ' (it is not batched)'}`;
        } else {
          threadReason =
            batch1Us === undefined
              ? 'auto: dimension 1+ of an input is variable, so the model could not be timed at load'
              : `auto: a batch-1 run takes ${batch1Us.toFixed(0)} µs, more than a hand-off to a worker thread (${MAIN_THREAD_MAX_US} µs)`;
          sessions.pop();
          await first.dispose();
          oneThreadUs = batch1Us;
          batch1Us = undefined;
        }
        while (sessions.length && sessions.length < count) sessions.push(await main.createSession(source, { ...options.sessionOptions, intraOpThreads: explicitThreads ?? 1 }));
      }
      let thread: 'main' | 'worker' = sessions.length ? 'main' : 'worker';
      /** A worker-thread batch-1 run's compute, without the hand-off, where it was timed. */
      let workerComputeUs: number | undefined;
      /** Whether batching computes a row faster on the worker, where it was timed. */
      let batchProbe: BatchProbe | undefined;
      let sessionOptions: SessionOptions = { ...options.sessionOptions, intraOpThreads: explicitThreads ?? 1 };
      if (thread === 'worker') {
        if (!threadReason) threadReason = runOn === 'worker' ? 'configured (run_on: worker)' : count > 1 ? `auto: ${count} instances run in parallel` : main ? 'auto: the model file is too large to try on the main thread' : 'the only backend';
        sessionOptions = smallModelThreads(workerSessionOptions(options, count), explicitThreads, oneThreadUs);
        for (let i = 0; i < count; i++) {
          // Bytes may be moved to the session's thread: every session but the last gets its own copy.
          const own = typeof source === 'string' || i === count - 1 ? source : source.slice();
          sessions.push(await options.backend.createSession(own, sessionOptions));
        }
        // Timed only where something is decided from it (a server's automatic batching): a Lambda cold start or a
        // browser page does not wait for it.
        const first = sessions[0];
        const compute: { us?: number } = {};
        if (options.batchingAuto || options.cpuBudget) batch1Us = await timeRuns(first, probeFeeds(first.inputs), first.outputs.map((o) => o.name), 100, 3, 20, compute);
        workerComputeUs = compute.us;
        // A short run that batching would not speed up moves to this thread (run-plan.ts, MAIN_THREAD_SHORT_RUN_US).
        // Only from a file: bytes were moved to the worker's thread and are gone from this one. Not where batching
        // or the thread was configured.
        // Only a model never tried there (its file too big): one timed on the main thread's one core over
        // MAIN_THREAD_MAX_US keeps that verdict.
        if (main && typeof source === 'string' && runOn === 'auto' && count === 1 && options.cpuBudget && batch1Us !== undefined && oneThreadUs === undefined && (options.modelBytes ?? 0) > MAIN_THREAD_MAX_FILE_BYTES && !(options.batching && !options.batchingAuto)) {
          const computeUs = compute.us;
          if (computeUs !== undefined && computeUs <= MAIN_THREAD_SHORT_RUN_US) {
            const rows = options.batching && batchingObstacle(first.inputs, first.outputs) === undefined ? Math.min(options.batching.maxBatchSize, autoMaxBatchSize('worker', batch1Us)) : 1;
            if (rows > 1) batchProbe = await probeBatch(first, rows);
            if (batchProbe === undefined || batchProbe.perRow > MOVE_BATCH_ROW_GAIN_MAX) {
              // The worker's session goes first, so that loading never holds two of them.
              sessions.pop();
              await first.dispose();
              const why = batchProbe ? `batching would not speed it up enough (a batch of ${batchProbe.rows} rows computed a row in ${batchProbe.perRow.toFixed(2)} × a batch-1 run; at most ${MOVE_BATCH_ROW_GAIN_MAX} × keeps it on the worker to batch)` : rows > 1 ? `a batch of it was not timed (a run failed, or two rows hold over ${BATCH_PROBE_MAX_BYTES >> 20} MiB)` : 'it is not batched';
              try {
                sessions.push(await main.createSession(source, sessionOptions));
                thread = 'main';
                threadReason = `auto: a batch-1 run computes in ${(computeUs / 1000).toFixed(2)} ms on a worker thread, at most ${MAIN_THREAD_SHORT_RUN_US / 1000} ms, and ${why}, so it runs on this thread without the hand-off`;
              } catch (e) {
                // It loaded on the worker: it goes back there rather than failing the load.
                sessions.push(await options.backend.createSession(source, sessionOptions));
                threadReason += `; it could not be made on the main thread (${String((e as Error)?.message ?? e)})`;
              }
              // Its compute on the worker is its run here (no hand-off): not timed again, as each run's outputs are
              // garbage that a model with big outputs would make the load's peak memory.
              batch1Us = thread === 'main' ? computeUs : await timeRuns(sessions[0], probeFeeds(sessions[0].inputs), sessions[0].outputs.map((o) => o.name), 100, 3, 20);
            } else {
              // Why it stays: the probe's numbers (a start on another machine, or a busy moment, may read otherwise).
              threadReason += `; it stays there to batch: a batch of ${batchProbe.rows} rows computed a row in ${batchProbe.perRow.toFixed(2)} × a batch-1 run (${(computeUs / 1000).toFixed(2)} ms; at most ${MOVE_BATCH_ROW_GAIN_MAX} × keeps batching)`;
            }
          } else if (computeUs !== undefined) {
            threadReason += `; a batch-1 run computes in ${(computeUs / 1000).toFixed(2)} ms there, over the ${MAIN_THREAD_SHORT_RUN_US / 1000} ms the main thread may block for`;
          }
        }
      }
      const plan: RunPlan = {
        thread,
        threadReason,
        intraOpThreads: sessionOptions.intraOpThreads ?? 0,
        allowSpinning: sessionOptions.allowSpinning,
        spinAfterRun: sessionOptions.spinAfterRun === true,
        memArena: sessionOptions.memArena,
        memPattern: sessionOptions.memPattern,
        batch1Us,
        batchingSource: 'off',
        memoryBytes: undefined,
      };
      let o = options;
      if (options.batchingAuto && options.batching && batchingObstacle(sessions[0].inputs, sessions[0].outputs) === undefined) {
        // A small model's batch-1 time is mostly fixed cost: time a full batch instead of extrapolating from one row.
        const rows = options.batching.maxBatchSize;
        const outputNames = sessions[0].outputs.map((x) => x.name);
        // Not for a run too long to batch at all on this thread (a model moved here for its short run).
        const full = thread === 'main' && autoMaxBatchSize('main', batch1Us) > 1 ? await timeRuns(sessions[0], probeFeeds(sessions[0].inputs, rows), outputNames, 10, 3, 20) : undefined;
        let maxBatchSize = Math.min(rows, full === undefined ? autoMaxBatchSize(thread, batch1Us) : autoMaxBatchSize(thread, full, rows));
        // A batch must compute its rows faster than one at a time to pay for gathering them (run-plan.ts); timed on
        // the worker (or before the model moved from it). A worker model whose budget allows fewer rows than
        // BATCH_PROBE_ROWS is timed at that many all the same, and may batch them if they pay (BATCH_PROBE_ROWS).
        const probeRows = thread === 'worker' ? Math.max(maxBatchSize, Math.min(rows, BATCH_PROBE_ROWS)) : maxBatchSize;
        if (thread === 'worker' && batch1Us !== undefined && probeRows > 1) batchProbe ??= await probeBatch(sessions[0], probeRows);
        if (batchProbe) {
          const { rows: probe, oneUs, batchUs, perRow } = batchProbe;
          // Past the time budget (BATCH_PROBE_ROWS) a batch needs only to compute its rows no slower than one at a time.
          const long = thread === 'worker' && maxBatchSize < probe;
          const most = long ? LONG_RUN_BATCH_ROW_MAX : BATCH_ROW_GAIN_MAX;
          const measured = `a batch of ${probe} rows computed in ${(batchUs / 1000).toFixed(1)} ms, ${perRow.toFixed(2)} × ${probe} batch-1 runs (${(oneUs / 1000).toFixed(2)} ms each; batching is kept where it is at most ${most} ×)`;
          if (perRow > most) {
            plan.batchingReason = `auto: ${measured}`;
            maxBatchSize = 1;
          } else if (long) {
            plan.batchingReason = `auto: ${measured}; batches of up to ${probe} rows, longer than the ${WORKER_BATCH_BUDGET_US / 1000} ms automatic batches are otherwise sized to, form only from requests already waiting`;
            maxBatchSize = probe;
          }
        }
        o = { ...options, batching: maxBatchSize > 1 ? { ...options.batching, maxBatchSize } : undefined };
      }
      // A model that stays on its worker for its batches, with a short batch-1 run: lone requests run on this thread.
      // One whose runs could not be timed at load (a variable dimension beyond the batch) gets it too; its lone
      // requests go there only while one of its last runs computed a row within LONE_RUN_MAX_US (LONE_RECENT_RUNS).
      if (thread === 'worker' && main && options.loneSession !== false && typeof source === 'string' && runOn === 'auto' && count === 1 && o.batching && o.batching.maxBatchSize > 1 && (options.modelBytes ?? Infinity) <= LONE_MAX_FILE_BYTES && (workerComputeUs === undefined || workerComputeUs <= LONE_RUN_MAX_US)) {
        try {
          lone = await main.createSession(source, sessionOptions);
          if (!lone.runNow) throw new Error('its session does not run within the call');
          const measured = workerComputeUs === undefined ? `its runs could not be timed at load (a variable dimension beyond the batch)` : `a batch-1 run computes in ${(workerComputeUs / 1000).toFixed(2)} ms on the worker thread`;
          plan.loneReason = `auto: ${measured}, so a request that arrives while the worker is idle and nothing is queued runs on this thread without the hand-off, ${LONE_RULE}`;
        } catch {
          // Served on its worker as before; the main thread's session is only a shortcut.
          await lone?.dispose().catch(() => {});
          lone = undefined;
        }
      }
      // Measured after the batch probe: onnxruntime's arena keeps what the biggest batch run needed.
      const after = options.residentBytes?.();
      if (before !== undefined && after !== undefined) plan.memoryBytes = Math.max(0, after - before) + everySession(sessions, lone).reduce((sum, s) => sum + (s.externalBytes ?? 0), 0);
      const model = new ServedModelVersion(sessions, o, plan, lone);
      if (trialLimit !== undefined) {
        const workerOptions = workerSessionOptions(options, 1);
        model.trial = new MainThreadTrial(
          (chosen) => options.backend.createSession(source, chosen),
          (fastestUs) => smallModelThreads(workerOptions, explicitThreads, fastestUs),
          trialLimit,
        );
      }
      return model;
    } catch (e) {
      await Promise.all(everySession(sessions, lone).map((s) => s.dispose().catch(() => {})));
      throw e;
    }
  }

  isReady(): boolean {
    return this.ready && (!this.restartable || this.sessions.every((s) => s.ready !== false));
  }

  metadata(): ModelMetadata {
    return { ...this.served, versions: this.options.versions?.() ?? [this.version] };
  }

  /** What requests are checked against: the metadata without its version list (built per call above), made once. */
  requestMetadata(): ModelMetadata {
    return this.served;
  }

  /** The inputs and outputs the session itself takes and gives (before the declared steps): for warmup feeds. */
  sessionMetadata(): ModelMetadata {
    return this.base;
  }

  /** Triton's ModelConfig for this version: how it is actually served (batching only where the model allows it). */
  configuration(): ModelConfiguration {
    return modelConfiguration(this.served, {
      batching: this.batching,
      instanceCount: this.sessions.length,
      maxQueueSize: this.options.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
      requestTimeoutMs: this.options.timeoutMs ?? 0,
      versionPolicy: this.options.versionPolicy,
      parameters: planParameters(this.plan),
    });
  }

  /** Number of sessions (model instances). */
  get instances(): number {
    return this.sessions.length;
  }

  /** Requests waiting for an instance. */
  get queued(): number {
    return this.batcher.queued;
  }

  /**
   * Runs zeros through every instance, so a model that loads but cannot run is refused before it serves, and the
   * first real request does not pay for lazy initialisation. Skipped (returns false) when a dimension other than
   * dimension 0 is variable: a size of 1 might not be valid there.
   */
  async warmUp(): Promise<boolean> {
    const feeds: Tensor[] = [];
    for (const t of this.base.inputs) {
      if (t.shape.length === 0 || t.shape.slice(1).some((d) => d < 0)) return false;
      const shape = t.shape.map((d, i) => (i === 0 && d < 0 ? 1 : d));
      feeds.push({ name: t.name, datatype: t.datatype, shape, data: allocate(t.datatype, elementCount(shape)) });
    }
    const names = this.base.outputs.map((o) => o.name);
    await this.runOnEveryInstance(feeds, names);
    return true;
  }

  /**
   * Runs the same feeds on every instance at once, bypassing the queue (warmup: each session pays its own first run).
   * Each instance after the first gets its own copy of the data: a worker session moves big feeds' buffers to its
   * thread for the run (session-host.ts).
   */
  async runOnEveryInstance(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<void> {
    // The main thread's session for lone requests first: it reads the feeds in place, where a worker's moves them.
    const outputs = await Promise.all(everySession(this.sessions, this.lone).map((s, i) => s.run(i === 0 ? feeds : withOwnData(feeds), outputNames)));
    for (const o of outputs) giveBackOutputs(o, feeds);
  }

  /** Runs already-validated feeds on the first instance, bypassing the queue. */
  run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
    return this.sessions[0].run(feeds, outputNames);
  }

  async infer(request: InferenceRequest, context?: InferContext): Promise<InferenceResponse> {
    const started = this.enter();
    let rows = 1;
    try {
      const pre = this.processing ? await this.processing.before(request) : undefined;
      if (pre) request = pre.request;
      let r: { outputs: Tensor[]; queueMs: number; computeMs: number };
      if (pre?.context.waves) {
        // A recurrent model over windows of the file: one run per window, the state carried (preprocess.audio.windows).
        rows = pre.context.waves.length;
        r = await this.processing!.runWindows(pre.context, (feeds, names) => this.batcher.submit(feeds, names, { timeoutMs: this.options.timeoutMs }));
      } else {
        validateRequest(request, this.base);
        if (this.batchable) rows = request.inputs[0].shape[0];
        const names = this.outputNamesOf(request);
        // After processing steps (inferNow answers a request without them): a lone request on this thread's session.
        if (this.loneOpen(rows) && this.batcher.canRunNow(request.inputs, names)) r = this.batcher.runNow(request.inputs, names);
        else r = await this.batcher.submit(request.inputs, names, { timeoutMs: this.options.timeoutMs });
      }
      const outputs = pre ? this.processing!.after(r.outputs, request.outputs, pre.context) : classifyOutputs(r.outputs, request.outputs, () => undefined);
      return this.answered(request, outputs, r, started, rows, pre?.context.tokens, context);
    } catch (e) {
      throw this.failed(e, started, rows);
    } finally {
      this.leave();
    }
  }

  /**
   * The answer within the call, where the model would run at once anyway (batcher.canRunNow: it computes on this
   * thread, nothing is queued, nothing to wait for) and has no processing steps; undefined = ask {@link infer}.
   * Throws what infer rejects with.
   */
  inferNow(request: InferenceRequest, context?: InferContext): InferenceResponse | undefined {
    if (this.processing || this.trial) return undefined;
    // A lone request's run on this thread beside a worker's instance is one row's: a client's batch goes there.
    if (!this.sessions[0].runNow && !this.loneOpen(request.inputs[0]?.shape[0] ?? Infinity)) return undefined;
    const names = this.outputNamesOf(request);
    if (!this.batcher.canRunNow(request.inputs, names)) return undefined;
    const started = this.enter();
    let rows = 1;
    try {
      validateRequest(request, this.base);
      if (this.batchable) rows = request.inputs[0].shape[0];
      const r = this.batcher.runNow(request.inputs, names, context?.defer);
      return this.answered(request, classifyOutputs(r.outputs, request.outputs, () => undefined), r, started, rows, undefined, context);
    } catch (e) {
      throw this.failed(e, started, rows);
    } finally {
      this.leave();
    }
  }

  /** An empty "outputs" list asks for every output, as Triton reads it. */
  private outputNamesOf(request: InferenceRequest): readonly string[] {
    return request.outputs?.length ? request.outputs.map((o) => o.name) : this.baseOutputNames;
  }

  /** A request begins: counted in flight; its start time. */
  private enter(): number {
    this.inFlight++;
    this.options.observer?.inFlight?.(this.name, this.version, 1);
    return performance.now();
  }

  private leave(): void {
    this.inFlight--;
    this.options.observer?.inFlight?.(this.name, this.version, -1);
    if (this.inFlight === 0 && this.idle.length) for (const w of this.idle.splice(0)) w();
  }

  private answered(request: InferenceRequest, outputs: Tensor[], r: { queueMs: number; computeMs: number }, started: number, rows: number, tokens: number | undefined, context: InferContext | undefined): InferenceResponse {
    const response: InferenceResponse = { model_name: this.name, model_version: this.version, outputs };
    if (tokens !== undefined) response.parameters = { prompt_tokens: tokens };
    if (request.id !== undefined) response.id = request.id;
    if (context?.timing) {
      // The batcher's own measurements, handed up for traces and per-stage metrics (no clock read of its own).
      context.timing.queueMs = r.queueMs;
      context.timing.computeMs = r.computeMs;
    }
    const durationMs = performance.now() - started;
    if (context?.defer) context.defer(() => this.recordAnswer(durationMs, rows, r));
    else this.recordAnswer(durationMs, rows, r);
    return response;
  }

  private recordAnswer(durationMs: number, rows: number, r: { queueMs: number; computeMs: number }): void {
    this.statistics.request(true, durationMs, rows, r.queueMs, r.computeMs);
    this.options.observer?.request?.({ model: this.name, version: this.version, ok: true, durationMs, rows, queueMs: r.queueMs, computeMs: r.computeMs });
  }

  private failed(e: unknown, started: number, rows: number): InferenceError {
    const err = toInferenceError(e);
    const durationMs = performance.now() - started;
    this.statistics.request(false, durationMs, rows);
    this.options.observer?.request?.({ model: this.name, version: this.version, ok: false, code: err.code, durationMs, rows });
    return err;
  }

  /** Resolves when no request is in progress on this version. */
  drained(): Promise<void> {
    if (this.inFlight === 0) return this.batcher.drain();
    return new Promise<void>((resolve) => this.idle.push(resolve)).then(() => this.batcher.drain());
  }

  /**
   * The compute a row of the last LONE_RECENT_RUNS runs (µs; the load's batch-1 timing counts as one until later runs
   * push it out), which decide where lone requests go.
   */
  private readonly recentRowUs: number[] = [];

  /** Whether a request of `rows` rows may run on the main thread's session now: one row, a session, short runs. */
  private loneOpen(rows: number): boolean {
    if (rows > 1 || this.lone === undefined) return false;
    // One of the recent runs short enough (LONE_RECENT_RUNS): a single slow one does not close it.
    const recent = this.recentRowUs;
    for (let i = 0; i < recent.length; i++) if (recent[i] <= LONE_RUN_MAX_US) return true;
    return false;
  }

  /** While a model that could not be timed at load is on trial on the main thread (run-plan.ts, MainThreadTrial). */
  private trial?: MainThreadTrial;

  private async trialRun(feeds: Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
    const trial = this.trial!;
    const moved = trial.replacement();
    if (moved) {
      // The only instance is not running now (the batcher runs one batch per instance at a time): swap it.
      const old = this.sessions[0];
      this.sessions[0] = moved;
      this.batcher.runsInCall = false;
      this.trial = undefined;
      Object.assign(this.plan, trial.movedPlan());
      const fastest = trial.fastestUs();
      if (this.options.loneSession !== false && old.runNow && fastest <= LONE_RUN_MAX_US) {
        // Its session here stays for lone requests (LONE_RUN_MAX_US): a lone client then pays no hand-off, while
        // requests that arrive together queue for the worker, the main thread reading the next ones meanwhile.
        // Nothing was recorded before (no lone session, no timing at load): the trial's fastest run opens the path.
        this.lone = old;
        this.recentRowUs.push(fastest);
        this.batcher.lone = (f, names) => old.runNow!(f, names);
        this.plan.loneReason = `auto: its runs on this thread took ${fastest.toFixed(0)} µs at best, at most ${LONE_RUN_MAX_US / 1000} ms, so its session here stays: a request that arrives while the worker is idle and nothing is queued runs on it without the hand-off, ${LONE_RULE}`;
      } else void old.dispose().catch(() => {});
      return moved.run(feeds, outputNames);
    }
    const out = await this.sessions[0].run(feeds, outputNames);
    if (!trial.timing()) return out;
    // The time taken is that of one row run again at once, not the request's own run: a run after the thread sat
    // idle pays for cold caches (an embedding model that computes in 40 µs back to back measured 320–500 µs a run
    // with 20 ms between runs, 2026-12-06), and a batch's run is not a batch-1 run. Timed so, the verdict followed
    // how busy the server happened to be while on trial, not the model; the load-time timing (timeRuns) is also
    // back to back and batch-1.
    const probe = this.batching ? feeds.map((t) => sliceRows(t, 0, 1)) : feeds;
    const session = this.sessions[0];
    let t0 = performance.now();
    // A session that runs in a later setImmediate callback (onnxruntime-node's public InferenceSession): one queued
    // just before it fires just before the run, so the time from there leaves out the rest of the event loop's turn
    // (timed from the call, Silero VAD's runs measured 592 µs at best, against ~100–250 µs of compute).
    if (!session.synchronous && typeof setImmediate === 'function') setImmediate(() => void (t0 = performance.now()));
    try {
      await session.run(probe, outputNames);
    } catch {
      // The request's own run answered it; a timing run that fails (a model that refuses one row) decides nothing.
      // The trial ends on the main thread, where the model has been answering: a later run is not timed again.
      this.trial = undefined;
      Object.assign(this.plan, { thread: 'main', batch1Us: undefined, threadReason: 'auto: its runs could not be timed one row at a time, so it stays on the main thread it started on' });
      return out;
    }
    if (trial.record((performance.now() - t0) * 1000) === 'stay') {
      this.trial = undefined;
      Object.assign(this.plan, trial.stayPlan());
    }
    return out;
  }

  private disposing?: Promise<void>;

  /** Lets in-flight requests finish, then releases the sessions; a second call waits for the same release. */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      await this.drained();
      this.ready = false;
      this.batcher.close();
      await this.trial?.abandon();
      await Promise.all(everySession(this.sessions, this.lone).map((s) => s.dispose()));
    })();
    return this.disposing;
  }
}
