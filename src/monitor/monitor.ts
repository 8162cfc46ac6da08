// Live monitoring for `dais serve`: drift windows per model version against its profile.json, Prometheus gauges on
// the server's registry, webhook alerts on crossings, the prediction log, feedback → live accuracy, canary/shadow
// comparison of shadow runs (the routing itself is serve's), and the time series behind the dashboard. Plugged in
// through the v2 app's hooks: `onInfer` (work is queued and done on a later tick, never on the response's path),
// `onShadow`, and extra `routes`. Under `dais serve --workers N` one Monitor lives in the cluster primary and the
// workers forward their events to it (src/monitor/cluster.ts), so the answers are one process's.
// Beside it: the metric table (metrics.ts), the routes (routes.ts), feedback scoring (feedback.ts) and the per-version
// state with its dashboard series (version-state.ts).
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Counter, Registry } from 'prom-client';
import { InferenceError, type ExtraRoute, type InferEvent, type ModelMetadata } from '../core/index.ts';
import type { Logger } from '../node/logger.ts';
import { ownRequestCount } from '../node/request-id.ts';
import type { LoadEvent } from '../serve/repository.ts';
import type { ShadowResult } from '../serve/traffic.ts';
import { CloudEventPairer } from './cloud-events.ts';
import { WebhookNotifier, type DeliveryResult, type WebhookOptions } from './alerts.ts';
import { RecentPredictions, scoreFeedback } from './feedback.ts';
import { registerMonitorMetrics } from './metrics.ts';
import { PROFILE_FILE, onePrediction, predictionSpecOf, predictionsOf, readProfile, type PredictionSpec } from './model-profile.ts';
import { PredictionLog, tensorsJson, type PredictionLogOptions } from './prediction-log.ts';
import { monitorRoutes } from './routes.ts';
import { countRequest, markDrift, newVersionState, seriesOf, type Retention, type VersionState } from './version-state.ts';
import { DEFAULT_DRIFT, DriftWindow, type DriftReport, type DriftSettings, type PerformanceReport } from './window.ts';

