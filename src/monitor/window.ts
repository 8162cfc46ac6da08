// The live side of drift: the last N rows a model version saw (inputs and outputs), kept per feature in ring
// buffers, and the DriftReport that compares them with the version's reference profile.
import { compareFeature, type FeatureDrift, type FeatureThresholds } from '../core/drift.ts';
import type { Tensor } from '../core/index.ts';
import { elementAt, rowLayout, type Feature, type ModelProfile, type TensorProfile } from './model-profile.ts';

export interface DriftSettings {
  /** Rows kept per model version (default 500). */
  windowSize: number;
  /** Rows needed before a report says anything (default 100). */
  minRows: number;
  /** Family-wise false-alarm level per report; each feature is tested at alpha / features (Bonferroni). Default 0.01. */
  alpha: number;
  /** PSI a flagged feature must also reach (default 0.1). */
  psi: number;
  /** Rise in missing rate over the reference that flags a feature (default 0.05). */
  missingRate: number;
}

export const DEFAULT_DRIFT: DriftSettings = { windowSize: 500, minRows: 100, alpha: 0.01, psi: 0.1, missingRate: 0.05 };

export type DriftStatus = 'ok' | 'drift' | 'insufficient_data' | 'no_profile';

export interface PerformanceReport {
  task?: 'classification' | 'regression';
  /** Feedback received for this version (all time) and in the rolling window the live figure is computed on. */
  feedback: number;
  window: number;
  accuracy?: number;
  mae?: number;
  reference?: { rows: number; accuracy?: number; mae?: number };
}

export interface DriftReport {
  model: string;
  version: string;
  generatedAt: string;
  status: DriftStatus;
  /** Rows in the window now, and the window's settings. */
  window: { rows: number; size: number; minRows: number };
  thresholds: { alpha: number; correction: 'bonferroni'; pValuePerFeature: number; psi: number; missingRate: number };
  profile?: { source: string; rows: number; createdAt: string };
  /** Input features, then output elements (output drift). */
  features: (FeatureDrift & { side: 'input' | 'output' })[];
  /** Names of the flagged features. */
  drifted: string[];
  performance: PerformanceReport;
  message?: string;
}

class Ring {
  readonly values: (number | string | null)[];
  private next = 0;
  count = 0;
  constructor(readonly size: number) {
    this.values = new Array(size);
  }
  push(v: number | string | null): void {
    this.values[this.next] = v;
    this.next = (this.next + 1) % this.size;
    if (this.count < this.size) this.count++;
  }
  contents(): (number | string | null)[] {
    return this.count < this.size ? this.values.slice(0, this.count) : this.values;
  }
  clear(): void {
    this.next = 0;
    this.count = 0;
  }
}

interface Tracked {
  side: 'input' | 'output';
  tensor: TensorProfile;
  feature: Feature;
  ring: Ring;
}

export class DriftWindow {
  private readonly tracked: Tracked[] = [];
  /** Rows seen since the last report was computed (for "is a new evaluation worth it"). */
  dirty = false;
  totalRows = 0;

  constructor(
    readonly profile: ModelProfile,
    readonly settings: DriftSettings,
  ) {
    for (const [side, list] of [
      ['input', profile.inputs],
      ['output', profile.outputs],
    ] as const) {
      for (const tensor of list) for (const feature of tensor.features) this.tracked.push({ side, tensor, feature, ring: new Ring(settings.windowSize) });
    }
  }

  get featureCount(): number {
    return this.tracked.length;
  }

  /** Rows in the window: those of the fullest input feature (outputs may be absent when a client asked for some). */
  get rows(): number {
    let n = 0;
    for (const t of this.tracked) if (t.side === 'input' && t.ring.count > n) n = t.ring.count;
    return n;
  }

  add(inputs: readonly Tensor[], outputs: readonly Tensor[] | undefined): void {
    let added = 0;
    for (const t of this.tracked) {
      const tensor = (t.side === 'input' ? inputs : outputs)?.find((x) => x.name === t.tensor.name);
      if (!tensor) continue;
      const { rows, width } = rowLayout(tensor.shape);
      if (t.feature.index >= width) continue;
      for (let r = 0; r < rows; r++) t.ring.push(elementAt(tensor, r * width + t.feature.index));
      if (t.side === 'input' && rows > added) added = rows;
    }
    if (added) {
      this.totalRows += added;
      this.dirty = true;
    }
  }

  clear(): void {
    for (const t of this.tracked) t.ring.clear();
  }

  report(model: string, version: string, performance: PerformanceReport, now = new Date()): DriftReport {
    this.dirty = false;
    const s = this.settings;
    const tested = this.tracked.filter((t) => t.ring.count > 0).length || this.tracked.length;
    const thresholds: FeatureThresholds = { pValue: s.alpha / Math.max(1, tested), psi: s.psi, missingRate: s.missingRate };
    const rows = this.rows;
    const base = {
      model,
      version,
      generatedAt: now.toISOString(),
      window: { rows, size: s.windowSize, minRows: s.minRows },
      thresholds: { alpha: s.alpha, correction: 'bonferroni' as const, pValuePerFeature: thresholds.pValue, psi: s.psi, missingRate: s.missingRate },
      profile: { source: this.profile.source.file, rows: this.profile.source.rows, createdAt: this.profile.createdAt },
      performance,
    };
    if (rows < s.minRows) {
      return { ...base, status: 'insufficient_data', features: [], drifted: [], message: `${rows} of the ${s.minRows} rows a report needs have arrived` };
    }
    const features = this.tracked
      .filter((t) => t.ring.count > 0)
      .map((t) => ({ ...compareFeature(t.feature, t.ring.contents(), thresholds), side: t.side }));
    const drifted = features.filter((f) => f.status === 'drift').map((f) => f.name);
    return { ...base, status: drifted.length ? 'drift' : 'ok', features, drifted };
  }
}
