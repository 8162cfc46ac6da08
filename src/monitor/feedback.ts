// Feedback: the recent predictions a ground truth can name, the check and scoring of one feedback body, and the
// rolling live accuracy (classification) or mean absolute error (regression) of one model version.
import { InferenceError } from '../core/index.ts';
import type { Cell, PredictionSpec } from './model-profile.ts';
import type { PerformanceReport } from './window.ts';

/** A prediction remembered for feedback. */
export interface Remembered {
  model: string;
  version: string;
  predictions: Cell[];
  spec: PredictionSpec;
  requestId?: string;
  feedback?: boolean;
}

/**
 * The model version a prediction came from and how its predictions were read: one object per version and spec, kept
 * by the monitor (VersionState.owner), not one per request.
 */
export interface PredictionOwner {
  readonly model: string;
  readonly version: string;
  readonly spec: PredictionSpec;
}

/**
 * Remembers recent predictions for feedback. Keys that `countOf` numbers (the ids this server gave, counted up:
 * node/request-id.ts) go into a ring of `cap` slots at their count: a slot is written per request, nothing is hashed,
 * no map grows and no object is made (the owner is the version's). A request's one-row numeric prediction (a class
 * index, a value) is a number in a Float64Array; only other predictions keep an array. (As a Map keyed by the id
 * strings, the feedback memory was nine tenths of the monitor's time per request, ~1.2 of ~1.3 µs, 2026-12-06; as a
 * ring of one object per request it still held the last 10,000 requests' objects, which lived long enough to be
 * moved to V8's old generation and were then collected there: MLP, binary, 64 connections, 2026-12-07,
 * 29,161/29,468 req/s and 36 µs CPU a request against 30,535/30,264 and 34 µs remembering nothing, p99 at one
 * connection 1.1-1.2 against 0.5 ms.)
 * Other keys (ids clients chose, their requests' own "id") go into two generations of maps: new keys into
 * `current`; when it holds `cap` entries it becomes `previous` and a fresh map starts. Lookups see at least the last
 * `cap` keys of each kind.
 */
export class RecentPredictions {
  private current = new Map<string, Remembered>();
  private previous = new Map<string, Remembered>();
  /** Per slot: the key's count + 1 (0: empty), its owner, its prediction as a number or else as cells, and whether feedback came. */
  private readonly counts: Float64Array;
  private readonly owners: (PredictionOwner | undefined)[];
  private readonly numbers: Float64Array;
  private readonly cells: (Cell[] | undefined)[];
  private readonly fed: Uint8Array;
  constructor(
    readonly cap: number,
    private readonly countOf: (key: string) => number = () => -1,
  ) {
    const ring = cap >= 1 ? cap : 0;
    this.counts = new Float64Array(ring);
    this.owners = new Array<PredictionOwner | undefined>(ring).fill(undefined);
    this.numbers = new Float64Array(ring);
    this.cells = new Array<Cell[] | undefined>(ring).fill(undefined);
    this.fed = new Uint8Array(ring);
  }

  /** The count of a key the ring keeps (one `countOf` numbers), else -1. */
  private countIn(key: string): number {
    return this.counts.length === 0 ? -1 : this.countOf(key);
  }

  /**
   * Remembers `predictions` (one per row; a bare number for a one-row numeric one) of `owner` under `key`.
   * `requestId`: the x-request-id of the answer, when `key` is another name for it (a request's own "id").
   */
  set(key: string, owner: PredictionOwner, predictions: Cell[] | number, requestId?: string): void {
    const n = this.countIn(key);
    if (n >= 0) {
      const slot = n % this.counts.length;
      this.counts[slot] = n + 1;
      this.owners[slot] = owner;
      this.fed[slot] = 0;
      if (typeof predictions === 'number') {
        this.numbers[slot] = predictions;
        this.cells[slot] = undefined;
      } else this.cells[slot] = predictions;
      return;
    }
    this.current.set(key, { model: owner.model, version: owner.version, spec: owner.spec, predictions: typeof predictions === 'number' ? [predictions] : predictions, requestId: requestId ?? key });
    if (this.current.size >= this.cap) {
      this.previous = this.current;
      this.current = new Map();
    }
  }

  get(key: string): Remembered | undefined {
    const n = this.countIn(key);
    if (n < 0) return this.current.get(key) ?? this.previous.get(key);
    const slot = n % this.counts.length;
    const owner = this.owners[slot];
    if (this.counts[slot] !== n + 1 || !owner) return undefined;
    return { model: owner.model, version: owner.version, spec: owner.spec, predictions: this.cells[slot] ?? [this.numbers[slot]], requestId: key, feedback: this.fed[slot] === 1 };
  }

