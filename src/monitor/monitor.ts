// Live monitoring for `dais serve`: drift windows per model version against its profile.json, Prometheus gauges on
// the server's registry, webhook alerts on crossings, the prediction log, feedback → live accuracy, canary/shadow
// comparison of shadow runs (the routing itself is serve's), and the time series behind the dashboard. Plugged in
// through the v2 app's hooks: `onInfer` (work is queued and done on a later tick, never on the response's path),
// `onShadow`, and extra `routes`. Under `dais serve --workers N` one Monitor lives in the cluster primary and the
// workers forward their events to it (src/monitor/cluster.ts), so the answers are one process's.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { InferenceError, jsonResponse, type ExtraRoute, type InferEvent, type ModelMetadata, type V2Request } from '../core/index.ts';
import type { Logger } from '../serve/logger.ts';
import type { LoadEvent } from '../serve/repository.ts';
import type { ShadowResult } from '../serve/traffic.ts';
import { CloudEventPairer } from './cloud-events.ts';
import { WebhookNotifier, type DeliveryResult, type WebhookOptions } from './alerts.ts';
import { dashboardAsset, dashboardHtml } from './dashboard.ts';
import { PROFILE_FILE, predictionSpecOf, predictionsOf, readProfile, type Cell, type ModelProfile, type PredictionSpec } from './model-profile.ts';
import { PredictionLog, tensorsJson, type PredictionLogOptions } from './prediction-log.ts';
import { DEFAULT_DRIFT, DriftWindow, type DriftReport, type DriftSettings, type PerformanceReport } from './window.ts';

/** What the monitor asks of the models served: a version's outputs (for predictions) and a model's default version. */
export interface MonitorCatalog {
  resolve(name: string, version?: string): { version: string; metadata(): ModelMetadata };
}

export interface MonitorOptions {
  drift?: Partial<DriftSettings>;
  /** How often windows with new rows are re-evaluated for gauges, history and alerts (default 1000 ms). */
  evaluateIntervalMs?: number;
  webhook?: WebhookOptions;
  /** Prediction log (SQLite); off when absent. `sampleRate` 0–1 (default 1). */
  log?: PredictionLogOptions & { sampleRate?: number };
  /** Recent requests remembered for feedback (default 10,000). */
  feedbackMemory?: number;
  /** Feedback rows the live accuracy / MAE is computed over (default 1,000). */
  feedbackWindow?: number;
  /** Serve the dashboard page at /dashboard. */
  dashboard?: boolean;
  /** Width of one throughput/latency bucket (default 5 s) and how many points of history are kept (default 360). */
  bucketMs?: number;
  historyPoints?: number;
  logger?: Logger;
  random?: () => number;
}

interface Bucket {
  t: number;
  count: number;
  errors: number;
  durations: number[];
}

interface VersionState {
  model: string;
  version: string;
  profilePath?: string;
  /** mtime of the profile file last read (or refused), so a profile written later is picked up once. */
  profileMtime?: number;
  profile?: ModelProfile;
  window?: DriftWindow;
  lastReport?: DriftReport;
  spec?: PredictionSpec;
  feedbackTotal: number;
  /** 1/0 per row (classification) or |error| (regression), newest last. */
  feedbackRecent: number[];
  buckets: Bucket[];
  driftHistory: { t: number; status: string; psi: Record<string, number> }[];
  accuracyHistory: { t: number; value: number }[];
  shadow: { requests: number; errors: number; rows: number; agree: number; absDiff: number; against?: string };
}

interface Remembered {
  model: string;
  version: string;
  predictions: Cell[];
  spec: PredictionSpec;
  requestId?: string;
  feedback?: boolean;
}

const MAX_DURATIONS_PER_BUCKET = 5000;
const SEGMENT = '([^/]+)';

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new InferenceError('NOT_FOUND', `malformed path segment '${s}'`);
  }
}

function percentile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Remembers recent predictions for feedback in two generations: new keys go into `current`; when it holds `cap`
 * entries it becomes `previous` and a fresh map starts. Lookups see at least the last `cap` keys. Constant time per
 * request, unlike evicting the oldest key of one Map on every insert (each delete leaves a hole later scans step over).
 */
