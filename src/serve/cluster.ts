// `dais serve --workers N`: N server processes share the listening ports through node:cluster, so HTTP parsing,
// request decoding and response encoding use every core instead of one event loop. Each worker is a whole server
// (its own model sessions and batcher); the primary holds no model and only keeps the workers in step:
//   - GET /metrics answers with the sum over all workers (prom-client's AggregatorRegistry);
//   - the statistics extension answers with every worker's counts added up;
//   - repository load/unload, asked of any worker, is carried out by all of them before it answers;
//   - SIGTERM/SIGINT to the primary drains every worker; a worker that dies unexpectedly is replaced.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { InferenceError, toInferenceError, type ErrorCode } from '../core/index.ts';
import { mergeStatistics, type ModelStatisticsJson } from '../core/statistics.ts';
import type { Logger } from '../node/logger.ts';
import type { RouteActions } from './routes.ts';
import { workerQuestions } from './worker-questions.ts';

const TAG = 'dais-cluster';

/** How long a worker waits for the primary (and the primary for the other workers) before answering 503. */
const ASK_TIMEOUT_MS = 60_000;

type Kind = 'metrics' | 'stats' | 'load' | 'unload';

interface Ask {
  tag: typeof TAG;
  op: 'ask';
  id: number;
  kind: Kind;
  name?: string;
  version?: string;
  /** A load's config override (JSON text). */
  config?: string;
}
interface Do {
  tag: typeof TAG;
  op: 'do';
  id: number;
  kind: Exclude<Kind, 'metrics'>;
  name?: string;
  version?: string;
  config?: string;
}
interface Reply {
  tag: typeof TAG;
  op: 'answer' | 'done';
  id: number;
  value?: unknown;
  error?: { code: ErrorCode; message: string };
}
interface Ready {
  tag: typeof TAG;
  op: 'ready';
  info: WorkerReadyInfo;
}
interface Drain {
  tag: typeof TAG;
  op: 'drain';
}
type Message = Ask | Do | Reply | Ready | Drain;

export interface WorkerReadyInfo {
  url: string;
  port: number;
  grpcPort: number | null;
  models: { name: string; versions: string[] }[];
}

const isMessage = (m: unknown): m is Message => typeof m === 'object' && m !== null && (m as { tag?: unknown }).tag === TAG;
const errorOf = (e: unknown) => {
  const err = toInferenceError(e);
  return { code: err.code, message: err.message };
};

export const isClusterWorker = (): boolean => cluster.isWorker;

// ---------------------------------------------------------------------------------------------------------------
// Worker side

export interface WorkerLink {
  /** Route actions that involve every worker (give them to serve()). */
  actions: RouteActions;
  /** Tell the primary this worker listens and serves. */
  ready(info: WorkerReadyInfo): void;
  /** Called once when the primary asks this worker to drain, or when the primary is gone. */
  onDrain(fn: (why: string) => void): void;
}

/**
 * Connects this cluster worker to the primary. `local` carries out load/unload and statistics in this process (the
 * primary asks every worker for them); `registry` is this worker's Prometheus registry, summed by the primary.
 */
