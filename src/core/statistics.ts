// Per-model-version counters in the shape of Triton's statistics extension (GET /v2/models/{m}/stats), so tools
// written for Triton (perf_analyzer, model_analyzer, dashboards) read them as they are.

export interface DurationStat {
  count: number;
  ns: number;
}

export interface BatchStat {
  batch_size: number;
  compute_input: DurationStat;
  compute_infer: DurationStat;
  compute_output: DurationStat;
}

export interface ModelStatisticsJson {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: {
    success: DurationStat;
    fail: DurationStat;
    queue: DurationStat;
    compute_input: DurationStat;
    compute_infer: DurationStat;
    compute_output: DurationStat;
    cache_hit: DurationStat;
    cache_miss: DurationStat;
  };
  batch_stats: BatchStat[];
}

const zero = (): DurationStat => ({ count: 0, ns: 0 });
const add = (s: DurationStat, ms: number) => {
  s.count++;
  s.ns += Math.round(ms * 1e6);
};

export class ModelStatistics {
  private lastInference = 0;
  private inferenceCount = 0;
  private executionCount = 0;
  private readonly success = zero();
  private readonly fail = zero();
  private readonly queue = zero();
  private readonly computeInfer = zero();
  private readonly batches = new Map<number, DurationStat>();

  constructor(
    readonly name: string,
    readonly version: string,
    private readonly clock: () => number = () => Date.now(),
  ) {}

  /** One request finished: `rows` inferences (its dimension 0), `queueMs` waiting, `totalMs` end to end. */
  request(ok: boolean, totalMs: number, rows: number, queueMs?: number, computeMs?: number): void {
    this.lastInference = this.clock();
    if (!ok) {
      add(this.fail, totalMs);
      return;
    }
    add(this.success, totalMs);
    this.inferenceCount += rows;
    if (queueMs !== undefined) add(this.queue, queueMs);
    if (computeMs !== undefined) add(this.computeInfer, computeMs);
  }

  /** One model run of `rows` rows. */
  execution(rows: number, computeMs: number): void {
    this.executionCount++;
    let s = this.batches.get(rows);
    if (!s) this.batches.set(rows, (s = zero()));
    add(s, computeMs);
  }

  toJSON(): ModelStatisticsJson {
    return {
      name: this.name,
      version: this.version,
      last_inference: this.lastInference,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success: { ...this.success },
        fail: { ...this.fail },
        queue: { ...this.queue },
        // Input and output copies happen inside the run here; they are reported as zero rather than guessed.
        compute_input: { count: this.computeInfer.count, ns: 0 },
        compute_infer: { ...this.computeInfer },
        compute_output: { count: this.computeInfer.count, ns: 0 },
        cache_hit: zero(),
        cache_miss: zero(),
      },
      batch_stats: [...this.batches.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([size, s]) => ({ batch_size: size, compute_input: { count: s.count, ns: 0 }, compute_infer: { ...s }, compute_output: { count: s.count, ns: 0 } })),
    };
  }
}

const sum = (a: DurationStat, b: DurationStat): DurationStat => ({ count: a.count + b.count, ns: a.ns + b.ns });

/**
 * Adds up the statistics several server processes keep for the same model versions (`dais serve --workers N`):
 * counts and durations are summed, `last_inference` is the latest, batch sizes are matched by size. Versions
 * keep the order in which they first appear.
 */
export function mergeStatistics(parts: readonly (readonly ModelStatisticsJson[])[]): ModelStatisticsJson[] {
  const merged = new Map<string, ModelStatisticsJson>();
  for (const list of parts) {
    for (const s of list) {
      const key = `${s.name}\u0000${s.version}`;
      const had = merged.get(key);
      if (!had) {
        merged.set(key, structuredClone(s));
        continue;
      }
      had.last_inference = Math.max(had.last_inference, s.last_inference);
      had.inference_count += s.inference_count;
      had.execution_count += s.execution_count;
      for (const k of Object.keys(had.inference_stats) as (keyof ModelStatisticsJson['inference_stats'])[]) {
        had.inference_stats[k] = sum(had.inference_stats[k], s.inference_stats[k]);
      }
      for (const b of s.batch_stats) {
        const same = had.batch_stats.find((x) => x.batch_size === b.batch_size);
        if (!same) had.batch_stats.push(structuredClone(b));
        else {
          same.compute_input = sum(same.compute_input, b.compute_input);
          same.compute_infer = sum(same.compute_infer, b.compute_infer);
          same.compute_output = sum(same.compute_output, b.compute_output);
        }
      }
      had.batch_stats.sort((a, b) => a.batch_size - b.batch_size);
    }
  }
  return [...merged.values()];
}
