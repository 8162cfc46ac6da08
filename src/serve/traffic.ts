// Canary and shadow versions: a ModelRegistry in front of the repository, part of serving (it works with monitoring
// off). For a model whose config has `traffic: {"1": 90, "2": 10}`, requests that name no version are spread over
// those versions by a hash of their request id (x-request-id): the hash, as a fraction of 2^32, falls into one
// weight's share. The same id always gets the same version, whichever process of `--workers N` serves it, so a
// split under N workers equals one process's on the same request stream, and a client that retries with its id
// stays on its version. Requests with no id fall back to smooth weighted round-robin (nginx's), exact over every
// cycle of the weights. With `shadow: "2"`, each such request is also run on version 2; its answer is handed to
// `onShadow` (logged and compared) and never to the client. A request that names a version gets exactly that
// version, and no shadow.
import type { InferContext, InferenceRequest, InferenceResponse, ModelConfiguration, ModelEndpoint, ModelMetadata, ModelRegistry } from '../core/index.ts';
import { configurationOf, InferenceError, withOwnData } from '../core/index.ts';

export interface TrafficConfig {
  /** Version → weight (any non-negative numbers; they need not add up to 100). */
  traffic?: Record<string, number>;
  shadow?: string;
}

export interface ShadowResult {
  model: string;
  primaryVersion: string;
  shadowVersion: string;
  request: InferenceRequest;
  primary: InferenceResponse;
  shadow?: InferenceResponse;
  error?: string;
  durationMs: number;
  requestId?: string;
}

/** Smooth weighted round-robin: each pick adds every weight to its counter and takes the largest, minus the total. */
export class WeightedRoundRobin {
  private readonly current: number[];
  constructor(readonly entries: readonly { key: string; weight: number }[]) {
    this.current = entries.map(() => 0);
  }
  next(available: (key: string) => boolean = () => true): string | undefined {
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e.weight <= 0 || !available(e.key)) continue;
      this.current[i] += e.weight;
      total += e.weight;
      if (best < 0 || this.current[i] > this.current[best]) best = i;
    }
    if (best < 0) return undefined;
    this.current[best] -= total;
    return this.entries[best].key;
  }
}

/**
 * FNV-1a (32-bit) of a string's UTF-16 code units, then MurmurHash3's finalizer: FNV alone leaves ids that differ
 * only in their last character (req-1, req-2 …) within a few percent of each other, i.e. in the same share.
 */
export function requestHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The version a request id goes to under `entries`' weights, among those `available`; undefined when none is. */
export function splitByHash(id: string, entries: readonly { key: string; weight: number }[], available: (key: string) => boolean = () => true): string | undefined {
  const usable = entries.filter((e) => e.weight > 0 && available(e.key));
  const total = usable.reduce((a, e) => a + e.weight, 0);
  if (!usable.length) return undefined;
  let point = (requestHash(id) / 2 ** 32) * total;
  for (const e of usable) {
    if (point < e.weight) return e.key;
    point -= e.weight;
  }
  return usable[usable.length - 1].key;
}

interface Route {
  config: TrafficConfig;
  rr?: WeightedRoundRobin;
}

export class TrafficRouter implements ModelRegistry {
  private readonly routes = new Map<string, Route>();

  constructor(
    private readonly inner: ModelRegistry & { versionsOf?(name: string): string[] },
    /** Told of each shadow run (the monitor compares and logs it); may be set after construction. */
    public onShadow?: (r: ShadowResult) => void,
    private readonly onWarning?: (model: string, message: string) => void,
  ) {}

  /** Sets (or with an empty config, clears) a model's split. */
  configure(model: string, config: TrafficConfig): void {
    if (!config.traffic && !config.shadow) {
      this.routes.delete(model);
      return;
    }
    const entries = Object.entries(config.traffic ?? {}).map(([key, weight]) => ({ key: String(Number(key)), weight }));
    this.routes.set(model, { config, rr: entries.length ? new WeightedRoundRobin(entries) : undefined });
  }

  configOf(model: string): TrafficConfig | undefined {
    return this.routes.get(model)?.config;
  }

  isReady(): boolean {
    return this.inner.isReady();
  }

  resolve(name: string, version?: string): ModelEndpoint {
    const route = this.routes.get(name);
    const fallback = this.inner.resolve(name, version); // throws MODEL_NOT_FOUND etc. as usual
    if (!route || version !== undefined) return fallback;
    return new SplitEndpoint(name, fallback, route, this.inner, (r) => this.onShadow?.(r), this.onWarning);
  }
}

