// Drift statistics, runtime-agnostic (server, Lambda, browser): a reference profile of one feature, and the
// comparison of a live window against it — the population stability index (PSI) on the reference's quantile bins,
// the two-sample Kolmogorov–Smirnov test for numeric features and the χ² test of homogeneity for categorical ones.
//
// A feature is flagged only when the test is significant AND the PSI shows a shift worth acting on: the p-value
// bounds the false-alarm rate, and the PSI floor keeps a huge window from flagging a shift too small to matter.
import chiSquareCdf from '@stdlib/stats-base-dists-chisquare-cdf';

export type FeatureKind = 'numeric' | 'categorical';

export interface NumericProfile {
  name: string;
  kind: 'numeric';
  /** Values present (not missing). */
  count: number;
  missing: number;
  missingRate: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  /** Cut points between the PSI bins: the reference's quantiles (deciles by default), ties merged. A value v falls in bin i = number of cut points below v. */
  bins: number[];
  /** Reference counts per PSI bin (bins.length + 1 of them). */
  binCounts: number[];
  /** Equal-width histogram of the reference, for display. */
  histogram: { min: number; max: number; counts: number[] };
  /** Sorted reference values for the KS test: all of them up to SAMPLE_SIZE, else evenly spaced order statistics. */
  sample: number[];
}

export interface CategoricalProfile {
  name: string;
  kind: 'categorical';
  count: number;
  missing: number;
  missingRate: number;
  /** Reference counts per category, most common first; categories past MAX_CATEGORIES are counted under OTHER. */
  categories: Record<string, number>;
}

export type FeatureProfile = NumericProfile | CategoricalProfile;

export const SAMPLE_SIZE = 2000;
export const PSI_BINS = 10;
export const HISTOGRAM_BINS = 20;
export const MAX_CATEGORIES = 100;
export const OTHER = '__other__';
/** Proportions are clipped to this before PSI's logarithm, so an empty bin gives a large but finite term. */
export const PSI_EPSILON = 1e-4;

export interface FeatureThresholds {
  /** Flag when the test's p-value is below this (the caller divides the family-wise level by the features tested). */
  pValue: number;
  /** ...and the PSI is at least this. */
  psi: number;
  /** Also flag when the missing rate rises by more than this over the reference's. */
  missingRate: number;
}

export interface FeatureDrift {
  name: string;
  kind: FeatureKind;
  /** Values present in the window. */
  rows: number;
  missingRate: number;
  referenceMissingRate: number;
  psi: number;
  /** p-value of the KS (numeric) or χ² (categorical) test. */
  pValue: number;
  ks?: { statistic: number; pValue: number };
  chiSquare?: { statistic: number; dof: number; pValue: number };
  mean?: number;
  referenceMean?: number;
  thresholds: FeatureThresholds;
  status: 'ok' | 'drift';
  /** Why it is flagged; empty when ok. */
  reasons: string[];
}

// ---- small numeric helpers ----

function sortedNumbers(values: ArrayLike<number>): { sorted: Float64Array; missing: number } {
  let missing = 0;
  const out = new Float64Array(values.length);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) missing++;
    else out[n++] = v;
  }
  const sorted = out.subarray(0, n);
  sorted.sort();
  return { sorted, missing };
}

/** Linear-interpolated quantile of sorted values (type 7, as numpy's default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Index of the bin a value falls in: the number of cut points strictly below it. */
export function binOf(cuts: readonly number[], v: number): number {
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cuts[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function binCounts(cuts: readonly number[], values: ArrayLike<number>): number[] {
  const counts = new Array<number>(cuts.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) counts[binOf(cuts, v)]++;
  }
  return counts;
}

// ---- statistics ----

/** PSI = Σ (a − e)·ln(a / e) over bins, on proportions clipped to PSI_EPSILON. */
export function psi(expectedCounts: readonly number[], actualCounts: readonly number[]): number {
  const e = expectedCounts.reduce((s, x) => s + x, 0);
  const a = actualCounts.reduce((s, x) => s + x, 0);
  if (e === 0 || a === 0) return 0;
  let sum = 0;
  for (let i = 0; i < expectedCounts.length; i++) {
    const pe = Math.max(expectedCounts[i] / e, PSI_EPSILON);
    const pa = Math.max((actualCounts[i] ?? 0) / a, PSI_EPSILON);
    sum += (pa - pe) * Math.log(pa / pe);
  }
  return sum;
}

/** Two-sample KS statistic D = sup |F_a − F_b| of two ascending samples (ties handled: both step at once). */
export function ksStatistic(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return 0;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const x = a[i] <= b[j] ? a[i] : b[j];
    while (i < n && a[i] <= x) i++;
    while (j < m && b[j] <= x) j++;
    const diff = Math.abs(i / n - j / m);
    if (diff > d) d = diff;
  }
  return d;
}

