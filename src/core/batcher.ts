// Dynamic batching and per-model scheduling, as Triton's dynamic batcher does it: requests queue per model; when an
// instance is free, the oldest request and the later ones whose non-batch dimensions agree are joined along
// dimension 0 into one run, and the outputs are split back. A bounded queue turns overload into a clear error
// instead of unbounded memory. Timer-driven: nothing polls. Runtime-agnostic (no node:*), so a Lambda or a browser
// bundle can use the same scheduler.
import { InferenceError, toInferenceError } from './errors.ts';
import type { TensorData } from './datatypes.ts';
import { elementCount, sameDims, type Tensor } from './tensor.ts';

export interface BatchingOptions {
  /** Most rows (sum of dimension 0) in one run. */
  maxBatchSize: number;
  /** How long the oldest request may wait for others to join it. 0 = run what is there as soon as an instance is free. */
  maxQueueDelayMs: number;
  /** Batch sizes to send as soon as they can be formed (Triton's preferred_batch_size). */
  preferredBatchSizes?: readonly number[];
}

export interface ExecuteEvent {
  /** Rows in the run (sum of the requests' dimension 0). */
  rows: number;
  requests: number;
  computeMs: number;
  ok: boolean;
  instance: number;
  /** The run was the `lone` one (DynamicBatcherOptions.lone), within the call; `instance` is then 0 but did not run it. */
  lone?: boolean;
}

export interface DynamicBatcherOptions {
  /** Runs that may go at once (one per model instance). */
  instances: number;
  /** Absent = every request runs on its own. */
  batching?: BatchingOptions;
  /** Requests that may wait (not counting running ones); one more is refused with QUEUE_FULL. */
  maxQueueSize: number;
  run(feeds: Tensor[], outputNames: readonly string[], instance: number): Promise<Tensor[]>;
  onExecute?(event: ExecuteEvent): void;
  now?(): number;
  /**
   * Runs a callback once the requests that have already arrived are queued (Node: setImmediate, which runs after
   * the event loop has read every socket that was ready). With it, a batchable request does not start a run on its
   * own the moment it is queued: the run starts when this turn of the event loop has queued every request it read,
   * and takes them all. Nothing waits for requests that have not arrived. Absent: runs start at once.
   */
  defer?(callback: () => void): void;
  /**
   * Runs compute within the call (onnxruntime-node's synchronous session on the main thread). With `defer`, requests
   * that cannot share a run and arrive in a turn that already ran one wait for the turn's end too, and run one after
   * another there before any of them is answered. Can be changed later ({@link DynamicBatcher.runsInCall}).
   */
  runsInCall?: boolean;
  /**
   * The run of `run`, its outputs returned rather than promised, for sessions that compute within the call: with it
   * (and `runsInCall`), {@link DynamicBatcher.runNow} answers a request in the call that submits it.
   */
  runNow?(feeds: readonly Tensor[], outputNames: readonly string[], instance: number): Tensor[];
  /**
   * A run within the call for instances that compute elsewhere (worker threads): {@link DynamicBatcher.runNow} uses
   * it for a request that arrives while nothing is queued or running, which would otherwise pay a hand-off each way
   * (a lone request); batches and queues still go to the instances. Its runs are reported as instance 0's. Can be
   * set later ({@link DynamicBatcher.lone}).
   */
  lone?(feeds: readonly Tensor[], outputNames: readonly string[]): Tensor[];
}

export interface SubmitOptions {
  /** Fails the request with TIMEOUT after this long (queue + run); 0 or absent = no limit. */
  timeoutMs?: number;
}

export interface ScheduledResult {
  outputs: Tensor[];
  queueMs: number;
  computeMs: number;
  /** Rows of the run this request was part of. */
  batchRows: number;
}

interface Pending {
  inputs: readonly Tensor[];
  outputNames: readonly string[];
  rows: number;
  /** Requests with the same key can share a run; undefined = runs alone. */
  key: string | undefined;
  enqueuedAt: number;
  settled: boolean;
  timer?: ReturnType<typeof setTimeout>;
  /** Once dispatched: settles when its run (and any per-request reruns) has finished. */
  running?: Promise<void>;
  resolve(r: ScheduledResult): void;
  reject(e: unknown): void;
}

type NumericData = Exclude<TensorData, Uint8Array[]>;

