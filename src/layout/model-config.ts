// <repo>/<model>/config.json or config.yaml: how one model is served. Parse → validate (every error at once, each
// naming its field) → resolve against the server's defaults. Unknown keys are refused so a typo never silently
// falls back to a default.
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isDatatype } from '../core/index.ts';
import type { BatchingOptions } from '../core/batcher.ts';
import type { InputConstraint } from '../runtime/served-model.ts';
import { UserError } from '../core/errors.ts';
import { processingSpecOf, type ProcessingSpec } from '../core/processing/spec.ts';
import { parseWarmup, type WarmupConfig } from './warmup-config.ts';
import { RUN_ON, type RunOn } from '../runtime/run-plan.ts';
import { tritonConfigToRaw } from './pbtxt.ts';
import { CONFIG_FILE_NAMES, isVersionFolder } from './repository.ts';

// config.pbtxt: Triton's, read for the fields dais does the same thing for (pbtxt.ts), every other field refused.
export { CONFIG_FILE_NAMES };

export const ISOLATION = ['none', 'process'] as const;
export type Isolation = (typeof ISOLATION)[number];

export type VersionPolicy = { latest: number } | { all: true } | { specific: string[] };

/** What a config file may say; every field optional. */
export interface ModelConfig {
  dynamic_batching?: { max_batch_size: number; max_queue_delay_ms: number; preferred_batch_size?: number[] };
  version_policy?: VersionPolicy;
  instance_count?: number;
  intra_op_threads?: number;
  /** Where runs compute: 'auto' (measured at load), 'main' (the thread that reads requests) or 'worker'. */
  run_on?: RunOn;
  /** 'process': the model's sessions run in child processes, so a native crash costs only its runs (`--isolation`). */
  isolation?: Isolation;
  max_queue_size?: number;
  request_timeout_ms?: number;
  inputs?: InputConstraint[];
  /** Canary: version → weight for requests that name no version (read by src/serve/traffic.ts; split by a hash of the request id). */
  traffic?: Record<string, number>;
  /** A version that gets a copy of each such request; its outputs are logged and compared, never returned. */
  shadow?: string;
  /** Declared pre/post-processing (`preprocess`, `postprocess`): docs/model-config.md. */
  processing?: ProcessingSpec;
  /** Requests run before the version serves (src/serve/warmup.ts); false: none. */
  warmup?: WarmupConfig | false;
}

/** Server-wide defaults (CLI flags) for what a model's config leaves out. */
export interface ServingDefaults {
  /** false = no batching; absent = AUTO_BATCHING for the models that allow it. */
  batching?: BatchingOptions | false;
  runOn?: RunOn;
  isolation?: Isolation;
  versionPolicy?: VersionPolicy;
  instanceCount?: number;
  intraOpThreads?: number;
  maxQueueSize?: number;
  requestTimeoutMs?: number;
}

/** A model's settings after defaults are applied. */
export interface ResolvedModelConfig {
  batching: BatchingOptions | undefined;
  /** `batching` is AUTO_BATCHING: nobody asked for it, its size follows the model's measured compute. */
  batchingAuto: boolean;
  runOn: RunOn;
  isolation: Isolation;
  versionPolicy: VersionPolicy;
  instanceCount: number;
  /** undefined = chosen from the cores (run-plan.ts); 0 = onnxruntime's own choice. */
  intraOpThreads: number | undefined;
  maxQueueSize: number;
  requestTimeoutMs: number;
  inputs: InputConstraint[];
  processing: ProcessingSpec | undefined;
  warmup: WarmupConfig | false | undefined;
  /** Canary split and shadow version, as the config file gives them (src/serve/traffic.ts applies them). */
  traffic: Record<string, number> | undefined;
  shadow: string | undefined;
}

export const DEFAULTS = {
  versionPolicy: { all: true } as VersionPolicy,
  instanceCount: 1,
  // No intraOpThreads: it follows the cores (run-plan.ts). onnxruntime's own default, a spinning pool as wide as the
  // machine per session, would compete with the server's thread and with other sessions for the same cores.
  maxQueueSize: 1024,
  requestTimeoutMs: 30_000,
  maxQueueDelayMs: 0,
};

/**
 * Batching when neither the config nor the flags say: every request this turn of the event loop read, no added
 * delay, at most this many rows (lowered per model from its measured compute, run-plan.ts).
 */
