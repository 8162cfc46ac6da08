// Monitoring under `dais serve --workers N`: one owner process. The cluster primary (which loads no model) holds the
// one Monitor; each worker forwards what the monitor needs of each request — inputs, outputs, version, request id,
// duration, error — and of each shadow run, in batches sent after the responses (one IPC message per event-loop
// turn, a bounded queue, at most a few messages unacknowledged). Questions a worker is asked (drift report,
// feedback, series) go to the primary, which first has every worker flush what it holds, so an answer counts every
// request answered before it was asked, as one process's would. Chosen over merging per-worker state because drift
// windows (the last N rows), feedback (any worker may hold the prediction) and the prediction log (one SQLite
// writer) are not sums. The messages carry this module's tag; node:cluster's own channel (src/serve/cluster.ts)
// is untouched apart from the serialization, which becomes 'advanced' so typed arrays cross as they are.
import cluster, { type Worker } from 'node:cluster';
import { InferenceError, toInferenceError, type ErrorCode, type InferEvent, type InferenceRequest, type InferenceResponse, withOwnData } from '../core/index.ts';
import type { ShadowResult } from './traffic.ts';
import { workerQuestions } from './worker-questions.ts';

const TAG = 'dais-monitor';
/** Records a worker holds while the primary is behind; beyond it they are dropped (and counted), never waited for. */
const MAX_QUEUED = 10_000;
/** Batches sent but not yet taken by the IPC channel before a worker stops sending and only queues. */
const MAX_UNSENT_BATCHES = 4;
const ASK_TIMEOUT_MS = 30_000;
const FLUSH_TIMEOUT_MS = 5_000;

/** A load seen by a worker (the primary applies each round of reloads once). */
export interface WireLoad {
  name: string;
  version: string;
  path: string;
}

export type WireRecord =
  | { kind: 'infer'; event: InferEvent; outputs?: { name: string; datatype: string; shape: number[] }[] }
  | { kind: 'shadow'; result: ShadowResult };

export type MonitorQuestion =
  | { what: 'report'; model: string; version: string }
  | { what: 'feedback'; model: string; version?: string; body: Record<string, unknown> }
  | { what: 'series' }
  | { what: 'events'; headers: Record<string, string | undefined>; body: Uint8Array };

type Message =
  | { tag: typeof TAG; op: 'records'; records: WireRecord[] }
  | { tag: typeof TAG; op: 'load'; load: WireLoad }
  | { tag: typeof TAG; op: 'ask'; id: number; question: MonitorQuestion }
  | { tag: typeof TAG; op: 'answer'; id: number; value?: unknown; error?: { code: ErrorCode; message: string } }
  | { tag: typeof TAG; op: 'flush'; id: number }
  | { tag: typeof TAG; op: 'flushed'; id: number };

const isMessage = (m: unknown): m is Message => typeof m === 'object' && m !== null && (m as { tag?: unknown }).tag === TAG;

/** node:cluster's IPC must carry typed arrays (the tensors) as they are: call in the primary before it forks. */
export function useStructuredClone(): void {
  cluster.setupPrimary({ serialization: 'advanced' });
}

// A tensor's data may be a view on a larger pooled buffer (structured clone would copy the whole buffer), and a
// request's big buffers are freed once its event is let go: each record carries copies, made when it is queued.
const ownRequest = (r: InferenceRequest): InferenceRequest => ({ ...(r.id !== undefined ? { id: r.id } : {}), inputs: withOwnData(r.inputs) });
const ownResponse = (r: InferenceResponse): InferenceResponse => ({ model_name: r.model_name, model_version: r.model_version, outputs: withOwnData(r.outputs) });
const plainError = (e: InferenceError) => ({ code: e.code, message: e.message });

// ---------------------------------------------------------------------------------------------------------------
// Worker side

export interface MonitorWorkerLink {
  load(load: WireLoad): void;
  infer(event: InferEvent, outputs?: { name: string; datatype: string; shape: number[] }[]): void;
  shadow(result: ShadowResult): void;
  ask(question: MonitorQuestion): Promise<unknown>;
  /** Sends what is queued now (before the worker exits). */
  flush(): void;
  /** Records dropped because the queue was full. */
  readonly dropped: number;
}