export class RecentPredictions {
  private current = new Map<string, Remembered>();
  private previous = new Map<string, Remembered>();
  constructor(readonly cap: number) {}
  set(key: string, entry: Remembered): void {
    this.current.set(key, entry);
    if (this.current.size >= this.cap) {
      this.previous = this.current;
      this.current = new Map();
    }
  }
  get(key: string): Remembered | undefined {
    return this.current.get(key) ?? this.previous.get(key);
  }
}

export class Monitor {
  readonly settings: DriftSettings;
  private readonly states = new Map<string, VersionState>();
  private readonly recent: RecentPredictions;
  private pending: InferEvent[] = [];
  private pendingShadows: ShadowResult[] = [];
  private scheduled = false;
  private timer?: ReturnType<typeof setInterval>;
  private repository?: MonitorCatalog;
  private logger?: Logger;
  readonly notifier?: WebhookNotifier;
  log?: PredictionLog;
  private closed?: Promise<void>;
  private readonly pairer = new CloudEventPairer();
  private readonly random: () => number;
  private gauges?: { alerts: Counter<'outcome'>; feedback: Counter<'model' | 'version'> };

  constructor(readonly options: MonitorOptions = {}) {
    this.settings = { ...DEFAULT_DRIFT, ...options.drift };
    if (this.settings.minRows > this.settings.windowSize) throw new Error(`drift: the minimum rows (${this.settings.minRows}) must not exceed the window (${this.settings.windowSize})`);
    this.random = options.random ?? Math.random;
    this.logger = options.logger;
    this.recent = new RecentPredictions(options.feedbackMemory ?? 10_000);
    if (options.webhook) this.notifier = new WebhookNotifier(options.webhook, (r) => this.delivered(r));
  }

  /** Opens the prediction log (when configured); call before serving. */
  async open(): Promise<this> {
    if (this.options.log && !this.log) this.log = await PredictionLog.open(this.options.log);
    return this;
  }

  private stateFor(model: string, version: string): VersionState {
    const key = `${model}\u0000${version}`;
    let s = this.states.get(key);
    if (!s) {
      s = { model, version, feedbackTotal: 0, feedbackRecent: [], buckets: [], driftHistory: [], accuracyHistory: [], shadow: { requests: 0, errors: 0, rows: 0, agree: 0, absDiff: 0 } };
      this.states.set(key, s);
    }
    return s;
  }

  // ---- hooks for serve() ----

  /** A model version was (re)loaded: pick up its profile.json. */
  onLoad(e: Pick<LoadEvent, 'name' | 'version' | 'path'>): void {
    const s = this.stateFor(e.name, e.version);
    s.profilePath = join(dirname(e.path), PROFILE_FILE);
    s.spec = undefined;
    void this.loadProfile(s);
  }

  private async loadProfile(s: VersionState): Promise<void> {
    s.profileMtime = s.profilePath ? statSync(s.profilePath, { throwIfNoEntry: false })?.mtimeMs : undefined;
    if (!s.profilePath || s.profileMtime === undefined) {
      s.profile = undefined;
      s.window = undefined;
      return;
    }
    try {
      const p = await readProfile(s.profilePath);
      s.profile = p;
      s.window = new DriftWindow(p, this.settings);
      s.lastReport = undefined;
      this.logger?.info({ model: s.model, version: s.version, profile: s.profilePath, features: s.window.featureCount }, 'drift monitoring on: profile loaded');
    } catch (e) {
      s.profile = undefined;
      s.window = undefined;
      this.logger?.warn({ model: s.model, version: s.version, profile: s.profilePath, error: (e as Error).message }, 'profile refused; no drift monitoring for this version');
    }
  }