export const AUTO_BATCHING: BatchingOptions = { maxBatchSize: 64, maxQueueDelayMs: 0 };

export class ConfigError extends UserError {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`}`);
    this.name = 'ConfigError';
  }
}

const TOP_KEYS = ['dynamic_batching', 'version_policy', 'instance_count', 'intra_op_threads', 'run_on', 'isolation', 'max_queue_size', 'request_timeout_ms', 'inputs', 'traffic', 'shadow', 'preprocess', 'postprocess', 'warmup'];
const BATCHING_KEYS = ['max_batch_size', 'max_queue_delay_ms', 'preferred_batch_size'];
const INPUT_KEYS = ['name', 'datatype', 'shape'];

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function unknownKeys(obj: Record<string, unknown>, known: string[], where: string, problems: string[]): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) problems.push(`unknown key '${where}${k}' (allowed: ${known.join(', ')})`);
  }
}

function int(obj: Record<string, unknown>, key: string, where: string, min: number, max: number, problems: string[]): number | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    problems.push(`'${where}${key}' must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return v;
}

function versionPolicyOf(v: unknown, problems: string[]): VersionPolicy | undefined {
  const usage = "'version_policy' must be one of {latest: N}, {all: true} or {specific: [versions]} (Triton's {latest: {num_versions: N}}, {all: {}}, {specific: {versions: [...]}} also work)";
  if (!isObject(v) || Object.keys(v).length !== 1) {
    problems.push(`${usage}, got ${JSON.stringify(v)}`);
    return undefined;
  }
  const [kind, arg] = Object.entries(v)[0];
  if (kind === 'latest') {
    const n = isObject(arg) ? arg.num_versions : arg;
    if (isObject(arg)) unknownKeys(arg, ['num_versions'], 'version_policy.latest.', problems);
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
      problems.push(`'version_policy.latest' must be a whole number of versions ≥ 1, got ${JSON.stringify(n)}`);
      return undefined;
    }
    return { latest: n };
  }
  if (kind === 'all') {
    if (arg === true || (isObject(arg) && Object.keys(arg).length === 0)) return { all: true };
    problems.push(`'version_policy.all' must be true (or {}), got ${JSON.stringify(arg)}`);
    return undefined;
  }
  if (kind === 'specific') {
    const list = isObject(arg) ? arg.versions : arg;
    if (isObject(arg)) unknownKeys(arg, ['versions'], 'version_policy.specific.', problems);
    if (!Array.isArray(list) || list.length === 0 || !list.every((x) => (typeof x === 'number' && Number.isInteger(x) && x >= 0) || (typeof x === 'string' && /^\d+$/.test(x)))) {
      problems.push(`'version_policy.specific' must be a non-empty list of version numbers, got ${JSON.stringify(list)}`);
      return undefined;
    }
    return { specific: list.map(String) };
  }
  problems.push(`unknown key 'version_policy.${kind}'; ${usage}`);
  return undefined;
}

function trafficOf(raw: Record<string, unknown>, config: ModelConfig, problems: string[]): void {
  if (raw.traffic !== undefined) {
    const t = raw.traffic;
    const usage = `'traffic' must map version numbers to weights, e.g. {"1": 90, "2": 10}`;
    if (!isObject(t) || Object.keys(t).length === 0) problems.push(`${usage}, got ${JSON.stringify(t)}`);
    else {
      const out: Record<string, number> = {};
      for (const [v, w] of Object.entries(t)) {
        if (!isVersionFolder(v)) problems.push(`'traffic.${v}': keys must be version numbers (folder names), e.g. "2"`);
        else if (typeof w !== 'number' || !(w >= 0) || !Number.isFinite(w)) problems.push(`'traffic.${v}' must be a weight ≥ 0, got ${JSON.stringify(w)}`);
        else out[String(Number(v))] = w;
      }
      if (Object.values(out).length && Object.values(out).every((w) => w === 0)) problems.push(`'traffic' gives every version weight 0: at least one must be above 0`);
      config.traffic = out;
    }
  }
  if (raw.shadow !== undefined) {
    const v = raw.shadow;
    if ((typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'string' && isVersionFolder(v))) config.shadow = String(Number(v));
    else problems.push(`'shadow' must be one version number (its outputs are logged, never returned), got ${JSON.stringify(v)}`);
  }
  if (config.shadow !== undefined && config.traffic?.[config.shadow]) {
    problems.push(`version ${config.shadow} is both 'shadow' and in 'traffic' with a weight: a shadow's outputs never reach clients, so give it weight 0 or drop it from 'traffic'`);
  }
}

