// The prediction log: sampled requests and responses in an embedded SQLite database (@photostructure/sqlite, the node:sqlite API with prebuilt binaries), written by a
// worker thread in batched transactions, so neither the request path nor the event loop waits on disk. Retention by
// rows and age runs in the worker after writes. close() writes everything queued before it returns (SIGTERM).
//
// The worker is a small plain-JS string (eval worker), like the onnxruntime worker: no TypeScript loader needed, and
// the SQLite module is handed over by absolute path.
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Tensor } from '../core/index.ts';
import { elementAt } from './model-profile.ts';

export interface PredictionRecord {
  ts: number;
  model: string;
  version: string;
  requestId?: string;
  /** 'primary' for what the client got; 'shadow' for a shadow version's answer to the same request. */
  role: 'primary' | 'shadow';
  durationMs: number;
  /** JSON: {"<tensor>": {"datatype", "shape", "data"}}. */
  inputs: string;
  outputs?: string;
  error?: string;
}

export interface FeedbackRecord {
  ts: number;
  model: string;
  version: string;
  requestId: string;
  /** JSON of the ground truth as given. */
  truth: string;
}

export interface PredictionLogOptions {
  file: string;
  /** Keep at most this many predictions (oldest go first). Default 1,000,000; 0 = no limit. */
  maxRows?: number;
  /** Drop predictions older than this. Default 0 = no limit. */
  maxAgeMs?: number;
  /** How often queued records are handed to the writer (default 250 ms). */
  flushIntervalMs?: number;
  /** Hand over at once when this many are queued (default 500). */
  batchSize?: number;
}

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS predictions (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  request_id TEXT,
  role TEXT NOT NULL,
  duration_ms REAL,
  inputs TEXT,
  outputs TEXT,
  error TEXT
);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts);
CREATE INDEX IF NOT EXISTS predictions_request ON predictions (request_id);
CREATE TABLE IF NOT EXISTS feedback (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  request_id TEXT NOT NULL,
  truth TEXT
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
`;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require(workerData.sqlitePath);
let db;
try {
  db = new DatabaseSync(workerData.file);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec(workerData.schema);
  start();
} catch (e) {
  parentPort.postMessage({ op: 'error', message: String(e && e.message || e) });
}
function start() {
const insert = db.prepare('INSERT INTO predictions (ts, model, version, request_id, role, duration_ms, inputs, outputs, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
const insertFeedback = db.prepare('INSERT INTO feedback (ts, model, version, request_id, truth) VALUES (?, ?, ?, ?, ?)');
const byAge = db.prepare('DELETE FROM predictions WHERE ts < ?');
const byRows = db.prepare('DELETE FROM predictions WHERE id <= (SELECT MAX(id) FROM predictions) - ?');
function write(predictions, feedback) {
  db.exec('BEGIN');
  try {
    for (const p of predictions) insert.run(p.ts, p.model, p.version, p.requestId ?? null, p.role, p.durationMs, p.inputs, p.outputs ?? null, p.error ?? null);
    for (const f of feedback) insertFeedback.run(f.ts, f.model, f.version, f.requestId, f.truth ?? null);
    db.exec('COMMIT');
  } catch (e) {
    db.exec('ROLLBACK');
    throw e;
  }
}
function retain() {
  let removed = 0;
  if (workerData.maxAgeMs > 0) removed += byAge.run(Date.now() - workerData.maxAgeMs).changes;
  if (workerData.maxRows > 0) removed += byRows.run(workerData.maxRows).changes;
  return removed;
}
parentPort.postMessage({ op: 'ready' });
parentPort.on('message', (m) => {
  if (m.op === 'write') {
    try {
      write(m.predictions, m.feedback);
      const removed = retain();
      parentPort.postMessage({ op: 'written', id: m.id, removed });
    } catch (e) {
      parentPort.postMessage({ op: 'written', id: m.id, error: String(e && e.message || e) });
    }
  } else if (m.op === 'close') {
    try { retain(); db.close(); } catch {}
    parentPort.postMessage({ op: 'closed' });
    parentPort.close();
  }
});
}
`;

/** Tensors as the log stores them: plain JSON numbers/strings, row-major. */
export function tensorsJson(tensors: readonly Tensor[]): string {
  const out: Record<string, { datatype: string; shape: number[]; data: unknown[] }> = {};
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = new Array(n);
    for (let i = 0; i < n; i++) data[i] = elementAt(t, i);
    out[t.name] = { datatype: t.datatype, shape: t.shape, data };
  }
  return JSON.stringify(out);
}

