// Latency summaries, with nearest-rank percentiles (src/core/percentile.ts): a reported p99 is a latency some request
// really had, not an interpolation between two.
import { percentile, percentileOf } from '../core/percentile.ts';

export { percentile, percentileOf };

export interface Stats {
  n: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(samples: ArrayLike<number>): Stats {
  const s = Float64Array.from(samples).sort();
  if (s.length === 0) return { n: 0, min: NaN, mean: NaN, p50: NaN, p95: NaN, p99: NaN, max: NaN };
  let sum = 0;
  for (const v of s) sum += v;
  return { n: s.length, min: s[0], mean: sum / s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s[s.length - 1] };
}

/** Rounds every number to 3 decimals (µs for ms values) so result files stay readable. */
export function rounded<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v)));
}

/** The median of rounds as the goal checks report it: the middle one of an odd count, the upper middle of an even. */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Several processes of one server against several of another, every one measured in every round: per round, the
 * first group's requests/s summed over the second's, and the median of those ratios. `a[k][i]` is process k's round i.
 */
export function pooledRoundsRatio(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): number {
  return median(roundRatios(a, b));
}

/**
 * The middle half of the per-round ratios {@link pooledRoundsRatio} takes the median of: the ones a quarter and three
 * quarters up (nearest rank). Beside a ratio it says how far the rounds themselves were apart.
 */
export function pooledRoundsQuartiles(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): [number, number] {
  const xs = roundRatios(a, b).sort((x, y) => x - y);
  return [percentile(xs, 25), percentile(xs, 75)];
}

function roundRatios(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): number[] {
  const rounds = a[0]?.length ?? 0;
  if (b.length === 0 || rounds === 0 || [...a, ...b].some((r) => r.length !== rounds)) throw new Error('pooled rounds: needs a process on each side, each with the same number of rounds, at least one');
  const sum = (g: readonly (readonly number[])[], i: number) => g.reduce((s, r) => s + r[i], 0);
  return Array.from({ length: rounds }, (_, i) => sum(a, i) / sum(b, i));
}
