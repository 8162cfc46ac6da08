// What the monitor keeps per model version: profile and drift window, feedback, throughput/latency buckets, drift
// history and shadow comparison; and the dashboard's view of it.
import type { ModelProfile, PredictionSpec } from './model-profile.ts';
import { LivePerformance, type PredictionOwner } from './feedback.ts';
import type { DriftReport, DriftWindow, PerformanceReport } from './window.ts';

export interface Bucket {
  t: number;
  count: number;
  errors: number;
  durations: number[];
}

export interface VersionState {
  model: string;
  version: string;
  profilePath?: string;
  /** mtime of the profile file last read (or refused), so a profile written later is picked up once. */
  profileMtime?: number;
  profile?: ModelProfile;
  window?: DriftWindow;
  lastReport?: DriftReport;
  spec?: PredictionSpec;
  /** What the feedback memory remembers this version's predictions under, made again when `spec` changes (a reload). */
  owner?: PredictionOwner;
  feedback: LivePerformance;
  buckets: Bucket[];
  driftHistory: { t: number; status: string; psi: Record<string, number> }[];
  /** `against`: the primary versions compared with, sorted and comma-separated (e.g. "1,2" under a canary). */
  shadow: { requests: number; errors: number; rows: number; agree: number; absDiff: number; against?: string };
}

/** How much history is kept: bucket width, points per series, feedback rows per live figure. */
export interface Retention {
  bucketMs: number;
  historyPoints: number;
  feedbackWindow: number;
}

const MAX_DURATIONS_PER_BUCKET = 5000;

export function newVersionState(model: string, version: string, keep: Retention): VersionState {
  return { model, version, feedback: new LivePerformance(keep.feedbackWindow, keep.historyPoints), buckets: [], driftHistory: [], shadow: { requests: 0, errors: 0, rows: 0, agree: 0, absDiff: 0 } };
}

/** Counts one request (its duration when it succeeded) in the bucket of time `t`. */
export function countRequest(s: VersionState, t: number, keep: Retention, durationMs: number | undefined): void {
  const start = Math.floor(t / keep.bucketMs) * keep.bucketMs;
  let b = s.buckets[s.buckets.length - 1];
  if (!b || b.t !== start) {
    b = { t: start, count: 0, errors: 0, durations: [] };
    s.buckets.push(b);
    if (s.buckets.length > keep.historyPoints) s.buckets.splice(0, s.buckets.length - keep.historyPoints);
  }
  b.count++;
  if (durationMs === undefined) b.errors++;
  else if (b.durations.length < MAX_DURATIONS_PER_BUCKET) b.durations.push(durationMs);
}

export function markDrift(s: VersionState, t: number, r: DriftReport, keep: Retention): void {
  s.driftHistory.push({ t, status: r.status, psi: Object.fromEntries(r.features.map((f) => [f.name, f.psi])) });
  if (s.driftHistory.length > keep.historyPoints) s.driftHistory.splice(0, s.driftHistory.length - keep.historyPoints);
}

function percentile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** The dashboard's series of the versions seen: throughput, latency percentiles, PSI over time, live accuracy. */
export function seriesOf(states: Iterable<VersionState>, bucketMs: number, performance: (s: VersionState) => PerformanceReport): Record<string, unknown>[] {
  return [...states]
    .filter((s) => s.buckets.length || s.window || s.shadow.requests)
    .sort((a, b) => (a.model === b.model ? Number(a.version) - Number(b.version) : a.model < b.model ? -1 : 1))
    .map((s) => ({
      model: s.model,
      version: s.version,
      status: s.lastReport?.status ?? (s.window ? 'insufficient_data' : 'no_profile'),
      drifted: s.lastReport?.drifted ?? [],
      throughput: s.buckets.map((b) => ({ t: b.t, rps: b.count / (bucketMs / 1000), errors: b.errors })),
      latency: s.buckets.map((b) => {
        const d = [...b.durations].sort((x, y) => x - y);
        return { t: b.t, p50: percentile(d, 0.5), p95: percentile(d, 0.95), p99: percentile(d, 0.99) };
      }),
      drift: s.driftHistory,
      performance: { ...performance(s), history: s.feedback.history },
      shadow: s.shadow.requests ? { ...s.shadow, agreement: s.shadow.rows ? s.shadow.agree / s.shadow.rows : undefined } : undefined,
    }));
}