/** What the monitor asks of the models served: a version's outputs (for predictions) and a model's default version. */
/** How long observed requests wait to be processed together (off the response's path; readers drain first). */
const DRAIN_EVERY_MS = 20;

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
  /** Wall clock in ms (default Date.now): buckets, history points, log rows and reports are stamped with it. */
  now?: () => number;
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
  private readonly now: () => number;
  private readonly keep: Retention;
  private gauges?: { alerts: Counter<'outcome'>; feedback: Counter<'model' | 'version'> };

  constructor(readonly options: MonitorOptions = {}) {
    this.settings = { ...DEFAULT_DRIFT, ...options.drift };
    if (this.settings.minRows > this.settings.windowSize) throw new Error(`drift: the minimum rows (${this.settings.minRows}) must not exceed the window (${this.settings.windowSize})`);
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.keep = { bucketMs: options.bucketMs ?? 5000, historyPoints: options.historyPoints ?? 360, feedbackWindow: options.feedbackWindow ?? 1000 };
    this.logger = options.logger;
    this.recent = new RecentPredictions(options.feedbackMemory ?? 10_000, ownRequestCount);
    if (options.webhook) this.notifier = new WebhookNotifier(options.webhook, (r) => this.delivered(r));
  }

  /** Opens the prediction log (when configured); call before serving. */
  async open(): Promise<this> {
    if (this.options.log && !this.log) this.log = await PredictionLog.open(this.options.log);
    return this;
  }

  private stateFor(model: string, version: string): VersionState {
    // Requests of one version usually follow each other: the last one found is tried before building the key
    // (states are never removed, so the last one found stays the one in the map).
    const last = this.lastState;
    if (last && last.model === model && last.version === version) return last.state;
    const key = `${model}\u0000${version}`;
    let s = this.states.get(key);
    if (!s) {
      s = newVersionState(model, version, this.keep);
      this.states.set(key, s);
    }
    this.lastState = { model, version, state: s };
    return s;
  }

  private lastState: { model: string; version: string; state: VersionState } | undefined;

  // ---- hooks for serve() ----

  /** A model version was (re)loaded: pick up its profile.json. */
  onLoad(e: Pick<LoadEvent, 'name' | 'version' | 'path'>): void {
    const s = this.stateFor(e.name, e.version);
    s.profilePath = join(dirname(e.path), PROFILE_FILE);
    s.spec = undefined;
    // Read before this returns: the version serves its first request after onLoad, and a request the monitor
    // processes before its drift window exists is not counted in it (an asynchronous read lost the first rows sent
    // after a start under load).
    this.loadProfile(s);
  }

  /** Reads the version's profile.json (a small file) and makes its drift window; a bad one is refused with a warning. */
  private loadProfile(s: VersionState): void {
    s.profileMtime = s.profilePath ? statSync(s.profilePath, { throwIfNoEntry: false })?.mtimeMs : undefined;
    if (!s.profilePath || s.profileMtime === undefined) {
      s.profile = undefined;
      s.window = undefined;
      return;
    }
    try {
      const p = readProfile(s.profilePath);
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
    if (server.registry) {
      this.gauges = registerMonitorMetrics(server.registry, {
        reported: () => {
          this.evaluate();
          return [...this.states.values()].filter((s) => s.lastReport && s.lastReport.status !== 'insufficient_data');
        },
        versions: () => {
          this.drain();
          return [...this.states.values()];
        },
        performance: (s) => this.performance(s),
        log: () => {
          this.drain();
          return this.log;
        },
      });
    }
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
    if (!this.log && !this.pending.length && this.stateFor(event.model, event.response?.model_version ?? event.version).window === undefined) {
      // Nothing will read the request's tensors later (no prediction log, no drift window): it is counted and its
      // predictions remembered now, and its big buffers are freed once the adapter is done with the answer, not
      // held until the next drain. BERT-mini (132 KB answers), one connection, 2026-12-07: the main thread's CPU 556
      // against 595 µs a request (546 with no monitor at all), requests/s within the rounds' spread (195 against 193).
      // Observers are told after the answer has gone (V2Response.after) where the adapter allows.
      this.processOrWarn(event);
      return;
    }
    // Read on a later tick: the request's buffers are kept until then (InferEvent.hold).
    event.hold?.();
    this.pending.push(event);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // A timer, not setImmediate: an immediate per request cost one more turn of the event loop (an epoll call) for
    // every request a lone client sent. Every reader (reports, feedback, series, close) drains first.
    setTimeout(() => {
      this.scheduled = false;
      this.drain();
    }, DRAIN_EVERY_MS).unref();
  }

  /** Does the queued work: windows, series, feedback memory, log records. */
  drain(): void {
    if (this.pending.length === 0 && this.pendingShadows.length === 0) return;
    const events = this.pending;
    const shadows = this.pendingShadows;
    this.pending = [];
    this.pendingShadows = [];
    for (const e of events) {
      this.processOrWarn(e);
      e.release?.();
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

  /** process(), a failure logged: one request the monitor cannot read never stops the others. */
  private processOrWarn(e: InferEvent): void {
    try {
      this.process(e);
    } catch (err) {
      this.logger?.warn({ model: e.model, error: (err as Error).message }, 'monitoring skipped a request');
    }
  }

  private process(e: InferEvent): void {
    const version = e.response?.model_version ?? e.version;
    const s = this.stateFor(e.model, version);
    const now = this.now();
    countRequest(s, now, this.keep, e.error ? undefined : e.durationMs);
    if (e.response) {
      s.window?.add(e.request.inputs, e.response.outputs);
      const spec = this.specOf(s);
      const other = e.request.id !== undefined && e.request.id !== '' && e.request.id !== e.requestId;
      if (spec && (e.requestId || other)) {
        // Nothing made per request for a one-row numeric prediction remembered under this server's own id
        // (feedback.ts): the owner is made once per version and spec.
        const predictions = onePrediction(spec, e.response.outputs) ?? predictionsOf(spec, e.response.outputs);
        if (predictions !== undefined) {
          const owner = s.owner?.spec === spec ? s.owner : (s.owner = { model: s.model, version: s.version, spec });
          if (e.requestId) this.recent.set(e.requestId, owner, predictions);
          if (other) this.recent.set(`id:${e.request.id}`, owner, predictions, e.requestId);
        }
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
    // Every primary version the shadow was compared with, sorted (under a canary it is several): the same answer
    // whatever order the requests arrived in, here or from several worker processes.
    s.shadow.against = [...new Set([...(s.shadow.against?.split(',') ?? []), r.primaryVersion])].sort((a, b) => Number(a) - Number(b)).join(',');
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
        ts: this.now(),
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
    const { entry, id, scores } = scoreFeedback(this.recent, model, version, body);
    const s = this.stateFor(entry.model, entry.version);
    s.feedback.add(scores);
    this.gauges?.feedback.inc({ model: s.model, version: s.version }, scores.length);
    const perf = this.performance(s);
    s.feedback.mark(this.now(), perf);
    this.log?.appendFeedback({ ts: this.now(), model: s.model, version: s.version, requestId: entry.requestId ?? id, truth: JSON.stringify(body.truth) });
    return { model: s.model, version: s.version, id, rows: scores.length, ...(entry.spec.task === 'classification' ? { correct: scores.reduce((a, b) => a + b, 0) } : {}), performance: perf };
  }

  private performance(s: VersionState): PerformanceReport {
    return s.feedback.report(this.specOf(s), s.profile?.reference);
  }

  // ---- reports, gauges, alerts ----

  /** The DriftReport of a model version (its default version when none is named). */
  async report(model: string, version?: string): Promise<DriftReport> {
    this.drain();
    const v = version ?? this.repository?.resolve(model).version;
    if (v === undefined) throw new InferenceError('MODEL_NOT_FOUND', `model '${model}' is not being monitored`);
    if (this.repository) this.repository.resolve(model, v); // 404s as the protocol does
    const s = this.stateFor(model, v);
    if (!s.profile && s.profilePath && existsSync(s.profilePath)) this.loadProfile(s); // a profile written after the load
    if (!s.window) {
      return {
        model,
        version: v,
        generatedAt: new Date(this.now()).toISOString(),
        status: 'no_profile',
        window: { rows: 0, size: this.settings.windowSize, minRows: this.settings.minRows },
        thresholds: { alpha: this.settings.alpha, correction: 'bonferroni', pValuePerFeature: this.settings.alpha, psi: this.settings.psi, missingRate: this.settings.missingRate },
        features: [],
        drifted: [],
        performance: this.performance(s),
        message: `no profile for ${model} version ${v}: run 'dais profile ${s.profilePath ? dirname(s.profilePath) : model} --data <reference data>' to write ${s.profilePath ?? 'profile.json beside the model file'}`,
      };
    }
    const r = s.window.report(model, v, this.performance(s), new Date(this.now()));
    s.lastReport = r;
    return r;
  }

  /** Re-evaluates every window with new rows: history, and webhook on a crossing. */
  evaluate(): void {
    this.drain();
    for (const s of this.states.values()) {
      if (!s.window && s.profilePath && statSync(s.profilePath, { throwIfNoEntry: false })?.mtimeMs !== s.profileMtime) this.loadProfile(s); // written after the load
      if (!s.window?.dirty) continue;
      const r = s.window.report(s.model, s.version, this.performance(s), new Date(this.now()));
      s.lastReport = r;
      if (r.status === 'insufficient_data') continue;
      markDrift(s, this.now(), r, this.keep);
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

  // ---- dashboard data ----

  /** Time series for the dashboard: throughput, latency percentiles, per-feature PSI over time, live accuracy. */
  series(): Record<string, unknown> {
    this.evaluate();
    return { generatedAt: new Date(this.now()).toISOString(), bucketMs: this.keep.bucketMs, versions: seriesOf(this.states.values(), this.keep.bucketMs, (s) => this.performance(s)) };
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
