// onnxruntime-node in a child process per session (`dais serve --isolation process`). A native crash inside a run
// (onnxruntime calling abort(), a segfault in a kernel) kills the process it happens in; on a worker thread that is
// the whole server. Here it is only the child: its pending runs fail with MODEL_PROCESS_EXITED (503), the session
// says it is not ready, and a new child loads the model again after a backoff (0.1 s, doubling, up to 30 s; back to
// 0.1 s once a child has lived a minute). Every other model, and this one once restarted, keeps serving.
//
// The cost: each run's tensors cross a pipe both ways (structured clone, not a thread's memory copy), and each
// session holds a Node process and its own copy of onnxruntime (docs/architecture.md §7 has the numbers).
//
// The child's code is session-host.ts's, after a prologue that speaks over the IPC channel and ends the child when
// the server goes (the channel closes). DAIS_TEST_CHILD_ZERO_DIM_MARKER is honoured there only, for the tests: a
// float32 feed whose first value is that number is run with dimension 0 set to 0 and no data — a request the
// server's own checks refuse before any run (validate.ts) and that makes onnxruntime 1.30 abort in a GRU — so a
// test can crash a child for real.
import { spawn, type ChildProcess } from 'node:child_process';
import { InferenceError, type Tensor } from '../core/index.ts';
import type { Backend, ModelSource, Session, SessionOptions } from './backend.ts';
import { ortSessionOptions } from './onnxruntime-node.ts';
import { tensorMetadataOf } from './ort-tensors.ts';
import { hostLoaded, PendingRuns, resolveOrt, sessionHostSource, type FromHost, type ToHost } from './session-host.ts';

const CHILD_SOURCE = sessionHostSource(`
const ort = require(process.argv[1]);
const send = (m) => process.send(m);
const receive = (f) => process.on('message', f);
process.on('disconnect', () => process.exit(0));
const marker = process.env.DAIS_TEST_CHILD_ZERO_DIM_MARKER;
const adjust = marker === undefined ? (feeds) => feeds : (feeds) => feeds.map((f) =>
  f.type === 'float32' && f.data.length > 0 && f.data[0] === Number(marker) ? { ...f, dims: [0, ...f.dims.slice(1)], data: new Float32Array(0) } : f);`);

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 30_000;
/** A child that lived this long resets the backoff: its crash is not part of a crash loop. */
const STABLE_MS = 60_000;
const DISPOSE_WAIT_MS = 5000;

/** What a process-isolated session tells the server about its children (for logs and /metrics). */
export interface ProcessEvents {
  /** A child ended on its own: `failed` runs were pending in it; a new one starts in `restartInMs`. */
  exited?(e: { model?: string; version?: string; pid?: number; code: number | null; signal: string | null; failed: number; restartInMs: number }): void;
  /** A new child loaded the model (`error` unset) or failed to (another try follows). */
  restarted?(e: { model?: string; version?: string; pid?: number; error?: string }): void;
}

function startChild(): ChildProcess {
  // stdout is the server's (its --json line); a child's stderr (onnxruntime's own messages) goes to the server's.
  return spawn(process.execPath, ['-e', CHILD_SOURCE, resolveOrt()], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' });
}

function post(child: ChildProcess, m: ToHost): void {
  child.send(m);
}

class ProcessSession implements Session {
  readonly thread = 'worker' as const;
  inputs: Session['inputs'] = [];
  outputs: Session['outputs'] = [];
  ready = false;
  externalBytes = 0;
  private child: ChildProcess | undefined;
  private pending = new PendingRuns();
  private disposed = false;
  private backoffMs = FIRST_BACKOFF_MS;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private lastExit = '';
  private readonly label: string;

  constructor(
    private readonly model: ModelSource,
    private readonly options: SessionOptions | undefined,
    private readonly events: ProcessEvents,
  ) {
    const owner = options?.owner;
    this.label = owner ? `model '${owner.model}' version ${owner.version}` : 'the model';
  }

  /** Starts a child and loads the model in it; on success the session serves from it. */
  async start(): Promise<void> {
    const child = startChild();
    const startedAt = performance.now();
    // Bytes are copied to the child (kept here, for restarts); a path is read by onnxruntime there.
    const loaded = await hostLoaded(child, 'child process', () => post(child, { op: 'load', model: this.model, options: ortSessionOptions(this.options) })).catch((e: unknown) => {
      child.kill('SIGKILL');
      throw e;
    });
    const pending = new PendingRuns();
    child.on('message', (m: FromHost) => pending.settle(m));
    child.on('error', () => {}); // a send to a child that just died: its 'exit' follows and says so
    child.once('exit', (code, signal) => this.onExit(child, pending, startedAt, code, signal));
    this.child = child;
    this.pending = pending;
    this.inputs = tensorMetadataOf(loaded.inputs, 'input');
    this.outputs = tensorMetadataOf(loaded.outputs, 'output');
    this.externalBytes = loaded.rss;
    this.ready = true;
  }

  private onExit(child: ChildProcess, pending: PendingRuns, startedAt: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child === child) {
      this.child = undefined;
      this.ready = false;
    }
    this.lastExit = signal ? `signal ${signal}` : `exit code ${code}`;
    const failed = pending.size;
    pending.failAll(this.exitedError());
    if (this.disposed) return;
    if (performance.now() - startedAt >= STABLE_MS) this.backoffMs = FIRST_BACKOFF_MS;
    this.events.exited?.({ ...this.options?.owner, pid: child.pid, code, signal, failed, restartInMs: this.backoffMs });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.disposed) return;
      this.start().then(
        () => {
          if (this.disposed) void this.stopChild();
          this.events.restarted?.({ ...this.options?.owner, pid: this.child?.pid });
        },
        (e: unknown) => {
          this.events.restarted?.({ ...this.options?.owner, error: (e as Error).message });
          if (!this.disposed) this.scheduleRestart();
        },
      );
    }, delay);
    this.restartTimer.unref();
  }

  private exitedError(): InferenceError {
    return new InferenceError('MODEL_PROCESS_EXITED', `the process running ${this.label} exited (${this.lastExit}) during or before this run; it is being restarted`);
  }

  get lastComputeUs(): number | undefined {
    return this.pending.lastComputeUs;
  }

  run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
    const child = this.child;
    if (!this.ready || !child) return Promise.reject(this.exitedError());
    return this.pending.run(feeds, outputNames, (m) => post(child, m));
  }

  private async stopChild(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) post(child, { op: 'dispose' });
    const timer = setTimeout(() => child.kill('SIGKILL'), DISPOSE_WAIT_MS);
    await exited;
    clearTimeout(timer);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.ready = false;
    clearTimeout(this.restartTimer);
    await this.stopChild();
  }
}

/** onnxruntime-node in a child process per session; `events` hears of children that die and come back. */
export function onnxruntimeNodeProcess(events: ProcessEvents = {}): Backend {
  return {
    name: 'onnxruntime-node (child processes)',
    async createSession(model: ModelSource, options?: SessionOptions): Promise<Session> {
      const session = new ProcessSession(model, options, events);
      await session.start();
      return session;
    },
  };
}