/** P(K > λ) for the Kolmogorov distribution, by the two series that each converge fast on their side of 1.18. */
export function kolmogorovSurvival(lambda: number): number {
  if (!(lambda > 0)) return 1;
  if (lambda < 1.18) {
    const y = Math.exp(-(Math.PI * Math.PI) / (8 * lambda * lambda));
    const cdf = (Math.sqrt(2 * Math.PI) / lambda) * (y + y ** 9 + y ** 25 + y ** 49);
    return Math.min(1, Math.max(0, 1 - cdf));
  }
  const x = Math.exp(-2 * lambda * lambda);
  return Math.min(1, Math.max(0, 2 * (x - x ** 4 + x ** 9 - x ** 16)));
}

/**
 * Two-sample KS test of two ascending samples. `nA` is the size of the sample `a` stands for, when `a` is a subsample
 * of evenly spaced order statistics (a stored reference). The p-value is the asymptotic one with Stephens's
 * small-sample correction, λ = (√nₑ + 0.12 + 0.11/√nₑ)·D, nₑ = n·m/(n + m).
 */
export function ksTest(a: ArrayLike<number>, b: ArrayLike<number>, nA = a.length): { statistic: number; pValue: number } {
  const statistic = ksStatistic(a, b);
  const m = b.length;
  if (nA === 0 || m === 0) return { statistic, pValue: 1 };
  const en = Math.sqrt((nA * m) / (nA + m));
  return { statistic, pValue: kolmogorovSurvival((en + 0.12 + 0.11 / en) * statistic) };
}

/** Upper tail of the χ² distribution with `dof` degrees of freedom. */
export function chiSquareSurvival(x: number, dof: number): number {
  if (!(x > 0) || dof < 1) return 1;
  return Math.max(0, 1 - chiSquareCdf(x, dof));
}

/**
 * χ² test of homogeneity between two samples of categories (a 2×K table). Categories whose expected count would be
 * under 5 are pooled (Cochran's rule), so rare categories do not dominate the statistic.
 */
export function chiSquareTest(reference: Readonly<Record<string, number>>, observed: Readonly<Record<string, number>>): { statistic: number; dof: number; pValue: number } {
  const keys = [...new Set([...Object.keys(reference), ...Object.keys(observed)])];
  const nr = keys.reduce((s, k) => s + (reference[k] ?? 0), 0);
  const nw = keys.reduce((s, k) => s + (observed[k] ?? 0), 0);
  const total = nr + nw;
  if (nr === 0 || nw === 0) return { statistic: 0, dof: 0, pValue: 1 };
  const small = Math.min(nr, nw) / total;
  const columns: [number, number][] = [];
  const pooled: [number, number] = [0, 0];
  for (const k of keys) {
    const r = reference[k] ?? 0;
    const w = observed[k] ?? 0;
    if ((r + w) * small < 5) {
      pooled[0] += r;
      pooled[1] += w;
    } else columns.push([r, w]);
  }
  if (pooled[0] + pooled[1] > 0) columns.push(pooled);
  if (columns.length < 2) return { statistic: 0, dof: 0, pValue: 1 };
  let statistic = 0;
  for (const [r, w] of columns) {
    const er = ((r + w) * nr) / total;
    const ew = ((r + w) * nw) / total;
    statistic += (r - er) ** 2 / er + (w - ew) ** 2 / ew;
  }
  const dof = columns.length - 1;
  return { statistic, dof, pValue: chiSquareSurvival(statistic, dof) };
}

// ---- reference profiles ----

/** Numeric profile of one feature; NaN, ±Infinity and non-numbers count as missing. */
export function profileNumeric(name: string, values: ArrayLike<number>, bins = PSI_BINS): NumericProfile {
  const { sorted, missing } = sortedNumbers(values);
  const n = sorted.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += sorted[i];
  mean = n ? mean / n : NaN;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (sorted[i] - mean) ** 2;
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  const cuts: number[] = [];
  for (let k = 1; k < bins; k++) {
    // A data value rather than an interpolated one: every bin then holds at least its own cut point.
    const c = n ? sorted[Math.floor((n - 1) * (k / bins))] : NaN;
    if (Number.isFinite(c) && (cuts.length === 0 || c > cuts[cuts.length - 1])) cuts.push(c);
  }
  // A cut at the maximum leaves an always-empty top bin: drop it.
  while (cuts.length && n && cuts[cuts.length - 1] >= sorted[n - 1]) cuts.pop();
  const min = n ? sorted[0] : NaN;
  const max = n ? sorted[n - 1] : NaN;
  const hist = new Array<number>(HISTOGRAM_BINS).fill(0);
  const width = (max - min) / HISTOGRAM_BINS;
  for (let i = 0; i < n; i++) hist[width > 0 ? Math.min(HISTOGRAM_BINS - 1, Math.floor((sorted[i] - min) / width)) : 0]++;
  let sample: number[];
  if (n <= SAMPLE_SIZE) sample = Array.from(sorted);
  else {
    sample = new Array<number>(SAMPLE_SIZE);
    for (let k = 0; k < SAMPLE_SIZE; k++) sample[k] = sorted[Math.min(n - 1, Math.floor(((k + 0.5) * n) / SAMPLE_SIZE))];
  }
  const total = n + missing;
  return {
    name,
    kind: 'numeric',
    count: n,
    missing,
    missingRate: total ? missing / total : 0,
    mean,
    std,
    min,
    max,
    bins: cuts,
    binCounts: binCounts(cuts, sorted),
    histogram: { min, max, counts: hist },
    sample,
  };
}

