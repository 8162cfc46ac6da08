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
 * Remembers recent predictions for feedback. Keys that `countOf` numbers (the ids this server gave, counted up:
 * node/request-id.ts) go into a ring of `cap` slots at their count: a slot is written per request, nothing is hashed
 * and no map grows (as a Map keyed by the id strings, the feedback memory was nine tenths of the monitor's time per
 * request, ~1.2 of ~1.3 µs, 2026-12-06). Other keys (ids clients chose, their requests' own "id") go into two
 * generations of maps: new keys into `current`; when it holds `cap` entries it becomes `previous` and a fresh map
 * starts. Lookups see at least the last `cap` keys of each kind.
 */
export class RecentPredictions {
  private current = new Map<string, Remembered>();
  private previous = new Map<string, Remembered>();
  private readonly slots: (Remembered | undefined)[];
  private readonly slotKeys: (string | undefined)[];
  constructor(
    readonly cap: number,
    private readonly countOf: (key: string) => number = () => -1,
  ) {
    const ring = cap >= 1 ? cap : 0;
    this.slots = new Array<Remembered | undefined>(ring).fill(undefined);
    this.slotKeys = new Array<string | undefined>(ring).fill(undefined);
  }
  private slotOf(key: string): number {
    if (this.slots.length === 0) return -1;
    const n = this.countOf(key);
    return n >= 0 ? n % this.slots.length : -1;
  }
  set(key: string, entry: Remembered): void {
    const slot = this.slotOf(key);
    if (slot !== -1) {
      this.slots[slot] = entry;
      this.slotKeys[slot] = key;
      return;
    }
    this.current.set(key, entry);
    if (this.current.size >= this.cap) {
      this.previous = this.current;
      this.current = new Map();
    }
  }
  get(key: string): Remembered | undefined {
    const slot = this.slotOf(key);
    if (slot !== -1) return this.slotKeys[slot] === key ? this.slots[slot] : undefined;
    return this.current.get(key) ?? this.previous.get(key);
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
  const entry = recent.get(id) ?? recent.get(`id:${id}`);
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
  entry.feedback = true;
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