  /**
   * Starts the evaluation timer and registers the gauges. `repository` is absent in a cluster primary, which serves
   * no model: there the workers name the version of each question, and `catalog` answers for the outputs.
   */
  attach(server: { repository?: MonitorCatalog; registry?: Registry; logger?: Logger }): { routes: ExtraRoute[]; onInfer: (e: InferEvent) => void; onShadow: (r: ShadowResult) => void } {
    this.repository = server.repository;
    this.logger ??= server.logger;
    if (server.registry) this.registerMetrics(server.registry);
    const interval = this.options.evaluateIntervalMs ?? 1000;
    this.timer = setInterval(() => this.evaluate(), interval);
    this.timer.unref();
    return { routes: this.routes(), onInfer: (e) => this.observe(e), onShadow: (r) => this.onShadow(r) };
  }

  /** Kept for callers written when the monitor owned the traffic split; serve() now applies it before listening. */
  async ready(): Promise<void> {}

  // ---- the live path ----

  observe(event: InferEvent): void {
    if (this.closed) return;
    this.pending.push(event);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  /** Does the queued work: windows, series, feedback memory, log records. */
  drain(): void {
    this.scheduled = false;
    const events = this.pending;
    const shadows = this.pendingShadows;
    this.pending = [];
    this.pendingShadows = [];
    for (const e of events) {
      try {
        this.process(e);
      } catch (err) {
        this.logger?.warn({ model: e.model, error: (err as Error).message }, 'monitoring skipped a request');
      }
    }
    for (const r of shadows) {
      try {
        this.processShadow(r);
      } catch (err) {
        this.logger?.warn({ model: r.model, error: (err as Error).message }, 'monitoring skipped a shadow result');
      }
    }
  }

  private specOf(s: VersionState): PredictionSpec | undefined {
    if (s.spec) return s.spec;
    if (s.profile?.prediction) return (s.spec = s.profile.prediction);
    try {
      const meta = this.repository?.resolve(s.model, s.version).metadata();
      if (meta) s.spec = predictionSpecOf(meta.outputs);
    } catch {
      // version gone
    }
    return s.spec;
  }

  private bucket(s: VersionState, t: number): Bucket {
    const bucketMs = this.options.bucketMs ?? 5000;
    const start = Math.floor(t / bucketMs) * bucketMs;
    let b = s.buckets[s.buckets.length - 1];
    if (!b || b.t !== start) {
      b = { t: start, count: 0, errors: 0, durations: [] };
      s.buckets.push(b);
      const keep = this.options.historyPoints ?? 360;
      if (s.buckets.length > keep) s.buckets.splice(0, s.buckets.length - keep);
    }
    return b;
  }

  private remember(key: string, entry: Remembered): void {
    this.recent.set(key, entry);
  }

  private process(e: InferEvent): void {
    const version = e.response?.model_version ?? e.version;
    const s = this.stateFor(e.model, version);
    const now = Date.now();
    const b = this.bucket(s, now);
    b.count++;
    if (e.error) b.errors++;
    else if (b.durations.length < MAX_DURATIONS_PER_BUCKET) b.durations.push(e.durationMs);
    if (e.response) {
      s.window?.add(e.request.inputs, e.response.outputs);
      const spec = this.specOf(s);
      const predictions = spec ? predictionsOf(spec, e.response.outputs) : undefined;
      if (spec && predictions) {
        const entry: Remembered = { model: e.model, version, predictions, spec, requestId: e.requestId };
        if (e.requestId) this.remember(e.requestId, entry);
        if (e.request.id && e.request.id !== e.requestId) this.remember(`id:${e.request.id}`, entry);
      }
    }
    if (this.log && this.random() < (this.options.log?.sampleRate ?? 1)) {
      this.log.append({
        ts: now,
        model: e.model,
        version,
        requestId: e.requestId,
        role: 'primary',
        durationMs: e.durationMs,
        inputs: tensorsJson(e.request.inputs),
        outputs: e.response ? tensorsJson(e.response.outputs) : undefined,
        error: e.error?.message,
      });
    }
  }

  onShadow(r: ShadowResult): void {
    if (this.closed) return;
    this.pendingShadows.push(r);
    this.schedule();
  }

  private processShadow(r: ShadowResult): void {
    const s = this.stateFor(r.model, r.shadowVersion);
    s.shadow.requests++;
    s.shadow.against = r.primaryVersion;
    if (!r.shadow) s.shadow.errors++;
    else {
      s.window?.add(r.request.inputs, r.shadow.outputs);
      const primarySpec = this.specOf(this.stateFor(r.model, r.primaryVersion));
      const spec = this.specOf(s) ?? primarySpec;
      const a = spec ? predictionsOf(spec, r.primary.outputs) : undefined;
      const b = spec ? predictionsOf(spec, r.shadow.outputs) : undefined;
      if (spec && a && b) {
        for (let i = 0; i < Math.min(a.length, b.length); i++) {
          s.shadow.rows++;
          if (spec.task === 'classification') s.shadow.agree += String(a[i]) === String(b[i]) ? 1 : 0;
          else s.shadow.absDiff += Math.abs(Number(a[i]) - Number(b[i]));
        }
      }
    }
    if (this.log && this.random() < (this.options.log?.sampleRate ?? 1)) {
      this.log.append({
        ts: Date.now(),
        model: r.model,
        version: r.shadowVersion,
        requestId: r.requestId,
        role: 'shadow',
        durationMs: r.durationMs,
        inputs: tensorsJson(r.request.inputs),
        outputs: r.shadow ? tensorsJson(r.shadow.outputs) : undefined,
        error: r.error,
      });
    }
  }

  // ---- CloudEvents from a payload logger (KServe's, or another dais's --log-url) ----

  /** Takes one request or response event; a completed pair is observed as if this server had answered it. */
  ingest(headers: Record<string, string | undefined>, body: Uint8Array): { paired: boolean } {
    const e = this.pairer.accept(headers, body, (model) => {
      try {
        return this.repository?.resolve(model).version ?? '1';
      } catch {
        return '1';
      }
    });
    if (e) this.observe(e);
    return { paired: Boolean(e) };
  }

  // ---- feedback ----

  feedback(model: string, version: string | undefined, body: Record<string, unknown>): Record<string, unknown> {
    this.drain();
    const id = body.id ?? body.request_id;
    if (typeof id !== 'string' || !id) throw new InferenceError('INVALID_REQUEST', `feedback needs "id": the x-request-id header of the response (or the request's own "id"), e.g. {"id": "…", "truth": 1}`);
    if (!('truth' in body)) throw new InferenceError('INVALID_REQUEST', `feedback needs "truth": the ground truth (a class label or a value; a list with one per row for a batch)`);
    const entry = this.recent.get(id) ?? this.recent.get(`id:${id}`);
    const cap = this.recent.cap;
    if (!entry || entry.model !== model) {
      throw new InferenceError('NOT_FOUND', `no recent prediction of model '${model}' with id '${id}': feedback must name the x-request-id (or the request's "id") of one of the last ${cap} requests`);
    }
    if (version !== undefined && version !== entry.version) throw new InferenceError('INVALID_REQUEST', `request '${id}' was answered by version ${entry.version}, not ${version}`);
    if (entry.feedback) throw new InferenceError('INVALID_REQUEST', `feedback for request '${id}' was already recorded`);
    const truths = Array.isArray(body.truth) ? (body.truth as unknown[]) : [body.truth];
    if (truths.length !== entry.predictions.length) throw new InferenceError('INVALID_REQUEST', `request '${id}' had ${entry.predictions.length} rows; "truth" has ${truths.length} (give one value per row)`);
    const s = this.stateFor(entry.model, entry.version);
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
    s.feedbackTotal += scores.length;
    s.feedbackRecent.push(...scores);
    const windowSize = this.options.feedbackWindow ?? 1000;
    if (s.feedbackRecent.length > windowSize) s.feedbackRecent.splice(0, s.feedbackRecent.length - windowSize);
    this.gauges?.feedback.inc({ model: s.model, version: s.version }, scores.length);
    const perf = this.performance(s);
    const value = perf.accuracy ?? perf.mae;
    if (value !== undefined) s.accuracyHistory.push({ t: Date.now(), value });
    const keep = this.options.historyPoints ?? 360;
    if (s.accuracyHistory.length > keep) s.accuracyHistory.splice(0, s.accuracyHistory.length - keep);
    this.log?.appendFeedback({ ts: Date.now(), model: s.model, version: s.version, requestId: entry.requestId ?? id, truth: JSON.stringify(body.truth) });
    return { model: s.model, version: s.version, id, rows: scores.length, ...(entry.spec.task === 'classification' ? { correct: scores.reduce((a, b) => a + b, 0) } : {}), performance: perf };
  }

  private performance(s: VersionState): PerformanceReport {
    const spec = this.specOf(s);
    const n = s.feedbackRecent.length;
    const mean = n ? s.feedbackRecent.reduce((a, b) => a + b, 0) / n : undefined;
    return {
      ...(spec ? { task: spec.task } : {}),
      feedback: s.feedbackTotal,
      window: n,
      ...(mean !== undefined ? (spec?.task === 'regression' ? { mae: mean } : { accuracy: mean }) : {}),
      ...(s.profile?.reference ? { reference: s.profile.reference } : {}),
    };
  }

  // ---- reports, gauges, alerts ----

  /** The DriftReport of a model version (its default version when none is named). */
  async report(model: string, version?: string): Promise<DriftReport> {
    this.drain();
    const v = version ?? this.repository?.resolve(model).version;
    if (v === undefined) throw new InferenceError('MODEL_NOT_FOUND', `model '${model}' is not being monitored`);
    if (this.repository) this.repository.resolve(model, v); // 404s as the protocol does
    const s = this.stateFor(model, v);
    if (!s.profile && s.profilePath && existsSync(s.profilePath)) await this.loadProfile(s); // a profile written after the load
    if (!s.window) {
      return {
        model,
        version: v,
        generatedAt: new Date().toISOString(),
        status: 'no_profile',
        window: { rows: 0, size: this.settings.windowSize, minRows: this.settings.minRows },
        thresholds: { alpha: this.settings.alpha, correction: 'bonferroni', pValuePerFeature: this.settings.alpha, psi: this.settings.psi, missingRate: this.settings.missingRate },
        features: [],
        drifted: [],
        performance: this.performance(s),
        message: `no profile for ${model} version ${v}: run 'dais profile ${s.profilePath ? dirname(s.profilePath) : model} --data <reference data>' to write ${s.profilePath ?? 'profile.json beside the model file'}`,
      };
    }
    const r = s.window.report(model, v, this.performance(s));
    s.lastReport = r;
    return r;
  }

  /** Re-evaluates every window with new rows: history, and webhook on a crossing. */
  evaluate(): void {
    this.drain();
    for (const s of this.states.values()) {
      if (!s.window && s.profilePath && statSync(s.profilePath, { throwIfNoEntry: false })?.mtimeMs !== s.profileMtime) void this.loadProfile(s); // written after the load
      if (!s.window?.dirty) continue;
      const r = s.window.report(s.model, s.version, this.performance(s));
      s.lastReport = r;
      if (r.status === 'insufficient_data') continue;
      s.driftHistory.push({ t: Date.now(), status: r.status, psi: Object.fromEntries(r.features.map((f) => [f.name, f.psi])) });
      const keep = this.options.historyPoints ?? 360;
      if (s.driftHistory.length > keep) s.driftHistory.splice(0, s.driftHistory.length - keep);
      this.notifier?.update(r.status === 'drift' ? 'drift' : 'ok', {
        model: s.model,
        version: s.version,
        at: r.generatedAt,
        drifted: r.drifted,
        features: r.features.map((f) => ({ name: f.name, side: f.side, psi: f.psi, pValue: f.pValue, status: f.status })),
        window: { rows: r.window.rows, size: r.window.size },
        report: `/v2/models/${encodeURIComponent(s.model)}/versions/${encodeURIComponent(s.version)}/drift`,
      });
    }
  }

  private delivered(r: DeliveryResult): void {
    this.gauges?.alerts.inc({ outcome: r.ok ? 'delivered' : 'failed' });
    if (r.ok) this.logger?.info({ model: r.event.model, version: r.event.version, event: r.event.event, attempts: r.attempts }, 'drift alert delivered');
    else this.logger?.warn({ model: r.event.model, version: r.event.version, event: r.event.event, attempts: r.attempts, status: r.status, error: r.error }, 'drift alert could not be delivered');
  }

  private registerMetrics(registry: Registry): void {
    const labels = ['model', 'version', 'feature', 'side'] as const;
    const latest = () => {
      this.evaluate();
      return [...this.states.values()].filter((s) => s.lastReport && s.lastReport.status !== 'insufficient_data');
    };
    const perFeature = (name: string, help: string, value: (f: DriftReport['features'][number]) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: labels,
        registers: [registry],
        collect() {
          this.reset();
          for (const s of latest()) {
            for (const f of s.lastReport!.features) {
              const v = value(f);
              if (v !== undefined && Number.isFinite(v)) this.set({ model: s.model, version: s.version, feature: f.name, side: f.side }, v);
            }
          }
        },
      });
    perFeature('dais_drift_psi', 'Population stability index of a feature: live window vs the version\'s profile.', (f) => f.psi);
    perFeature('dais_drift_p_value', 'p-value of the drift test of a feature (KS for numeric, χ² for categorical).', (f) => f.pValue);
    perFeature('dais_drift_ks_statistic', 'Two-sample Kolmogorov–Smirnov statistic D of a numeric feature.', (f) => f.ks?.statistic);
    perFeature('dais_drift_chi_square', 'χ² statistic of a categorical feature.', (f) => f.chiSquare?.statistic);
    perFeature('dais_drift_feature_drifting', '1 when the feature is flagged as drifting, else 0.', (f) => (f.status === 'drift' ? 1 : 0));
    const states = () => [...this.states.values()];
    const monitor = this;
    new Gauge({
      name: 'dais_drift_status',
      help: '1 when any feature of the model version drifts, 0 when none does (absent until the window has enough rows).',
      labelNames: ['model', 'version'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of latest()) this.set({ model: s.model, version: s.version }, s.lastReport!.status === 'drift' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'dais_drift_window_rows',
      help: 'Rows in the live drift window of the model version.',
      labelNames: ['model', 'version'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of states()) if (s.window) this.set({ model: s.model, version: s.version }, s.window.rows);
      },
    });
    new Gauge({
      name: 'dais_live_accuracy',
      help: 'Share of correct predictions over the last feedback rows (classification).',
      labelNames: ['model', 'version'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of states()) {
          const p = monitor.performance(s);
          if (p.accuracy !== undefined) this.set({ model: s.model, version: s.version }, p.accuracy);
        }
      },
    });
    new Gauge({
      name: 'dais_live_mae',
      help: 'Mean absolute error over the last feedback rows (regression).',
      labelNames: ['model', 'version'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of states()) {
          const p = monitor.performance(s);
          if (p.mae !== undefined) this.set({ model: s.model, version: s.version }, p.mae);
        }
      },
    });
    new Gauge({
      name: 'dais_shadow_agreement_ratio',
      help: 'Share of rows where the shadow version predicted what the serving version returned.',
      labelNames: ['model', 'version', 'primary_version'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of states()) if (s.shadow.rows && s.shadow.against) this.set({ model: s.model, version: s.version, primary_version: s.shadow.against }, s.shadow.agree / s.shadow.rows);
      },
    });
    new Gauge({
      name: 'dais_prediction_log_queued',
      help: 'Prediction log records waiting to be written.',
      registers: [registry],
      collect() {
        this.set(monitor.log?.queued ?? 0);
      },
    });
    new Gauge({
      name: 'dais_prediction_log_written',
      help: 'Prediction log records written since the server started.',
      registers: [registry],
      collect() {
        this.set(monitor.log?.written ?? 0);
      },
    });
    this.gauges = {
      alerts: new Counter({ name: 'dais_drift_alerts_total', help: 'Drift webhook deliveries by outcome (delivered, failed after retries).', labelNames: ['outcome'], registers: [registry] }),
      feedback: new Counter({ name: 'dais_feedback_rows_total', help: 'Ground-truth rows received through the feedback endpoint.', labelNames: ['model', 'version'], registers: [registry] }),
    };
  }

  // ---- dashboard data ----

  /** Time series for the dashboard: throughput, latency percentiles, per-feature PSI over time, live accuracy. */
  series(): Record<string, unknown> {
    this.evaluate();
    const bucketMs = this.options.bucketMs ?? 5000;
    return {
      generatedAt: new Date().toISOString(),
      bucketMs,
      versions: [...this.states.values()]
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
          performance: { ...this.performance(s), history: s.accuracyHistory },
          shadow: s.shadow.requests ? { ...s.shadow, agreement: s.shadow.rows ? s.shadow.agree / s.shadow.rows : undefined } : undefined,
        })),
    };
  }

  routes(): ExtraRoute[] {
    return monitorRoutes(
      {
        report: (model, version) => this.report(model, version),
        feedback: async (model, version, body) => this.feedback(model, version, body),
        series: async () => this.series(),
        events: async (headers, body) => this.ingest(headers, body),
      },
      Boolean(this.options.dashboard),
    );
  }

  /** Processes what is queued, sends pending alerts, writes the prediction log and closes it (SIGTERM). */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      this.drain();
      await this.notifier?.flush();
      await this.log?.close();
    })();
    return this.closed;
  }
}

