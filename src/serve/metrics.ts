// Prometheus metrics (prom-client), named by Prometheus conventions: a `dais_` prefix, base units (seconds),
// `_total` on counters. Each server has its own registry, so several servers in one process (tests) do not collide.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { InferEvent, StartupReport } from '../core/index.ts';
import type { ModelObserver } from '../runtime/served-model.ts';
import type { LoadEvent } from './repository.ts';
import { PlainCounter, PlainHistogram, type HistogramChild } from './plain-metrics.ts';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export class ServerMetrics {
  readonly registry = new Registry();
  /**
   * Labelled children, looked up once per model version: prom-client hashes a label object on every call, which
   * cost more than the rest of a batch-1 request put together.
   */
  private readonly children = new Map<string, ReturnType<ServerMetrics['makeChildren']>>();
  // The per-request ones are plain-metrics.ts's: prom-client's own cost more per request than a small model's run.
  private readonly requests: PlainCounter;
  private readonly requestDuration: PlainHistogram;
  private readonly queueDuration: PlainHistogram;
  private readonly computeDuration: PlainHistogram;
  private readonly batchSize: PlainHistogram;
  private readonly inFlight: Gauge<'model' | 'version'>;
  private readonly loadDuration: Gauge<'model' | 'version'>;
  private readonly modelMemory: Gauge<'model' | 'version'>;
  private readonly loads: Counter<'model' | 'outcome'>;
  private readonly modelProcesses: Counter<'model' | 'version' | 'event'>;
  /** KServe's per-step histograms (python/kserve/kserve/metrics.py: one label, model_name), beside dais's own. */
  private readonly kserve: Record<'preprocess' | 'predict' | 'postprocess', PlainHistogram>;
  private readonly kserveChildren = new Map<string, { preprocess: HistogramChild; predict: HistogramChild; postprocess: HistogramChild }>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const mv = ['model', 'version'];
    this.requests = new PlainCounter('dais_inference_requests_total', 'Inference requests by model, version and outcome (success, or the error code in lower case).', ['model', 'version', 'outcome'], registers);
    this.requestDuration = new PlainHistogram('dais_inference_request_duration_seconds', 'Time from a decoded request to its outputs: queue plus compute.', mv, LATENCY_BUCKETS, registers);
    this.queueDuration = new PlainHistogram('dais_inference_queue_duration_seconds', 'Time a successful request waited in the model queue before its run started.', mv, LATENCY_BUCKETS, registers);
    this.computeDuration = new PlainHistogram('dais_inference_compute_duration_seconds', 'Time of one model run (one batch).', mv, LATENCY_BUCKETS, registers);
    this.batchSize = new PlainHistogram('dais_inference_batch_size', 'Rows (dimension 0) per model run; above 1 when dynamic batching joined requests.', mv, BATCH_BUCKETS, registers);
    const children = this.children;
    this.inFlight = new Gauge({
      name: 'dais_inference_requests_in_flight',
      help: 'Requests queued or running now.',
      labelNames: ['model', 'version'],
      registers,
      // Counted in a plain number per request and copied into the gauge when scraped: a labelled gauge's inc
      // costs a label lookup, and it ran twice per request.
      collect() {
        for (const c of children.values()) c.inFlight.set(c.inFlightCount.n);
      },
    });
    this.modelMemory = new Gauge({
      name: 'dais_model_memory_bytes',
      // Under --workers N each worker holds its own sessions: the sum is what the pod holds.
      help: 'Resident memory a model version added when it loaded (process RSS before vs after its sessions were created and first run), to size a pod.',
      labelNames: ['model', 'version'],
      registers: [this.registry],
    });
    this.loadDuration = new Gauge({
      name: 'dais_model_load_duration_seconds',
      aggregator: 'max', // under --workers N every worker loads the same version; the sum would mean nothing
      help: 'How long the last load of a model version took (read, session creation, warm-up).',
      labelNames: ['model', 'version'],
      registers,
    });
    this.modelProcesses = new Counter({
      name: 'dais_model_process_events_total',
      help: '--isolation process: child processes that exited on their own (exit), and the new ones started in their place (restart, restart_failure).',
      labelNames: ['model', 'version', 'event'],
      registers,
    });
    this.loads = new Counter({
      name: 'dais_model_loads_total',
      help: 'Model version loads by outcome (success, failure).',
      labelNames: ['model', 'outcome'],
      registers,
    });
    const step = (name: string, help: string) => new PlainHistogram(name, help, ['model_name'], LATENCY_BUCKETS, registers);
    this.kserve = {
      preprocess: step('request_preprocess_seconds', 'KServe name: pre-processing latency; in dais, decoding the request body into tensors.'),
      predict: step('request_predict_seconds', 'KServe name: predict latency; in dais, queue plus compute of the model run.'),
      postprocess: step('request_postprocess_seconds', 'KServe name: post-processing latency; in dais, encoding the outputs into the response body.'),
    };
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }


  private makeChildren(model: string, version: string) {
    return {
      success: this.requests.labels(model, version, 'success'),
      requestDuration: this.requestDuration.labels(model, version),
      queueDuration: this.queueDuration.labels(model, version),
      computeDuration: this.computeDuration.labels(model, version),
      batchSize: this.batchSize.labels(model, version),
      inFlight: this.inFlight.labels(model, version),
      inFlightCount: { n: 0 },
    };
  }

  private childrenOf(model: string, version: string) {
    // Called four times a request (in flight twice, the request, its run), nearly always for the version before:
    // that one is tried first, without building and hashing a key (children are never removed).
    const last = this.lastChildren;
    if (last && last.model === model && last.version === version) return last.children;
    const key = `${model}\u0000${version}`;
    let c = this.children.get(key);
    if (!c) this.children.set(key, (c = this.makeChildren(model, version)));
    this.lastChildren = { model, version, children: c };
    return c;
  }

  private lastChildren: { model: string; version: string; children: ReturnType<ServerMetrics['makeChildren']> } | undefined;

  observer(): ModelObserver {
    return {
      request: (e) => {
        const c = this.childrenOf(e.model, e.version);
        if (!e.ok) {
          this.requests.labels(e.model, e.version, (e.code ?? 'internal').toLowerCase()).n++;
          return;
        }
        c.success.n++;
        c.requestDuration.observe(e.durationMs / 1000);
        if (e.queueMs !== undefined) c.queueDuration.observe(e.queueMs / 1000);
      },
      execute: (e) => {
        const c = this.childrenOf(e.model, e.version);
        c.computeDuration.observe(e.computeMs / 1000);
        c.batchSize.observe(e.rows);
      },
      inFlight: (model, version, delta) => {
        this.childrenOf(model, version).inFlightCount.n += delta;
      },
    };
  }

  /** Feeds KServe's per-step histograms from each request's stage times (REST and gRPC alike). */
  stageObserver(): { onInfer(e: InferEvent): void } {
    return {
      onInfer: (e) => {
        const st = e.stages;
        if (!st || e.error) return;
        let c = this.kserveChildren.get(e.model);
        if (!c) {
          c = { preprocess: this.kserve.preprocess.labels(e.model), predict: this.kserve.predict.labels(e.model), postprocess: this.kserve.postprocess.labels(e.model) };
          this.kserveChildren.set(e.model, c);
        }
        c.preprocess.observe((st.decodeEnd - st.start) / 1000);
        c.predict.observe((st.inferEnd - st.decodeEnd) / 1000);
        c.postprocess.observe((st.encodeEnd - st.inferEnd) / 1000);
      },
    };
  }

  modelLoaded(e: LoadEvent): void {
    this.loadDuration.set({ model: e.name, version: e.version }, e.ms / 1000);
    if (e.memoryBytes !== undefined) this.modelMemory.set({ model: e.name, version: e.version }, e.memoryBytes);
    this.loads.inc({ model: e.name, outcome: 'success' });
  }

  modelLoadFailed(model: string): void {
    this.loads.inc({ model, outcome: 'failure' });
  }

  /** `--isolation process`: a model's child process exited on its own, or a new one was started in its place. */
  modelProcess(event: 'exit' | 'restart' | 'restart_failure', model = '', version = ''): void {
    this.modelProcesses.inc({ model, version, event });
  }

  /**
   * Requests waiting for an instance now, per model version: with the queue-time histogram, the signal to scale on
   * (a queue that grows means replicas are short, where CPU can look busy either way).
   */
  trackQueues(endpoints: () => Iterable<{ name: string; version: string; queued: number }>): void {
    new Gauge({
      name: 'dais_inference_queue_size',
      help: 'Requests waiting in a model version\'s queue now (not yet running).',
      labelNames: ['model', 'version'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const m of endpoints()) this.set({ model: m.name, version: m.version }, m.queued);
      },
    });
  }

  startup(report: StartupReport): void {
    const g = new Gauge({ name: 'dais_startup_phase_seconds', help: 'Time to ready by phase: process (Node boot), imports, model_load, warmup, listen; total = process start to ready.', labelNames: ['phase'], registers: [this.registry] });
    for (const [phase, s] of Object.entries(report)) g.set({ phase }, s);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