  /** Records that the prediction under `key` (as get found it) has had its feedback. */
  markFed(key: string, entry: Remembered): void {
    entry.feedback = true;
    const n = this.countIn(key);
    if (n < 0) return;
    const slot = n % this.counts.length;
    if (this.counts[slot] === n + 1) this.fed[slot] = 1;
  }
}

/**
 * Finds the prediction a feedback body names and scores it row by row: 1/0 per row (classification) or the absolute
 * error (regression). Refuses, naming the field, a body that names no known request or does not fit its rows.
 */
export function scoreFeedback(recent: RecentPredictions, model: string, version: string | undefined, body: Record<string, unknown>): { entry: Remembered; id: string; scores: number[] } {
  const id = body.id ?? body.request_id;
  if (typeof id !== 'string' || !id) throw new InferenceError('INVALID_REQUEST', `feedback needs "id": the x-request-id header of the response (or the request's own "id"), e.g. {"id": "…", "truth": 1}`);
  if (!('truth' in body)) throw new InferenceError('INVALID_REQUEST', `feedback needs "truth": the ground truth (a class label or a value; a list with one per row for a batch)`);
  let key = id;
  let entry = recent.get(key);
  if (!entry) entry = recent.get((key = `id:${id}`));
  if (!entry || entry.model !== model) {
    throw new InferenceError('NOT_FOUND', `no recent prediction of model '${model}' with id '${id}': feedback must name the x-request-id (or the request's "id") of one of the last ${recent.cap} requests`);
  }
  if (version !== undefined && version !== entry.version) throw new InferenceError('INVALID_REQUEST', `request '${id}' was answered by version ${entry.version}, not ${version}`);
  if (entry.feedback) throw new InferenceError('INVALID_REQUEST', `feedback for request '${id}' was already recorded`);
  const truths = Array.isArray(body.truth) ? (body.truth as unknown[]) : [body.truth];
  if (truths.length !== entry.predictions.length) throw new InferenceError('INVALID_REQUEST', `request '${id}' had ${entry.predictions.length} rows; "truth" has ${truths.length} (give one value per row)`);
  const scores: number[] = [];
  for (let i = 0; i < truths.length; i++) {
    const t = truths[i];
    if (t === null || typeof t === 'object') throw new InferenceError('INVALID_REQUEST', `"truth"[${i}] must be a label or a number, got ${JSON.stringify(t)}`);
    if (entry.spec.task === 'classification') scores.push(String(entry.predictions[i]) === String(t) ? 1 : 0);
    else {
      const x = Number(t);
      if (!Number.isFinite(x)) throw new InferenceError('INVALID_REQUEST', `"truth"[${i}] must be a number for a regression model, got ${JSON.stringify(t)}`);
      scores.push(Math.abs(Number(entry.predictions[i]) - x));
    }
  }
  recent.markFed(key, entry);
  return { entry, id, scores };
}

/** The feedback of one model version: rows received (all time), the last `window` scores, and the figure over time. */
export class LivePerformance {
  total = 0;
  /** 1/0 per row (classification) or |error| (regression), newest last. */
  private readonly recent: number[] = [];
  readonly history: { t: number; value: number }[] = [];
  constructor(
    private readonly window: number,
    private readonly historyPoints: number,
  ) {}

  add(scores: number[]): void {
    this.total += scores.length;
    this.recent.push(...scores);
    if (this.recent.length > this.window) this.recent.splice(0, this.recent.length - this.window);
  }

  /** Adds the figure of `report` at time `t` to the history. */
  mark(t: number, report: PerformanceReport): void {
    const value = report.accuracy ?? report.mae;
    if (value === undefined) return;
    this.history.push({ t, value });
    if (this.history.length > this.historyPoints) this.history.splice(0, this.history.length - this.historyPoints);
  }

  report(spec: PredictionSpec | undefined, reference: PerformanceReport['reference']): PerformanceReport {
    const n = this.recent.length;
    const mean = n ? this.recent.reduce((a, b) => a + b, 0) / n : undefined;
    return {
      ...(spec ? { task: spec.task } : {}),
      feedback: this.total,
      window: n,
      ...(mean !== undefined ? (spec?.task === 'regression' ? { mae: mean } : { accuracy: mean }) : {}),
      ...(reference ? { reference } : {}),
    };
  }
}
