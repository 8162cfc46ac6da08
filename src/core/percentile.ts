// Nearest-rank percentiles: a reported p99 is a value some sample really had, not an interpolation between two.
// Pure arithmetic, so core holds the one copy that the Lambda emulator's summary and the bench statistics share.

/** The p-th percentile (0–100) of samples already sorted ascending; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The p-th percentile of samples in any order (sorts a copy). */
export function percentileOf(values: readonly number[], p: number): number {
  return percentile([...values].sort((a, b) => a - b), p);
}