/** Joins tensors of one input along dimension 0. */
export function concatRows(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  const rows = parts.reduce((s, t) => s + t.shape[0], 0);
  const shape = [rows, ...first.shape.slice(1)];
  let data: TensorData;
  if (first.datatype === 'BYTES') data = parts.flatMap((t) => t.data as Uint8Array[]);
  else {
    const total = parts.reduce((s, t) => s + (t.data as NumericData).length, 0);
    const Ctor = (first.data as NumericData).constructor as new (n: number) => NumericData;
    const out = new Ctor(total);
    let p = 0;
    for (const t of parts) {
      const d = t.data as NumericData;
      (out as Float32Array).set(d as Float32Array, p);
      p += d.length;
    }
    data = out;
  }
  return { name: first.name, datatype: first.datatype, shape, data };
}

/** Rows [start, start + rows) of a tensor; numeric data is a view, not a copy. */
export function sliceRows(t: Tensor, start: number, rows: number): Tensor {
  const rowSize = elementCount(t.shape.slice(1));
  const a = start * rowSize;
  const b = (start + rows) * rowSize;
  const data = t.datatype === 'BYTES' ? (t.data as Uint8Array[]).slice(a, b) : (t.data as NumericData).subarray(a, b);
  return { name: t.name, datatype: t.datatype, shape: [rows, ...t.shape.slice(1)], data };
}

/** What a batching key is made of: the inputs' names, types and shapes (beyond dimension 0), and the outputs asked for. */
interface Layout {
  inputs: readonly Pick<Tensor, 'name' | 'datatype' | 'shape'>[];
  outputNames: readonly string[];
}

/** Whether a request has the inputs and outputs of the one `last.key` was made for (all of them batchable by `rows`). */
function sameLayout(last: Layout, inputs: readonly Tensor[], outputNames: readonly string[], rows: number): boolean {
  const a = last.inputs;
  if (a.length !== inputs.length || last.outputNames.length !== outputNames.length) return false;
  for (let i = 0; i < outputNames.length; i++) if (last.outputNames[i] !== outputNames[i]) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = inputs[i];
    if (x.name !== y.name || x.datatype !== y.datatype || y.shape[0] !== rows || !sameDims(x.shape, y.shape, 1)) return false;
  }
  return true;
}

/** Most requests run one after another before their answers go out (runsInCall). */
const SEQUENCE_MAX = 64;

