// The monitor's Prometheus metrics as one table: name, help, labels, kind, and for a gauge what it reads when
// scraped. Gauges are computed at scrape time from the monitor's state; the two counters are incremented by it.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { VersionState } from './version-state.ts';
import type { DriftReport, PerformanceReport } from './window.ts';

/** What the gauges read. */
export interface MetricSource {
  /** Versions whose last report says something (re-evaluated first). */
  reported(): VersionState[];
  versions(): VersionState[];
  performance(s: VersionState): PerformanceReport;
  log(): { queued: number; written: number } | undefined;
}

type Sample = [labels: Record<string, string>, value: number | undefined];

interface MetricSpec {
  name: string;
  help: string;
  labels: readonly string[];
  kind: 'gauge' | 'counter';
  /** A gauge's samples at scrape time; non-finite values are left out. */
  samples?: (source: MetricSource) => Iterable<Sample>;
}

const FEATURE_LABELS = ['model', 'version', 'feature', 'side'] as const;
const VERSION_LABELS = ['model', 'version'] as const;

function perFeature(name: string, help: string, value: (f: DriftReport['features'][number]) => number | undefined): MetricSpec {
  return {
    name,
    help,
    labels: FEATURE_LABELS,
    kind: 'gauge',
    samples: (m) => m.reported().flatMap((s) => s.lastReport!.features.map((f): Sample => [{ model: s.model, version: s.version, feature: f.name, side: f.side }, value(f)])),
  };
}

function perVersion(name: string, help: string, versions: (m: MetricSource) => VersionState[], value: (s: VersionState, m: MetricSource) => number | undefined): MetricSpec {
  return { name, help, labels: VERSION_LABELS, kind: 'gauge', samples: (m) => versions(m).map((s): Sample => [{ model: s.model, version: s.version }, value(s, m)]) };
}

export const MONITOR_METRICS: readonly MetricSpec[] = [
  perFeature('dais_drift_psi', "Population stability index of a feature: live window vs the version's profile.", (f) => f.psi),
  perFeature('dais_drift_p_value', 'p-value of the drift test of a feature (KS for numeric, χ² for categorical).', (f) => f.pValue),
  perFeature('dais_drift_ks_statistic', 'Two-sample Kolmogorov–Smirnov statistic D of a numeric feature.', (f) => f.ks?.statistic),
  perFeature('dais_drift_chi_square', 'χ² statistic of a categorical feature.', (f) => f.chiSquare?.statistic),
  perFeature('dais_drift_feature_drifting', '1 when the feature is flagged as drifting, else 0.', (f) => (f.status === 'drift' ? 1 : 0)),
  perVersion('dais_drift_status', '1 when any feature of the model version drifts, 0 when none does (absent until the window has enough rows).', (m) => m.reported(), (s) => (s.lastReport!.status === 'drift' ? 1 : 0)),
  perVersion('dais_drift_window_rows', 'Rows in the live drift window of the model version.', (m) => m.versions(), (s) => s.window?.rows),
  perVersion('dais_live_accuracy', 'Share of correct predictions over the last feedback rows (classification).', (m) => m.versions(), (s, m) => m.performance(s).accuracy),
  perVersion('dais_live_mae', 'Mean absolute error over the last feedback rows (regression).', (m) => m.versions(), (s, m) => m.performance(s).mae),
  {
    name: 'dais_shadow_agreement_ratio',
    help: 'Share of rows where the shadow version predicted what the serving version returned.',
    labels: ['model', 'version', 'primary_version'],
    kind: 'gauge',
    samples: (m) => m.versions().map((s): Sample => [{ model: s.model, version: s.version, primary_version: s.shadow.against ?? '' }, s.shadow.rows && s.shadow.against ? s.shadow.agree / s.shadow.rows : undefined]),
  },
  { name: 'dais_prediction_log_queued', help: 'Prediction log records waiting to be written.', labels: [], kind: 'gauge', samples: (m) => [[{}, m.log()?.queued ?? 0]] },
  { name: 'dais_prediction_log_written', help: 'Prediction log records written since the server started.', labels: [], kind: 'gauge', samples: (m) => [[{}, m.log()?.written ?? 0]] },
  { name: 'dais_drift_alerts_total', help: 'Drift webhook deliveries by outcome (delivered, failed after retries).', labels: ['outcome'], kind: 'counter' },
  { name: 'dais_feedback_rows_total', help: 'Ground-truth rows received through the feedback endpoint.', labels: ['model', 'version'], kind: 'counter' },
];

/** Registers every metric of the table on `registry`; returns the counters the monitor increments. */
export function registerMonitorMetrics(registry: Registry, source: MetricSource): { alerts: Counter<'outcome'>; feedback: Counter<'model' | 'version'> } {
  const counters = new Map<string, Counter<string>>();
  for (const spec of MONITOR_METRICS) {
    if (spec.kind === 'counter') {
      counters.set(spec.name, new Counter({ name: spec.name, help: spec.help, labelNames: spec.labels, registers: [registry] }));
      continue;
    }
    const samples = spec.samples!;
    new Gauge({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labels,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of samples(source)) if (value !== undefined && Number.isFinite(value)) this.set(labels, value);
      },
    });
  }
  return { alerts: counters.get('dais_drift_alerts_total')!, feedback: counters.get('dais_feedback_rows_total')! };
}