export function isMissingCategory(v: unknown): boolean {
  return v === null || v === undefined || v === '' || (typeof v === 'number' && Number.isNaN(v));
}

export function countCategories(values: ArrayLike<unknown>): { counts: Map<string, number>; missing: number } {
  const counts = new Map<string, number>();
  let missing = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (isMissingCategory(v)) {
      missing++;
      continue;
    }
    const k = String(v);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return { counts, missing };
}

/** Categorical profile of one feature; null, undefined, '' and NaN count as missing. */
export function profileCategorical(name: string, values: ArrayLike<unknown>): CategoricalProfile {
  const { counts, missing } = countCategories(values);
  const ordered = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const categories: Record<string, number> = {};
  let other = 0;
  ordered.forEach(([k, c], i) => {
    if (i < MAX_CATEGORIES && k !== OTHER) categories[k] = c;
    else other += c;
  });
  if (other) categories[OTHER] = other;
  const count = values.length - missing;
  return { name, kind: 'categorical', count, missing, missingRate: values.length ? missing / values.length : 0, categories };
}

// ---- comparison ----

function decide(d: Omit<FeatureDrift, 'status' | 'reasons'>): FeatureDrift {
  const t = d.thresholds;
  const reasons: string[] = [];
  const test = d.kind === 'numeric' ? 'KS' : 'χ²';
  if (d.pValue < t.pValue && d.psi >= t.psi) {
    reasons.push(`${test} p-value ${d.pValue.toExponential(2)} < ${t.pValue.toExponential(2)} and PSI ${d.psi.toFixed(3)} ≥ ${t.psi}`);
  }
  if (d.missingRate - d.referenceMissingRate > t.missingRate) {
    reasons.push(`missing rate ${(d.missingRate * 100).toFixed(1)}% vs ${(d.referenceMissingRate * 100).toFixed(1)}% in the reference`);
  }
  return { ...d, status: reasons.length ? 'drift' : 'ok', reasons };
}

/** Compares a window of values (NaN = missing) with a numeric reference profile. */
export function compareNumeric(reference: NumericProfile, window: ArrayLike<number>, thresholds: FeatureThresholds): FeatureDrift {
  const { sorted, missing } = sortedNumbers(window);
  const ks = ksTest(reference.sample, sorted, reference.count);
  let mean = 0;
  for (let i = 0; i < sorted.length; i++) mean += sorted[i];
  const total = sorted.length + missing;
  return decide({
    name: reference.name,
    kind: 'numeric',
    rows: sorted.length,
    missingRate: total ? missing / total : 0,
    referenceMissingRate: reference.missingRate,
    psi: psi(reference.binCounts, binCounts(reference.bins, sorted)),
    pValue: ks.pValue,
    ks,
    mean: sorted.length ? mean / sorted.length : NaN,
    referenceMean: reference.mean,
    thresholds,
  });
}

/** Compares a window of categories (null/'' = missing) with a categorical reference profile. */
export function compareCategorical(reference: CategoricalProfile, window: ArrayLike<unknown>, thresholds: FeatureThresholds): FeatureDrift {
  const { counts, missing } = countCategories(window);
  const observed: Record<string, number> = {};
  const pooled = OTHER in reference.categories;
  for (const [k, c] of counts) {
    // Categories the reference pooled under OTHER are pooled the same way here.
    const key = k in reference.categories || !pooled ? k : OTHER;
    observed[key] = (observed[key] ?? 0) + c;
  }
  const keys = [...new Set([...Object.keys(reference.categories), ...Object.keys(observed)])];
  const chiSquare = chiSquareTest(reference.categories, observed);
  const total = window.length;
  return decide({
    name: reference.name,
    kind: 'categorical',
    rows: total - missing,
    missingRate: total ? missing / total : 0,
    referenceMissingRate: reference.missingRate,
    psi: psi(
      keys.map((k) => reference.categories[k] ?? 0),
      keys.map((k) => observed[k] ?? 0),
    ),
    pValue: chiSquare.pValue,
    chiSquare,
    thresholds,
  });
}

export function compareFeature(reference: FeatureProfile, window: ArrayLike<unknown>, thresholds: FeatureThresholds): FeatureDrift {
  return reference.kind === 'numeric' ? compareNumeric(reference, window as ArrayLike<number>, thresholds) : compareCategorical(reference, window, thresholds);
}