/** The questions the monitoring routes ask: of a Monitor here, or of the cluster primary's from a worker. */
export interface MonitorApi {
  report(model: string, version: string | undefined): Promise<unknown>;
  feedback(model: string, version: string | undefined, body: Record<string, unknown>): Promise<unknown>;
  series(): Promise<unknown>;
  /** One CloudEvent POSTed to /v2/monitor/events (headers in lower case, the raw body). */
  events(headers: Record<string, string | undefined>, body: Uint8Array): Promise<unknown>;
}

/** GET …/drift, POST …/feedback, GET /v2/monitor/series, and (with `dashboard`) the page and its script. */
export function monitorRoutes(api: MonitorApi, dashboard: boolean): ExtraRoute[] {
  const modelPath = (tail: string) => new RegExp(`^/v2/models/${SEGMENT}(?:/versions/${SEGMENT})?/${tail}/?$`);
  const versionOf = (m: RegExpExecArray) => (m[2] === undefined ? undefined : decode(m[2]));
  const routes: ExtraRoute[] = [
    { method: 'GET', pattern: modelPath('drift'), handle: async (_r, m) => jsonResponse(200, await api.report(decode(m[1]), versionOf(m))) },
    { method: 'POST', pattern: modelPath('feedback'), handle: async (request, m) => jsonResponse(200, await api.feedback(decode(m[1]), versionOf(m), jsonBody(request))) },
    { method: 'GET', pattern: /^\/v2\/monitor\/series\/?$/, handle: async () => jsonResponse(200, await api.series()) },
    { method: 'POST', pattern: /^\/v2\/monitor\/events\/?$/, handle: async (request) => jsonResponse(202, await api.events(request.headers, request.body ?? new Uint8Array(0))) },
  ];
  if (dashboard) {
    routes.push(
      { method: 'GET', pattern: /^\/dashboard\/?$/, handle: () => ({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: dashboardHtml({ seriesUrl: '/v2/monitor/series' }) }) },
      {
        method: 'GET',
        pattern: /^\/dashboard\/(chart\.umd\.min\.js)$/,
        handle: (_r, m) => ({ status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=3600' }, body: dashboardAsset(m[1]) }),
      },
    );
  }
  return routes;
}

function jsonBody(request: V2Request): Record<string, unknown> {
  const body = request.body;
  if (!body || body.length === 0) throw new InferenceError('INVALID_REQUEST', 'feedback needs a JSON body {"id": "<x-request-id>", "truth": <ground truth>}');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch (e) {
    throw new InferenceError('INVALID_JSON', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InferenceError('INVALID_REQUEST', 'feedback body must be a JSON object {"id", "truth"}');
  return parsed as Record<string, unknown>;
}