/** Validates a parsed config value; throws ConfigError listing every problem. */
export function validateModelConfig(raw: unknown, file: string): ModelConfig {
  const problems: string[] = [];
  if (raw === null || raw === undefined) return {};
  if (!isObject(raw)) throw new ConfigError(file, ['the config must be an object (key: value pairs)']);
  unknownKeys(raw, TOP_KEYS, '', problems);
  const config: ModelConfig = {};
  if (raw.dynamic_batching !== undefined) {
    const b = raw.dynamic_batching;
    if (!isObject(b)) problems.push(`'dynamic_batching' must be an object with ${BATCHING_KEYS.join(', ')}`);
    else {
      unknownKeys(b, BATCHING_KEYS, 'dynamic_batching.', problems);
      const max = int(b, 'max_batch_size', 'dynamic_batching.', 1, 1 << 20, problems);
      if (b.max_batch_size === undefined) problems.push("'dynamic_batching.max_batch_size' is required (the most rows in one run)");
      const delay = b.max_queue_delay_ms;
      if (delay !== undefined && (typeof delay !== 'number' || !(delay >= 0) || delay > 60_000)) {
        problems.push(`'dynamic_batching.max_queue_delay_ms' must be a number from 0 to 60000, got ${JSON.stringify(delay)}`);
      }
      let preferred: number[] | undefined;
      if (b.preferred_batch_size !== undefined) {
        const p = b.preferred_batch_size;
        if (!Array.isArray(p) || !p.every((x) => Number.isInteger(x) && x >= 1)) {
          problems.push(`'dynamic_batching.preferred_batch_size' must be a list of whole numbers ≥ 1, got ${JSON.stringify(p)}`);
        } else {
          preferred = p as number[];
          if (max !== undefined) for (const x of preferred) if (x > max) problems.push(`'dynamic_batching.preferred_batch_size' has ${x}, above max_batch_size ${max}`);
        }
      }
      if (max !== undefined) {
        config.dynamic_batching = { max_batch_size: max, max_queue_delay_ms: typeof delay === 'number' ? delay : DEFAULTS.maxQueueDelayMs };
        if (preferred) config.dynamic_batching.preferred_batch_size = preferred;
      }
    }
  }
  if (raw.version_policy !== undefined) config.version_policy = versionPolicyOf(raw.version_policy, problems);
  config.instance_count = int(raw, 'instance_count', '', 1, 256, problems);
  config.intra_op_threads = int(raw, 'intra_op_threads', '', 0, 256, problems);
  if (raw.run_on !== undefined) {
    if (RUN_ON.includes(raw.run_on as RunOn)) config.run_on = raw.run_on as RunOn;
    else problems.push(`'run_on' must be one of ${RUN_ON.join(', ')}, got ${JSON.stringify(raw.run_on)}`);
  }
  if (raw.isolation !== undefined) {
    if (ISOLATION.includes(raw.isolation as Isolation)) config.isolation = raw.isolation as Isolation;
    else problems.push(`'isolation' must be one of ${ISOLATION.join(', ')}, got ${JSON.stringify(raw.isolation)}`);
    if (config.isolation === 'process' && config.run_on === 'main') problems.push(`'isolation: process' runs the model in a child process: it cannot be combined with 'run_on: main'`);
  }
  config.max_queue_size = int(raw, 'max_queue_size', '', 0, 1_000_000, problems);
  config.request_timeout_ms = int(raw, 'request_timeout_ms', '', 0, 3_600_000, problems);
  if (raw.inputs !== undefined) {
    if (!Array.isArray(raw.inputs)) problems.push(`'inputs' must be a list of {name, datatype?, shape?}`);
    else {
      config.inputs = [];
      raw.inputs.forEach((x: unknown, i: number) => {
        const where = `inputs[${i}].`;
        if (!isObject(x)) {
          problems.push(`'inputs[${i}]' must be an object {name, datatype?, shape?}`);
          return;
        }
        unknownKeys(x, INPUT_KEYS, where, problems);
        if (typeof x.name !== 'string' || !x.name) {
          problems.push(`'${where}name' must be the name of a model input`);
          return;
        }
        const c: InputConstraint = { name: x.name };
        if (x.datatype !== undefined) {
          if (isDatatype(x.datatype)) c.datatype = x.datatype;
          else problems.push(`'${where}datatype' must be a v2 datatype (FP32, INT64, …), got ${JSON.stringify(x.datatype)}`);
        }
        if (x.shape !== undefined) {
          if (Array.isArray(x.shape) && x.shape.every((d) => Number.isInteger(d) && d >= -1)) c.shape = x.shape as number[];
          else problems.push(`'${where}shape' must be a list of dimension sizes (-1 = any), got ${JSON.stringify(x.shape)}`);
        }
        config.inputs!.push(c);
      });
    }
  }
  trafficOf(raw, config, problems);
  config.processing = processingSpecOf(raw.preprocess, raw.postprocess, problems);
  config.warmup = parseWarmup(raw.warmup, problems);
  if (problems.length) throw new ConfigError(file, problems);
  for (const k of Object.keys(config) as (keyof ModelConfig)[]) if (config[k] === undefined) delete config[k];
  return config;
}