export class DynamicBatcher {
  private readonly queue: Pending[] = [];
  private readonly busy: boolean[];
  private readonly now: () => number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;
  private deferred = false;
  /**
   * Whether the last run took more than one request. While runs go one request at a time (one client, or clients
   * that never overlap), a new request starts at once instead of waiting for the deferred callback: that wait costs
   * an extra turn of the event loop per request (an epoll call), and there is nobody to batch with. Once requests
   * overlap, the first of a burst runs alone, the rest queue behind it and run together, and deferring resumes.
   */
  private concurrent = true;
  /**
   * Whether a run started in this turn of the event loop (cleared by a deferred callback). A run that computes
   * within the call (onnxruntime-node's synchronous session, on the main thread) has ended before the next request
   * of the same turn is read, so no queue forms behind it: the second request of a turn waits for the turn's end
   * instead, and whatever else this turn reads joins it.
   */
  private ranThisTurn = false;
  /** The option of that name, for a model whose runs move to another thread while it serves. */
  runsInCall: boolean;
  /** The option of that name, for a model that gains one when its runs move to another thread while it serves. */
  lone: DynamicBatcherOptions['lone'];
  private running = 0;
  private closedWith: InferenceError | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: DynamicBatcherOptions) {
    if (!(options.instances >= 1)) throw new RangeError('instances must be at least 1');
    this.busy = new Array(options.instances).fill(false);
    this.now = options.now ?? (() => performance.now());
    this.runsInCall = options.runsInCall ?? false;
    this.lone = options.lone;
  }

  /** Requests waiting for an instance. */
  get queued(): number {
    return this.queue.length;
  }

  /** Runs in progress. */
  get active(): number {
    return this.running;
  }

  /**
   * Queues one request. `inputs` must already be validated against the model; `outputNames` are the outputs to
   * compute, in the order the result returns them.
   */
  submit(inputs: readonly Tensor[], outputNames: readonly string[], options: SubmitOptions = {}): Promise<ScheduledResult> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.queue.length >= this.options.maxQueueSize) {
      return Promise.reject(
        new InferenceError('QUEUE_FULL', `the model's queue is full (${this.options.maxQueueSize} requests waiting); retry later, or raise max_queue_size`),
      );
    }
    return new Promise<ScheduledResult>((resolve, reject) => {
      const rows = inputs[0]?.shape[0] ?? 0;
      const p: Pending = {
        inputs,
        outputNames,
        rows,
        key: this.keyOf(inputs, outputNames, rows),
        enqueuedAt: this.now(),
        settled: false,
        // Methods, not arrow properties: under tsx (esbuild keepNames) each named arrow costs a defineProperty call
        // per request.
        resolve(r) {
          if (p.settled) return;
          p.settled = true;
          if (p.timer) clearTimeout(p.timer);
          resolve(r);
        },
        reject(e) {
          if (p.settled) return;
          p.settled = true;
          if (p.timer) clearTimeout(p.timer);
          reject(e);
        },
      };
      if (options.timeoutMs && options.timeoutMs > 0) {
        p.timer = setTimeout(() => {
          const i = this.queue.indexOf(p);
          if (i !== -1) {
            this.queue.splice(i, 1);
            this.schedule();
            this.checkIdle();
          }
          // A run already under way cannot be stopped; its result is dropped for this request.
          const error = new InferenceError('TIMEOUT', `the request took longer than the server's request timeout of ${options.timeoutMs} ms`);
          if (i === -1 && p.running) error.outlived = p.running;
          p.reject(error);
        }, options.timeoutMs);
      }
      this.queue.push(p);
      if (this.options.defer && (p.key !== undefined ? this.concurrent || this.ranThisTurn : this.ranThisTurn && this.runsInCall)) this.scheduleLater();
      else this.schedule();
    });
  }

  /**
   * Whether a request would start its run at once if submitted now, alone, within the call: the runs compute in the
   * call (`runsInCall`, `runNow`) or there is a `lone` run for them, nothing is queued or running, and nothing would
   * make it wait — neither the turn's end (another request already ran in this turn, or the last run took several:
   * requests are arriving together and may batch) nor a queue delay. Then {@link runNow} does what submit would,
   * with no promise, no queue entry and no timer (a lone client's request, 2026-12-06: the promises and
   * continuations between its run and its answer were ~7 µs of its ~108 on the main thread, pinned).
   */
  canRunNow(inputs: readonly Tensor[], outputNames: readonly string[]): boolean {
    if (!(this.runsInCall ? this.options.runNow : this.lone) || this.closedWith || this.queue.length > 0 || this.running > 0) return false;
    const rows = inputs[0]?.shape[0] ?? 0;
    const key = this.keyOf(inputs, outputNames, rows);
    if (this.options.defer && (this.ranThisTurn || (key !== undefined && this.concurrent))) return false;
    const b = this.options.batching;
    return key === undefined || !b || b.maxQueueDelayMs <= 0 || rows >= b.maxBatchSize;
  }

  /**
   * Runs one request within the call, as submit would have at once; only after {@link canRunNow} said so. `defer`
   * (InferContext.defer) takes the run's report (onExecute) until the answer has gone.
   */
  runNow(inputs: readonly Tensor[], outputNames: readonly string[], defer?: (work: () => void) => void): ScheduledResult {
    const instance = this.freeInstance();
    const rows = inputs[0]?.shape[0] ?? 0;
    this.busy[instance] = true;
    this.running++;
    this.concurrent = false;
    this.markTurn();
    const started = this.now();
    const lone = !this.runsInCall;
    let outputs: Tensor[];
    try {
      outputs = lone ? this.lone!(inputs, outputNames) : this.options.runNow!(inputs, outputNames, instance);
    } catch (e) {
      this.report(rows, 1, started, false, instance, undefined, lone);
      throw toInferenceError(e);
    } finally {
      this.busy[instance] = false;
      this.running--;
      this.checkIdle();
    }
    const computeMs = this.report(rows, 1, started, true, instance, defer, lone);
    return { outputs, queueMs: 0, computeMs, batchRows: rows };
  }

  /** A run starts in this turn of the event loop: later requests of the turn wait for its end (see ranThisTurn). */
  private markTurn(): void {
    if (this.ranThisTurn || !this.options.defer) return;
    this.ranThisTurn = true;
    this.options.defer(() => {
      this.ranThisTurn = false;
    });
  }

  private scheduleLater(): void {
    if (this.deferred) return;
    this.deferred = true;
    this.options.defer!(() => {
      this.deferred = false;
      this.schedule();
    });
  }

  /** Resolves once nothing is queued or running. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new requests and fails the queued ones with `error`; running ones finish. */
  close(error = new InferenceError('MODEL_NOT_READY', 'the model is being unloaded')): void {
    this.closedWith = error;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const p of this.queue.splice(0)) p.reject(error);
    this.checkIdle();
  }

  private keyOf(inputs: readonly Tensor[], outputNames: readonly string[], rows: number): string | undefined {
    const b = this.options.batching;
    if (!b || b.maxBatchSize < 2 || rows < 1 || rows > b.maxBatchSize) return undefined;
    // Most requests of a model look alike: the last key is reused when this one has the same inputs (names, types,
    // shapes beyond dimension 0, in the same order) and outputs, instead of building and sorting the strings again.
    const last = this.lastKey;
    if (last && sameLayout(last, inputs, outputNames, rows)) return last.key;
    const key = this.buildKey(inputs, outputNames, rows);
    // Only the layout is kept, not the tensors (their data would stay alive until the next request).
    if (key !== undefined) this.lastKey = { key, inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })), outputNames: [...outputNames] };
    return key;
  }

  private lastKey: ({ key: string } & Layout) | undefined;

  private buildKey(inputs: readonly Tensor[], outputNames: readonly string[], rows: number): string | undefined {
    const parts: string[] = [];
    for (const t of inputs) {
      if (t.shape.length === 0 || t.shape[0] !== rows) return undefined;
      parts.push(`${t.name}\u0001${t.datatype}\u0001${t.shape.slice(1).join(',')}`);
    }
    parts.sort();
    return `${outputNames.join('\u0001')}\u0002${parts.join('\u0002')}`;
  }

  private freeInstance(): number {
    return this.busy.indexOf(false);
  }

  private schedule(): void {
    this.scheduleRuns();
    if (this.queue.length === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Infinity;
    }
  }

  private scheduleRuns(): void {
    while (this.queue.length > 0) {
      const instance = this.freeInstance();
      if (instance === -1) return;
      const head = this.queue[0];
      const b = this.options.batching;
      if (!b || head.key === undefined) {
        if (this.runsInCall && this.options.defer && this.queue.length > 1) this.dispatch(this.unkeyedHead(), instance, true);
        else this.dispatch([head], instance);
        continue;
      }
      const picked: Pending[] = [];
      const cumulative: number[] = [];
      let rows = 0;
      let full = false;
      for (const p of this.queue) {
        if (p.key !== head.key) continue;
        if (rows + p.rows > b.maxBatchSize) {
          full = true;
          break;
        }
        picked.push(p);
        rows += p.rows;
        cumulative.push(rows);
        if (rows === b.maxBatchSize) {
          full = true;
          break;
        }
      }
      if (full) {
        this.dispatch(picked, instance);
        continue;
      }
      const preferred = b.preferredBatchSizes;
      if (preferred && preferred.length) {
        let cut = -1;
        for (let i = cumulative.length - 1; i >= 0; i--) {
          if (preferred.includes(cumulative[i])) {
            cut = i;
            break;
          }
        }
        if (cut !== -1) {
          this.dispatch(picked.slice(0, cut + 1), instance);
          continue;
        }
      }
      const due = head.enqueuedAt + b.maxQueueDelayMs;
      if (this.now() >= due) {
        this.dispatch(picked, instance);
        continue;
      }
      this.armTimer(due);
      return;
    }
  }

  /** The requests at the queue's head that run alone, up to SEQUENCE_MAX of them. */
  private unkeyedHead(): Pending[] {
    const picked: Pending[] = [];
    for (const p of this.queue) {
      if (p.key !== undefined || picked.length === SEQUENCE_MAX) break;
      picked.push(p);
    }
    return picked;
  }

  private armTimer(at: number): void {
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.schedule();
    }, Math.max(0, at - this.now()));
  }

  private dispatch(picked: Pending[], instance: number, sequence = false): void {
    if (picked.length === 1 && this.queue[0] === picked[0]) this.queue.shift();
    else {
      const set = new Set(picked);
      let w = 0;
      for (let r = 0; r < this.queue.length; r++) if (!set.has(this.queue[r])) this.queue[w++] = this.queue[r];
      this.queue.length = w;
    }
    this.busy[instance] = true;
    this.running++;
    this.concurrent = picked.length > 1 || this.queue.length > 0;
    this.markTurn();
    const started = this.now();
    const run = (sequence ? this.executeEach(picked, instance, started) : this.execute(picked, instance, started)).finally(() => {
      this.busy[instance] = false;
      this.running--;
      this.schedule();
      this.checkIdle();
    });
    // Only a request with a timeout can be failed while its run goes on (and then needs to know when it ends).
    for (const p of picked) if (p.timer) p.running = run;
  }

  private async execute(picked: Pending[], instance: number, started: number): Promise<void> {
    const head = picked[0];
    const rows = picked.reduce((s, p) => s + p.rows, 0);
    let outputs: Tensor[];
    try {
      const feeds = picked.length === 1 ? [...head.inputs] : head.inputs.map((t) => concatRows(picked.map((p) => p.inputs.find((x) => x.name === t.name)!)));
      outputs = await this.options.run(feeds, head.outputNames, instance);
    } catch (e) {
      this.report(rows, picked.length, started, false, instance);
      const err = toInferenceError(e);
      for (const p of picked) p.reject(err);
      return;
    }
    const computeMs = this.report(rows, picked.length, started, true, instance);
    if (picked.length === 1) {
      head.resolve({ outputs, queueMs: started - head.enqueuedAt, computeMs, batchRows: rows });
      return;
    }
    if (outputs.some((o) => o.shape.length === 0 || o.shape[0] !== rows)) {
      // The model's outputs do not follow its inputs' dimension 0, so the rows cannot be told apart: run each alone.
      for (const p of picked) {
        const t0 = this.now();
        try {
          const own = await this.options.run([...p.inputs], p.outputNames, instance);
          const ms = this.report(p.rows, 1, t0, true, instance);
          p.resolve({ outputs: own, queueMs: started - p.enqueuedAt, computeMs: ms, batchRows: p.rows });
        } catch (e) {
          this.report(p.rows, 1, t0, false, instance);
          p.reject(toInferenceError(e));
        }
      }
      return;
    }
    let offset = 0;
    for (const p of picked) {
      const own = outputs.map((o) => sliceRows(o, offset, p.rows));
      offset += p.rows;
      p.resolve({ outputs: own, queueMs: started - p.enqueuedAt, computeMs, batchRows: rows });
    }
  }

  /**
   * Requests that cannot share a run, run one after another on one instance; none is answered before the last has
   * run, so that the answers go out together after the runs, as a batch's do.
   */
  private async executeEach(picked: Pending[], instance: number, started: number): Promise<void> {
    const results: (ScheduledResult | InferenceError)[] = [];
    let t0 = started;
    for (const p of picked) {
      try {
        const outputs = await this.options.run([...p.inputs], p.outputNames, instance);
        const computeMs = this.report(p.rows, 1, t0, true, instance);
        results.push({ outputs, queueMs: t0 - p.enqueuedAt, computeMs, batchRows: p.rows });
      } catch (e) {
        this.report(p.rows, 1, t0, false, instance);
        results.push(toInferenceError(e));
      }
      t0 = this.now();
    }
    for (let i = 0; i < picked.length; i++) {
      const r = results[i];
      if (r instanceof InferenceError) picked[i].reject(r);
      else picked[i].resolve(r);
    }
  }

  /** Times a run and tells onExecute: at once, or through `defer` (runNow's caller, once the answer has gone). */
  private report(rows: number, requests: number, started: number, ok: boolean, instance: number, defer?: (work: () => void) => void, lone?: boolean): number {
    const computeMs = this.now() - started;
    const onExecute = this.options.onExecute;
    if (onExecute) {
      const event: ExecuteEvent = { rows, requests, computeMs, ok, instance };
      if (lone) event.lone = true;
      if (defer) defer(() => onExecute(event));
      else onExecute(event);
    }
    return computeMs;
  }

  private checkIdle(): void {
    if (this.queue.length || this.running) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
