// What a model repository (repository.ts) takes and reports: its options, load events, index rows, refresh reports.
import type { Backend, SessionOptions } from '../runtime/backend.ts';
import type { ModelObserver } from '../runtime/served-model.ts';
import type { ResolvedModelConfig, ServingDefaults } from '../layout/model-config.ts';
import type { Logger } from '../node/logger.ts';

export interface LoadEvent {
  name: string;
  version: string;
  /** The model file. */
  path: string;
  /** The model's folder (its config file's); absent for a single model file. */
  modelDir: string | undefined;
  /** The model's config as this version was loaded with it (file, override and server defaults resolved). */
  config: ResolvedModelConfig;
  ms: number;
  /** Of `ms`, the time the warmup requests took (0 when none ran). */
  warmupMs: number;
  notes: string[];
  /** Resident memory the version added at load (runtime/run-plan.ts), bytes. */
  memoryBytes?: number;
}

export interface RepositoryOptions {
  backend: Backend;
  sessionOptions?: SessionOptions;
  /** Called with one event per loaded model version (progress on the terminal, a log, a metric). */
  onLoad?: (event: LoadEvent) => void;
  /** Called when a model version (or its config) is refused. */
  onLoadError?: (event: { name: string; version?: string; error: string }) => void;
  /** Server-wide settings for what a model's config file leaves out. */
  defaults?: ServingDefaults;
  logger?: Logger;
  /** Metrics hooks, given to every loaded version. */
  observer?: ModelObserver;
  /** Run zeros through each new version before it serves (default true). */
  warmUp?: boolean;
  /** KServe's --model_name: the name of the one model the path holds (a repository of several keeps its names). */
  modelName?: string;
  /** Load nothing at open: models load when asked (src/serve/memory-budget.ts loads them on first request). */
  lazy?: boolean;
  /** Sessions on the calling thread, for models measured too small to be worth a worker thread (run-plan.ts). */
  mainThreadBackend?: Backend;
  /**
   * Whether a worker-thread model may also get a main-thread session for lone requests (run-plan.ts,
   * LONE_RUN_MAX_US). Default true; serve turns it off under --memory-budget, which sizes a load by one session.
   */
  loneSessions?: boolean;
  /** Sessions in child processes, for models whose config (or `--isolation`) says `isolation: process`. */
  isolatedBackend?: Backend;
  /** Cores this process may give its models; the automatic intra-op thread count follows it. */
  cpuBudget?: number;
}

export type ModelState = 'READY' | 'UNAVAILABLE' | 'LOADING' | 'UNLOADING';

/** One row of Triton's repository index. */
export interface RepositoryIndexEntry {
  name: string;
  version?: string;
  state: ModelState;
  reason: string;
}

export interface RefreshReport {
  loaded: { name: string; version: string }[];
  unloaded: { name: string; version: string }[];
  failed: { name: string; version?: string; error: string }[];
  /** Files seen changing during this scan; they are loaded on a later scan once they stop changing. */
  pending: number;
}