export function connectWorker(local: RouteActions, registry: Registry | undefined): WorkerLink {
  if (!cluster.isWorker || !process.send) throw new Error('connectWorker() runs in a cluster worker only');
  if (registry) {
    AggregatorRegistry.setRegistries([registry]);
    new AggregatorRegistry(); // installs the worker's answer to the primary's metrics requests
  }
  const questions = workerQuestions(ASK_TIMEOUT_MS, 'the other worker processes did not answer');
  let drainFn: ((why: string) => void) | undefined;
  let drained = false;
  const drain = (why: string) => {
    if (drained) return;
    drained = true;
    drainFn?.(why);
  };
  const send = (m: Message) => {
    if (process.connected) process.send!(m);
  };
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    if (m.op === 'answer') questions.answer(m);
    else if (m.op === 'do') {
      const run = m.kind === 'stats' ? local.statistics(m.name, m.version) : local.loadOrUnload(m.kind, m.name ?? '', m.config);
      run.then(
        (value) => send({ tag: TAG, op: 'done', id: m.id, value: value ?? {} }),
        (e: unknown) => send({ tag: TAG, op: 'done', id: m.id, error: errorOf(e) }),
      );
    } else if (m.op === 'drain') drain('the primary process asked');
  });
  // The primary is gone (killed): nothing will tell this worker to stop, so it drains on its own.
  process.on('disconnect', () => drain('the primary process is gone'));

  const ask = (kind: Kind, name?: string, version?: string, config?: string) => questions.ask((id) => send({ tag: TAG, op: 'ask', id, kind, name, version, config }));

  return {
    actions: {
      loadOrUnload: async (op, name, config) => {
        await ask(op, name, undefined, config);
      },
      statistics: async (name, version) => (await ask('stats', name, version)) as { model_stats: ModelStatisticsJson[] },
      metricsText: async () => (await ask('metrics')) as string,
    },
    ready: (info) => send({ tag: TAG, op: 'ready', info }),
    onDrain(fn) {
      drainFn = fn;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Primary side

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** Once every worker serves: the addresses and models (from the first worker) and the worker count. */
  onReady?(info: WorkerReadyInfo & { workers: number }): void;
  /** Longest wait for the workers to drain after a signal, beyond their own drain timeout. */
  drainTimeoutMs: number;
  /**
   * Unexpected worker deaths within a minute that are replaced at once (default 5). Beyond that, replacements wait
   * (1 s, doubling, up to 30 s) but never stop: a client that found a request crashing workers must not be able to
   * stop the whole server for good.
   */
  maxRestartsPerMinute?: number;
  /** Metrics the primary itself holds (the monitor's), appended to the workers' sum on GET /metrics. */
  extraMetrics?: () => Promise<string>;
}

/**
 * Runs the primary: forks the workers (each re-runs this program's command line and serves), relays their questions,
 * restarts crashed workers, and drains them all on SIGTERM/SIGINT. Resolves with the exit code: 0 when every worker
 * drained cleanly, 1 otherwise.
 */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const { logger } = options;
  const aggregator = new AggregatorRegistry();
  const live = new Set<Worker>();
  const readyInfo = new Map<Worker, WorkerReadyInfo>();
  let started = false;
  let stopping = false;
  let failed = false;
  const deaths: number[] = [];
  const delayed = new Set<ReturnType<typeof setTimeout>>();
  let nextDoId = 1;
  const doWaits = new Map<number, { waitingOn: Set<Worker>; values: unknown[]; errors: { code: ErrorCode; message: string }[]; finish(): void }>();

  return new Promise<number>((resolve) => {
    const finishAll = () => {
      if (live.size === 0) resolve(failed ? 1 : 0);
    };

    const broadcast = (kind: Do['kind'], name: string | undefined, version: string | undefined, config?: string): Promise<{ values: unknown[]; errors: { code: ErrorCode; message: string }[] }> =>
      new Promise((done) => {
        const id = nextDoId++;
        const targets = [...live].filter((w) => readyInfo.has(w) && w.isConnected());
        const state = { waitingOn: new Set(targets), values: [] as unknown[], errors: [] as { code: ErrorCode; message: string }[], finish: () => {} };
        const timer = setTimeout(() => {
          doWaits.delete(id);
          state.errors.push({ code: 'WORKERS_UNAVAILABLE', message: `${state.waitingOn.size} worker process(es) did not answer within ${ASK_TIMEOUT_MS / 1000} s` });
          done(state);
        }, ASK_TIMEOUT_MS);
        state.finish = () => {
          clearTimeout(timer);
          doWaits.delete(id);
          done(state);
        };
        if (state.waitingOn.size === 0) {
          state.finish();
          return;
        }
        doWaits.set(id, state);
        for (const w of targets) w.send({ tag: TAG, op: 'do', id, kind, name, version, config } satisfies Do);
      });

    const answer = async (worker: Worker, m: Ask) => {
      let reply: Reply;
      try {
        let value: unknown;
        if (m.kind === 'metrics') value = (await aggregator.clusterMetrics()) + (options.extraMetrics ? await options.extraMetrics() : '');
        else {
          const r = await broadcast(m.kind, m.name, m.version, m.config);
          if (r.errors.length) throw new InferenceError(r.errors[0].code, r.errors[0].message);
          if (m.kind !== 'stats' && m.name) asked.set(m.name, { kind: m.kind, config: m.config });
          value = m.kind === 'stats' ? { model_stats: mergeStatistics(r.values.map((v) => (v as { model_stats: ModelStatisticsJson[] }).model_stats)) } : {};
        }
        reply = { tag: TAG, op: 'answer', id: m.id, value };
      } catch (e) {
        reply = { tag: TAG, op: 'answer', id: m.id, error: errorOf(e) };
      }
      if (worker.isConnected()) worker.send(reply, undefined, () => {});
    };

    // Load/unload requests that succeeded, last one per model: a replacement worker starts from the repository folder,
    // so they are replayed to it to bring it in line with the others.
    const asked = new Map<string, { kind: 'load' | 'unload'; config?: string }>();
    const replay = (w: Worker) => {
      for (const [name, { kind, config }] of asked) w.send({ tag: TAG, op: 'do', id: 0, kind, name, config } satisfies Do, undefined, () => {});
    };

    let workerIds = 0;
    const fork = () => {
      const w = cluster.fork({ DAIS_CLUSTER_WORKER: String(++workerIds), DAIS_CLUSTER_WORKERS: String(options.workers) });
      live.add(w);
      // A send to a worker that has just died fails with EPIPE; its exit is handled below.
      w.on('error', (e: Error) => logger.debug({ pid: w.process.pid, error: e.message }, 'message to a worker failed'));
      w.on('message', (m: unknown) => {
        if (!isMessage(m)) return;
        if (m.op === 'ready') {
          readyInfo.set(w, m.info);
          if (stopping) w.send({ tag: TAG, op: 'drain' } satisfies Drain);
          else if (started) replay(w);
          else if (!started && readyInfo.size === options.workers) {
            started = true;
            options.onReady?.({ ...m.info, workers: options.workers });
          }
        } else if (m.op === 'ask') void answer(w, m);
        else if (m.op === 'done') {
          const s = doWaits.get(m.id);
          if (!s || !s.waitingOn.delete(w)) return;
          if (m.error) s.errors.push(m.error);
          else s.values.push(m.value);
          if (s.waitingOn.size === 0) s.finish();
        }
      });
      w.on('exit', (code, signal) => {
        live.delete(w);
        const wasReady = readyInfo.delete(w);
        // A worker that dies owes no answer any more (only to the broadcasts it was part of).
        for (const s of [...doWaits.values()]) if (s.waitingOn.delete(w) && s.waitingOn.size === 0) s.finish();
        if (stopping) {
          if (code !== 0) failed = true;
          logger.info({ pid: w.process.pid, code, signal }, 'worker stopped');
          finishAll();
          return;
        }
        if (!started) {
          logger.error({ pid: w.process.pid, code, signal }, 'a worker exited before it was serving; stopping the others');
          failed = true;
          stop();
          finishAll();
          return;
        }
        const now = Date.now();
        deaths.push(now);
        while (deaths.length && deaths[0] < now - 60_000) deaths.shift();
        const excess = deaths.length - (options.maxRestartsPerMinute ?? 5);
        if (excess > 0) {
          const delayMs = Math.min(30_000, 1000 * 2 ** (excess - 1));
          logger.error({ pid: w.process.pid, code, signal, deathsInLastMinute: deaths.length, delayMs }, 'workers keep dying: starting a new one after a delay');
          // Not unref'd: while every worker is dead this timer is what keeps the primary alive.
          const timer = setTimeout(() => {
            delayed.delete(timer);
            if (!stopping) fork();
          }, delayMs);
          delayed.add(timer);
          return;
        }
        logger.error({ pid: w.process.pid, code, signal, wasReady }, 'a worker died unexpectedly: starting a new one');
        fork();
      });
    };

    const stop = () => {
      if (stopping) return;
      stopping = true;
      for (const t of delayed) clearTimeout(t);
      finishAll();
      for (const w of live) if (w.isConnected()) w.send({ tag: TAG, op: 'drain' } satisfies Drain);
      setTimeout(() => {
        logger.error({ workers: live.size }, 'workers did not stop in time: killing them');
        failed = true;
        for (const w of live) w.process.kill('SIGKILL');
      }, options.drainTimeoutMs).unref();
    };

    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: killing the workers without waiting');
        for (const w of live) w.process.kill('SIGKILL');
        failed = true;
        return;
      }
      logger.info({ signal, workers: live.size }, 'draining every worker');
      stop();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);

    for (let i = 0; i < options.workers; i++) fork();
  });
}