const warned = new Set<string>();

/** Stands for the model in the v2 app; picks the version per infer call, so metadata and readiness calls do not count. */
class SplitEndpoint implements ModelEndpoint {
  constructor(
    readonly name: string,
    private readonly fallback: ModelEndpoint,
    private readonly route: Route,
    private readonly registry: ModelRegistry,
    private readonly onShadow?: (r: ShadowResult) => void,
    private readonly onWarning?: (model: string, message: string) => void,
  ) {}

  get version(): string {
    return this.fallback.version;
  }

  isReady(): boolean {
    return this.fallback.isReady();
  }

  metadata(): ModelMetadata {
    return this.fallback.metadata();
  }

  configuration(): ModelConfiguration {
    return configurationOf(this.fallback);
  }

  private serving(version: string): ModelEndpoint | undefined {
    try {
      const e = this.registry.resolve(this.name, version);
      return e.isReady() ? e : undefined;
    } catch {
      return undefined;
    }
  }

  private warnOnce(message: string): void {
    const key = `${this.name}:${message}`;
    if (warned.has(key)) return;
    warned.add(key);
    this.onWarning?.(this.name, message);
  }

  async infer(request: InferenceRequest, context?: InferContext): Promise<InferenceResponse> {
    let primary = this.fallback;
    if (this.route.rr) {
      const available = (v: string) => this.serving(v) !== undefined;
      const id = context?.requestId;
      const pick = id ? splitByHash(id, this.route.rr.entries, available) : this.route.rr.next(available);
      if (pick === undefined) this.warnOnce(`none of the traffic versions (${Object.keys(this.route.config.traffic ?? {}).join(', ')}) is serving; using version ${this.fallback.version}`);
      else primary = this.serving(pick) ?? this.fallback;
    }
    const shadowVersion = this.route.config.shadow;
    const shadow = shadowVersion !== undefined && shadowVersion !== primary.version ? this.serving(shadowVersion) : undefined;
    if (shadowVersion !== undefined && !shadow && shadowVersion !== primary.version) this.warnOnce(`shadow version ${shadowVersion} is not serving`);
    if (!shadow) return primary.infer(request, context);
    const started = performance.now();
    // The shadow runs beside the primary and its result (or failure) never reaches the client.
    // The shadow gets its own copy of the tensors' data: a worker session moves big feeds' buffers to its thread
    // for the run (session-host.ts), and the primary reads the same request at the same time. The result reports
    // that copy too: it arrives after the primary's answer, when the primary request's buffers may have been freed
    // (InferEvent.hold).
    const shadowRequest = { ...request, inputs: withOwnData(request.inputs) };
    const shadowRun = shadow.infer(shadowRequest).then(
      (r) => ({ response: r, error: undefined }),
      (e: unknown) => ({ response: undefined, error: e instanceof InferenceError ? e.message : String(e) }),
    );
    const response = await primary.infer(request, context);
    // The comparison reads the primary's answer after the client's request is done, when its outputs may have been
    // freed (InferEvent.hold): it gets a copy.
    const primaryAnswer = { ...response, outputs: withOwnData(response.outputs) };
    void shadowRun.then((s) =>
      this.onShadow?.({
        model: this.name,
        primaryVersion: primary.version,
        shadowVersion: shadow.version,
        request: shadowRequest,
        primary: primaryAnswer,
        shadow: s.response,
        error: s.error,
        durationMs: performance.now() - started,
        requestId: context?.requestId,
      }),
    );
    return response;
  }
}

/**
 * Keeps a TrafficRouter (`configure`) in line with the models' configs: each loaded version carries the resolved
 * config it was loaded with, whose `traffic` and `shadow` become its model's split (a single model file has none).
 */
export function trafficFollower(configure: TrafficRouter['configure']) {
  return {
    /** A version loaded: its model's split is the one in the config it was loaded with (nothing is read again). */
    onLoad(e: { name: string; config: { traffic?: Record<string, number>; shadow?: string } }): void {
      configure(e.name, { traffic: e.config.traffic, shadow: e.config.shadow });
    },
    /** Kept for callers that wait for the split to follow the loads: it now follows them at once. */
    async ready(): Promise<void> {},
  };
}
