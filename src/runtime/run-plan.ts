// How a model version is run when its config and the flags leave it open: on which thread, with how many
// onnxruntime threads, and how large its batches may grow. Decided at load from the model's own measured compute
// and from the cores this process may use, so that no flag is needed to be fast. Every choice is reported in the
// model's configuration (`parameters`) and in the load log line, and each one can be overridden.
// No node:* here: served-model.ts, which the browser SDK also uses, calls it.
import { allocate } from '../core/datatypes.ts';
import type { Tensor, TensorMetadata } from '../core/index.ts';
import { elementCount } from '../core/tensor.ts';
import type { Session } from './backend.ts';

/** Where a model's runs compute: `auto` measures the model at load and decides. */
export type RunOn = 'auto' | 'main' | 'worker';
export const RUN_ON: readonly RunOn[] = ['auto', 'main', 'worker'];

/**
 * A batch-1 run shorter than this runs on the main thread: a postMessage round trip to a worker thread costs
 * 60–100 µs of wall time here (docs/architecture.md §5), more than such a model's compute.
 */
export const MAIN_THREAD_MAX_US = 100;
/** The longest the main thread may block on one batch; bounds the automatic batch size of a main-thread model. */
export const MAIN_THREAD_BATCH_BUDGET_US = 1000;
/**
 * The automatic batch size of a worker-thread model keeps one batch under this. A CPU gains little from batching a
 * model whose single run already keeps every thread busy, and each row of a batch holds its activations in memory.
 */
export const WORKER_BATCH_BUDGET_US = 50_000;
export const AUTO_MAX_BATCH_SIZE = 64;
/** When dimension 1+ is variable the model cannot be timed at load; its batches are capped at this. */
export const UNMEASURED_MAX_BATCH_SIZE = 16;
/** A model file larger than this is never tried on the main thread: its session creation alone would stall it. */
export const MAIN_THREAD_MAX_FILE_BYTES = 4 << 20;

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
 * Median wall time of one run, µs: one untimed run first (lazy initialisation), then runs until `minRuns` are done
 * and about `budgetMs` has passed, at most `maxRuns`. Undefined when the model cannot be timed or fails to run.
 */
export async function timeRuns(session: Session, feeds: Tensor[] | undefined, outputNames: readonly string[], budgetMs = 20, minRuns = 5, maxRuns = 200): Promise<number | undefined> {
  if (!feeds) return undefined;
  try {
    await session.run(feeds, outputNames);
    const times: number[] = [];
    const start = performance.now();
    while (times.length < maxRuns && (times.length < minRuns || performance.now() - start < budgetMs)) {
      const t0 = performance.now();
      await session.run(feeds, outputNames);
      times.push((performance.now() - t0) * 1000);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
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
  memArena: boolean | undefined;
  memPattern: boolean | undefined;
  /** Median batch-1 run at load, µs, on the chosen thread (hand-off included for a worker); undefined if not timed. */
  batch1Us: number | undefined;
  /** 'auto' when the batching is the server's default sized from the measurement, 'configured' when asked for. */
  batchingSource: 'auto' | 'configured' | 'off';
  /** Resident memory the process grew by while the version's sessions were created and first run, bytes. */
  memoryBytes: number | undefined;
}

/** The plan as model_config.proto `parameters` (string values), for /v2/models/{m}/config and the ModelConfig RPC. */
export function planParameters(plan: RunPlan): Record<string, { string_value: string }> {
  const p: Record<string, string> = {
    execution_thread: plan.thread,
    execution_thread_reason: plan.threadReason,
    intra_op_thread_count: String(plan.intraOpThreads),
    allow_spinning: plan.allowSpinning === undefined ? 'default' : plan.allowSpinning ? '1' : '0',
    enable_mem_arena: plan.memArena === undefined ? 'default' : plan.memArena ? '1' : '0',
    enable_mem_pattern: plan.memPattern === undefined ? 'default' : plan.memPattern ? '1' : '0',
    dynamic_batching_source: plan.batchingSource,
  };
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
    batching: plan.batchingSource,
    batch1Us: plan.batch1Us === undefined ? null : Math.round(plan.batch1Us),
    memoryBytes: plan.memoryBytes ?? null,
  };
}