export function connectMonitorWorker(): MonitorWorkerLink {
  if (!cluster.isWorker || !process.send) throw new Error('connectMonitorWorker() runs in a cluster worker only');
  let queue: WireRecord[] = [];
  let unsent = 0;
  let scheduled = false;
  let dropped = 0;
  const questions = workerQuestions(ASK_TIMEOUT_MS, 'the primary process did not answer');
  const send = (m: Message, done?: () => void) => {
    if (!process.connected) return done?.();
    process.send!(m, undefined, {}, () => done?.());
  };
  const flush = (force: boolean) => {
    scheduled = false;
    if (!queue.length || (!force && unsent >= MAX_UNSENT_BATCHES)) return;
    const records = queue;
    queue = [];
    unsent++;
    send({ tag: TAG, op: 'records', records }, () => {
      unsent--;
      if (queue.length) schedule();
    });
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => flush(false));
  };
  const push = (r: () => WireRecord) => {
    if (queue.length >= MAX_QUEUED) {
      dropped++;
      return;
    }
    queue.push(r());
    schedule();
  };
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    if (m.op === 'flush') {
      flush(true);
      send({ tag: TAG, op: 'flushed', id: m.id });
    } else if (m.op === 'answer') questions.answer(m);
  });
  return {
    load: (load) => send({ tag: TAG, op: 'load', load }),
    infer: (event, outputs) =>
      push(() => ({
        kind: 'infer',
        event: {
          model: event.model,
          version: event.version,
          requestId: event.requestId,
          durationMs: event.durationMs,
          request: ownRequest(event.request),
          ...(event.response ? { response: ownResponse(event.response) } : {}),
          ...(event.error ? { error: plainError(event.error) as InferenceError } : {}),
        },
        ...(outputs ? { outputs } : {}),
      })),
    shadow: (r) =>
      push(() => ({
        kind: 'shadow',
        result: { ...r, request: ownRequest(r.request), primary: ownResponse(r.primary), ...(r.shadow ? { shadow: ownResponse(r.shadow) } : {}) },
      })),
    ask: (question) => questions.ask((id) => send({ tag: TAG, op: 'ask', id, question })),
    flush: () => flush(true),
    get dropped() {
      return dropped;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Primary side

export interface MonitorHost {
  records(records: WireRecord[]): void;
  /** Called once per round of loads of a version (each worker loads it; a replacement worker's reload is no new round). */
  load(load: WireLoad): void;
  answer(question: MonitorQuestion): Promise<unknown>;
}

/** Serves the workers' monitoring messages in the primary. Call before runPrimary() forks (see useStructuredClone). */
export function hostMonitor(host: MonitorHost): void {
  useStructuredClone();
  const loads = new Map<string, Map<number, number>>();
  let nextFlush = 1;
  const flushes = new Map<number, { waitingOn: Set<Worker>; done(): void }>();
  const flushAll = () =>
    new Promise<void>((done) => {
      const id = nextFlush++;
      const targets = Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w?.isConnected()));
      if (!targets.length) return done();
      const timer = setTimeout(() => finish(), FLUSH_TIMEOUT_MS);
      const finish = () => {
        clearTimeout(timer);
        flushes.delete(id);
        done();
      };
      flushes.set(id, { waitingOn: new Set(targets), done: finish });
      for (const w of targets) w.send({ tag: TAG, op: 'flush', id } satisfies Message, undefined, () => {});
    });
  cluster.on('exit', (w) => {
    for (const f of [...flushes.values()]) if (f.waitingOn.delete(w) && f.waitingOn.size === 0) f.done();
  });
  cluster.on('message', (w: Worker, m: unknown) => {
    if (!isMessage(m)) return;
    if (m.op === 'records') host.records(m.records);
    else if (m.op === 'flushed') {
      const f = flushes.get(m.id);
      if (f && f.waitingOn.delete(w) && f.waitingOn.size === 0) f.done();
    } else if (m.op === 'load') {
      // The n-th load of a version by a worker is a new round when no worker has loaded it n times before.
      const key = `${m.load.name}\u0000${m.load.version}\u0000${m.load.path}`;
      let counts = loads.get(key);
      if (!counts) loads.set(key, (counts = new Map()));
      const mine = (counts.get(w.id) ?? 0) + 1;
      counts.set(w.id, mine);
      if ([...counts].every(([id, n]) => id === w.id || n < mine)) host.load(m.load);
    } else if (m.op === 'ask') {
      void (async () => {
        let reply: Message;
        try {
          if (m.question.what !== 'events') await flushAll(); // a CloudEvent counts nothing the workers hold
          reply = { tag: TAG, op: 'answer', id: m.id, value: await host.answer(m.question) };
        } catch (e) {
          const err = toInferenceError(e);
          reply = { tag: TAG, op: 'answer', id: m.id, error: { code: err.code, message: err.message } };
        }
        if (w.isConnected()) w.send(reply, undefined, () => {});
      })();
    }
  });
}

/** Rebuilds the InferenceError of a forwarded event (structured clone keeps the fields, not the class). */
export function reviveEvent(e: InferEvent): InferEvent {
  return e.error ? { ...e, error: new InferenceError(e.error.code, e.error.message) } : e;
}