/** Parses JSON or YAML text (by file name) and validates it. */
export function parseModelConfig(text: string, file: string): ModelConfig {
  let raw: unknown;
  if (file.endsWith('.pbtxt')) {
    const triton = tritonConfigToRaw(text, basename(dirname(file)));
    if (triton.problems.length) throw new ConfigError(file, triton.problems);
    return validateModelConfig(triton.raw, file);
  }
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(file, [`cannot be parsed: ${(e as Error).message.split('\n')[0]}`]);
  }
  return validateModelConfig(raw, file);
}

/** Reads <modelDir>/config.(json|yaml|yml); undefined when there is none. Two config files is an error. */
export async function readModelConfig(modelDir: string): Promise<{ file: string; text: string; config: ModelConfig } | undefined> {
  const found: { file: string; text: string }[] = [];
  for (const n of CONFIG_FILE_NAMES) {
    const file = join(modelDir, n);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) found.push({ file, text });
  }
  if (found.length === 0) return undefined;
  if (found.length > 1) throw new ConfigError(found[0].file, [`more than one config file (${found.map((f) => f.file).join(', ')}): keep one`]);
  return { ...found[0], config: parseModelConfig(found[0].text, found[0].file) };
}

export function resolveModelConfig(config: ModelConfig, defaults: ServingDefaults = {}): ResolvedModelConfig {
  const b = config.dynamic_batching;
  const batchingAuto = !b && defaults.batching === undefined;
  return {
    batching: b
      ? { maxBatchSize: b.max_batch_size, maxQueueDelayMs: b.max_queue_delay_ms, ...(b.preferred_batch_size ? { preferredBatchSizes: b.preferred_batch_size } : {}) }
      : batchingAuto
        ? AUTO_BATCHING
        : defaults.batching || undefined,
    batchingAuto,
    runOn: config.run_on ?? defaults.runOn ?? 'auto',
    isolation: config.isolation ?? defaults.isolation ?? 'none',
    versionPolicy: config.version_policy ?? defaults.versionPolicy ?? DEFAULTS.versionPolicy,
    instanceCount: config.instance_count ?? defaults.instanceCount ?? DEFAULTS.instanceCount,
    intraOpThreads: config.intra_op_threads ?? defaults.intraOpThreads,
    maxQueueSize: config.max_queue_size ?? defaults.maxQueueSize ?? DEFAULTS.maxQueueSize,
    requestTimeoutMs: config.request_timeout_ms ?? defaults.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    inputs: config.inputs ?? [],
    processing: config.processing,
    warmup: config.warmup,
    traffic: config.traffic,
    shadow: config.shadow,
  };
}

/** The versions a policy keeps out of those on disk (numeric folder names). */
export function selectVersions(available: readonly string[], policy: VersionPolicy): string[] {
  const sorted = [...available].sort((a, b) => Number(a) - Number(b));
  if ('all' in policy) return sorted;
  if ('latest' in policy) return sorted.slice(-policy.latest);
  const wanted = new Set(policy.specific.map((v) => String(Number(v))));
  return sorted.filter((v) => wanted.has(String(Number(v))));
}
