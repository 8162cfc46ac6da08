// More models than memory (`dais serve --memory-budget <MB>`): the repository opens lazily, a model loads on its
// first request, and the least recently used models are unloaded to keep the loaded ones within the budget.
// Loads run one at a time, so each model's memory is measured as the process's RSS growth across its load (never
// less than its file size, since an allocator that reuses freed pages shows little growth). An evicted model
// finishes its in-flight requests before its sessions are released (the repository's unload waits for them), and a
// request for a model that is not loaded waits for its load, up to the load timeout (MODEL_LOAD_TIMEOUT, 504).
import { stat } from 'node:fs/promises';
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  InferenceError,
  jsonResponse,
  type ExtraRoute,
  type InferContext,
  type InferenceRequest,
  type InferenceResponse,
  type ModelEndpoint,
  type ModelMetadata,
  type ModelRegistry,
} from '../core/index.ts';
import { silentLogger, type Logger } from '../node/logger.ts';
import type { ModelRepository } from './repository.ts';

export interface MemoryBudgetOptions {
  budgetBytes: number;
  /** Longest a request waits for its model to load (default 60 s). */
  loadTimeoutMs?: number;
  logger?: Logger;
  registry?: Registry;
  /** The process's resident set size now (tests may count another process). */
  rss?: () => number;
}

interface Known {
  fileBytes: number;
  /** Measured at its last load; undefined until it has loaded once. */
  bytes?: number;
  lastUsed: number;
  /** Requests granted their model but not yet running on it: not evicted meanwhile. */
  pins: number;
  metadata?: ModelMetadata;
  loading?: Promise<void>;
  loads: number;
  evictions: number;
}

export interface MemoryReport {
  budget_bytes: number;
  used_bytes: number;
  evictions: number;
  models: { name: string; loaded: boolean; bytes: number | null; file_bytes: number; loads: number; evictions: number }[];
}

export class MemoryBudget {
  private readonly known = new Map<string, Known>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly logger: Logger;
  private readonly rss: () => number;
  private readonly loadTimeoutMs: number;
  private evictionCount = 0;
  private readonly evictionsMetric?: Counter<'model'>;

  private constructor(
    private readonly repository: ModelRepository,
    private readonly options: MemoryBudgetOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.rss = options.rss ?? (() => process.memoryUsage.rss());
    this.loadTimeoutMs = options.loadTimeoutMs ?? 60_000;
    const registers = options.registry ? [options.registry] : [];
    if (!registers.length) return;
    this.evictionsMetric = new Counter({ name: 'dais_model_evictions_total', help: 'Models unloaded to stay within --memory-budget (least recently used first).', labelNames: ['model'], registers });
    const known = this.known;
    const isLoaded = (n: string) => this.isLoaded(n);
    new Gauge({
      name: 'dais_memory_budget_model_bytes',
      help: 'What a model counts against --memory-budget: the memory it took when it last loaded (RSS growth across the load, at least its file size); 0 while not loaded.',
      labelNames: ['model'],
      registers,
      collect() {
        for (const [name, k] of known) this.set({ model: name }, isLoaded(name) ? (k.bytes ?? 0) : 0);
      },
    });
    new Gauge({ name: 'dais_memory_budget_bytes', help: 'The --memory-budget for loaded models.', registers }).set(options.budgetBytes);
    const used = () => this.usedBytes();
    new Gauge({
      name: 'dais_memory_budget_used_bytes',
      help: 'Memory of the models loaded now, as measured at their loads.',
      registers,
      collect() {
        this.set(used());
      },
    });
  }

  /** Lists the repository's models (nothing is loaded; open the repository with `lazy: true`). */
  static async create(repository: ModelRepository, options: MemoryBudgetOptions): Promise<MemoryBudget> {
    const b = new MemoryBudget(repository, options);
    for (const s of await repository.scan()) {
      const size = (await stat(s.path)).size;
      const k = b.known.get(s.name);
      if (k) k.fileBytes += size;
      else b.known.set(s.name, { fileBytes: size, lastUsed: 0, pins: 0, loads: 0, evictions: 0 });
    }
    return b;
  }

  private isLoaded(name: string): boolean {
    return this.repository.versionsOf(name).length > 0;
  }

  usedBytes(): number {
    let n = 0;
    for (const [name, k] of this.known) if (this.isLoaded(name)) n += k.bytes ?? k.fileBytes;
    return n;
  }

  report(): MemoryReport {
    return {
      budget_bytes: this.options.budgetBytes,
      used_bytes: this.usedBytes(),
      evictions: this.evictionCount,
      models: [...this.known].map(([name, k]) => ({ name, loaded: this.isLoaded(name), bytes: k.bytes ?? null, file_bytes: k.fileBytes, loads: k.loads, evictions: k.evictions })),
    };
  }