export class PredictionLog {
  private queue: PredictionRecord[] = [];
  private feedbackQueue: FeedbackRecord[] = [];
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private timer: ReturnType<typeof setInterval>;
  private closing?: Promise<void>;
  private inFlight: Promise<void> = Promise.resolve();
  /** Records handed to SQLite and committed, and any write error (kept, not thrown at the request path). */
  written = 0;
  removed = 0;
  lastError?: string;

  private constructor(
    private readonly worker: Worker,
    readonly options: PredictionLogOptions,
  ) {
    worker.on('message', (m: { op: string; id?: number; error?: string; removed?: number }) => {
      if (m.op !== 'written' || m.id === undefined) return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error) {
        this.lastError = m.error;
        w?.reject(new Error(`prediction log ${options.file}: ${m.error}`));
      } else {
        this.removed += m.removed ?? 0;
        w?.resolve();
      }
    });
    this.timer = setInterval(() => void this.flush().catch(() => {}), options.flushIntervalMs ?? 250);
    this.timer.unref();
  }

  /** Opens (creating when absent) the database; throws with the file named when SQLite cannot. */
  static async open(options: PredictionLogOptions): Promise<PredictionLog> {
    const require = createRequire(import.meta.url);
    const file = resolve(options.file);
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { sqlitePath: require.resolve('@photostructure/sqlite'), file, schema: SCHEMA, maxRows: options.maxRows ?? 1_000_000, maxAgeMs: options.maxAgeMs ?? 0 },
    });
    await new Promise<void>((ok, fail) => {
      const onMessage = (m: { op: string; message?: string }) => {
        worker.off('error', onError);
        worker.off('message', onMessage);
        if (m.op === 'ready') ok();
        else fail(new Error(`cannot open the prediction log ${file}: ${m.message}`));
      };
      const onError = (e: Error) => {
        worker.off('message', onMessage);
        fail(new Error(`cannot open the prediction log ${file}: ${e.message}`));
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
    });
    worker.unref();
    return new PredictionLog(worker, { ...options, file });
  }

  get queued(): number {
    return this.queue.length + this.feedbackQueue.length;
  }

  append(record: PredictionRecord): void {
    if (this.closing) return;
    this.queue.push(record);
    if (this.queue.length >= (this.options.batchSize ?? 500)) void this.flush().catch(() => {});
  }

  appendFeedback(record: FeedbackRecord): void {
    if (this.closing) return;
    this.feedbackQueue.push(record);
  }

  /** Hands everything queued to the writer and resolves once it is committed. */
  flush(): Promise<void> {
    const run = this.inFlight.then(() => {
      if (!this.queue.length && !this.feedbackQueue.length) return;
      const predictions = this.queue;
      const feedback = this.feedbackQueue;
      this.queue = [];
      this.feedbackQueue = [];
      const id = this.nextId++;
      return new Promise<void>((ok, fail) => {
        this.waiting.set(id, {
          resolve: () => {
            this.written += predictions.length;
            ok();
          },
          reject: fail,
        });
        this.worker.postMessage({ op: 'write', id, predictions, feedback });
      });
    });
    this.inFlight = run.catch(() => {});
    return run;
  }

  /** Writes what is queued, closes the database and ends the worker. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.timer);
      try {
        await this.flush();
      } finally {
        // Wait for the thread to end, not only for its 'closed' message: the SQLite module releases the file's
        // locks as the thread's environment is torn down, and a reader opened right after 'closed' saw SQLITE_BUSY.
        await new Promise<void>((ok) => {
          this.worker.ref(); // the thread is unref'd while serving; hold the process open until it has ended
          this.worker.once('exit', () => ok());
          this.worker.postMessage({ op: 'close' });
        });
      }
    })();
    return this.closing;
  }
}