  /** Resolves once `name` is loaded, loading it (and evicting others) if need be; pins it until `release`. */
  async acquire(name: string): Promise<void> {
    const k = this.known.get(name)!;
    k.pins++;
    try {
      if (this.isLoaded(name)) return;
      k.loading ??= this.enqueue(name).finally(() => (k.loading = undefined));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new InferenceError('MODEL_LOAD_TIMEOUT', `model '${name}' did not finish loading within ${this.loadTimeoutMs} ms (--load-timeout-ms); retry later`)),
          this.loadTimeoutMs,
        );
      });
      try {
        await Promise.race([k.loading, timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      k.pins--;
      throw e;
    }
  }

  release(name: string): void {
    const k = this.known.get(name);
    if (k) k.pins = Math.max(0, k.pins - 1);
  }

  private enqueue(name: string): Promise<void> {
    const run = this.chain.then(() => this.load(name));
    this.chain = run.catch(() => {});
    return run;
  }

  private async load(name: string): Promise<void> {
    const k = this.known.get(name)!;
    if (this.isLoaded(name)) return;
    await this.evict(k.bytes ?? k.fileBytes, name);
    const before = this.rss();
    try {
      await this.repository.loadModel(name);
    } catch (e) {
      throw new InferenceError('MODEL_NOT_READY', `model '${name}' failed to load: ${(e as Error).message}`);
    }
    k.bytes = Math.max(this.rss() - before, k.fileBytes);
    k.loads++;
    k.lastUsed = performance.now();
    k.metadata = this.repository.resolveModel(name).metadata();
    this.logger.info({ model: name, bytes: k.bytes, usedBytes: this.usedBytes(), budgetBytes: this.options.budgetBytes }, 'model loaded on demand');
    // The measurement may show the model larger than expected: evict again now that its size is known.
    await this.evict(0, name);
  }

  /** Unloads least recently used models (never `keep`, never a pinned one) until `need` more bytes fit. */
  private async evict(need: number, keep: string): Promise<void> {
    while (this.usedBytes() + need > this.options.budgetBytes) {
      let victim: string | undefined;
      for (const [name, k] of this.known) {
        if (name === keep || k.pins > 0 || !this.isLoaded(name)) continue;
        if (victim === undefined || k.lastUsed < this.known.get(victim)!.lastUsed) victim = name;
      }
      if (victim === undefined) {
        if (need > 0 && this.usedBytes() + need > this.options.budgetBytes) {
          this.logger.warn({ model: keep, needBytes: need, usedBytes: this.usedBytes(), budgetBytes: this.options.budgetBytes }, 'over --memory-budget: every other loaded model is in use (or this one alone is larger than the budget); loading anyway');
        }
        return;
      }
      const v = this.known.get(victim)!;
      this.logger.info({ model: victim, bytes: v.bytes, for: keep }, 'model evicted (least recently used) to stay within --memory-budget');
      const released = this.repository.versionsOf(victim).map((v) => this.repository.resolveModel(victim, v));
      await this.repository.unloadModel(victim); // in-flight requests on it finish first
      // Its sessions' memory is freed before the next load starts, or both would be resident at once.
      await Promise.all(released.map((m) => m.dispose().catch(() => {})));
      v.evictions++;
      this.evictionCount++;
      this.evictionsMetric?.inc({ model: victim });
    }
  }

  /** A registry that loads on demand: put in front of the one REST and gRPC resolve through. */
  wrap(inner: ModelRegistry): ModelRegistry {
    return {
      isReady: () => !this.repository.isDraining && this.known.size > 0,
      resolve: (name, version) => {
        const k = this.known.get(name);
        if (!k || this.isLoaded(name)) {
          if (k) k.lastUsed = performance.now();
          return inner.resolve(name, version);
        }
        return new OnDemandEndpoint(this, inner, name, version, k.metadata);
      },
    };
  }

  routes(): ExtraRoute[] {
    return [{ method: 'GET', path: '/v2/memory[/]', handle: () => jsonResponse(200, this.report()) }];
  }
}

/** A model that is not loaded now: its infer waits for the load, then runs on the loaded version. */
class OnDemandEndpoint implements ModelEndpoint {
  constructor(
    private readonly budget: MemoryBudget,
    private readonly inner: ModelRegistry,
    readonly name: string,
    private readonly wanted: string | undefined,
    private readonly cachedMetadata: ModelMetadata | undefined,
  ) {}

  get version(): string {
    return this.wanted ?? this.cachedMetadata?.versions?.at(-1) ?? '';
  }

  /** Servable: a request loads it. */
  isReady(): boolean {
    return true;
  }

  metadata(): ModelMetadata {
    if (this.cachedMetadata) return this.cachedMetadata;
    // Its first load tells its inputs and outputs; start it so a client that asks again finds them.
    void this.budget.acquire(this.name).then(() => this.budget.release(this.name), () => {});
    throw new InferenceError('MODEL_NOT_READY', `model '${this.name}' has not been loaded yet (--memory-budget loads on demand); it is loading now, ask again shortly`);
  }

  async infer(request: InferenceRequest, context?: InferContext): Promise<InferenceResponse> {
    await this.budget.acquire(this.name);
    let endpoint: ModelEndpoint;
    try {
      endpoint = this.inner.resolve(this.name, this.wanted);
    } finally {
      this.budget.release(this.name);
    }
    // The request counts as in flight from this call on, so an eviction now waits for it.
    return endpoint.infer(request, context);
  }
}
