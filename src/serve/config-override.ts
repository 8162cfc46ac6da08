// Triton's load API with a config override: POST /v2/repository/models/{m}/load with
// {"parameters": {"config": "<model config as JSON text>"}} (gRPC: the "config" string_param). The config is in
// Triton's model_config form (what GET /v2/models/{m}/config returns); the fields dais can apply are translated to
// its own config and layered over the model's config file; every other field is refused by name, so nothing a
// client asks for is silently ignored.
import { InferenceError } from '../core/index.ts';
import { ConfigError, validateModelConfig, type ModelConfig } from '../layout/model-config.ts';

/** What a load's config override changes. */
export interface ConfigOverride {
  /** dais config fields, over the model's config file. */
  config: ModelConfig;
  /** max_batch_size 0 or no dynamic_batching: no dynamic batcher, whatever the server's default. */
  noBatching: boolean;
  /** The override's text, so a change of it reloads the model as a changed config file does. */
  text: string;
}

const WHERE = "load parameters 'config'";
const TOP = ['name', 'platform', 'backend', 'max_batch_size', 'dynamic_batching', 'instance_group', 'version_policy', 'default_model_filename'];
const BATCHING = ['max_queue_delay_microseconds', 'preferred_batch_size', 'default_queue_policy'];
const QUEUE_POLICY = ['max_queue_size', 'default_timeout_microseconds', 'timeout_action', 'allow_timeout_override'];
const INSTANCE = ['name', 'kind', 'count'];
/** What fields dais cannot apply say about themselves, for the refusal. */
const WHY_NOT: Record<string, string> = {
  input: 'dais reads inputs from the model file (a config file\'s "inputs" may constrain them)',
  output: 'dais reads outputs from the model file',
  optimization: 'dais runs onnxruntime with its own settings (--threads)',
  sequence_batching: 'dais has no sequence batcher',
  ensemble_scheduling: 'dais serves no ensembles',
  model_warmup: 'dais warms every version up with zeros',
  parameters: 'dais reports its run plan there (run_on, threads, batch limit); set run_on or intra_op_threads in the model\'s config.yaml',
};

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function refuse(problems: string[]): never {
  throw new InferenceError('INVALID_REQUEST', `${WHERE}: ${problems.length === 1 ? problems[0] : problems.join('; ')}`);
}

function unknown(obj: Record<string, unknown>, known: string[], where: string, problems: string[]): void {
  for (const k of Object.keys(obj)) {
    if (known.includes(k)) continue;
    const why = where === '' ? WHY_NOT[k] : undefined;
    problems.push(`'${where}${k}' is not supported${why ? ` (${why})` : ''}; dais applies: ${known.join(', ')}`);
  }
}

const wholeAtLeast = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** Parses and translates a config override for model `model`; throws INVALID_REQUEST naming every refused field. */
export function parseConfigOverride(text: unknown, model: string): ConfigOverride {
  if (typeof text !== 'string') refuse([`must be a string holding the model config as JSON, got ${JSON.stringify(text)}`]);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    refuse([`is not valid JSON: ${(e as Error).message}`]);
  }
  if (!isObject(raw)) refuse(['must be a JSON object (a model config)']);
  const problems: string[] = [];
  unknown(raw, TOP, '', problems);
  if (raw.name !== undefined && raw.name !== model) problems.push(`'name' is ${JSON.stringify(raw.name)} but the model loaded is '${model}'`);
  for (const k of ['platform', 'backend'] as const) {
    const v = raw[k];
    if (v !== undefined && !['', 'onnxruntime', 'onnxruntime_onnx'].includes(v as string)) problems.push(`'${k}' ${JSON.stringify(v)} is not onnxruntime, which serves every dais model`);
  }
  if (raw.default_model_filename !== undefined && raw.default_model_filename !== 'model.onnx') {
    problems.push(`'default_model_filename' must be model.onnx (dais finds model.onnx, model.h5 or model.keras in the version folder)`);
  }
  const dais: Record<string, unknown> = {};
  const max = raw.max_batch_size ?? 0;
  if (!wholeAtLeast(max, 0)) problems.push(`'max_batch_size' must be a whole number ≥ 0, got ${JSON.stringify(raw.max_batch_size)}`);
  const b = raw.dynamic_batching;
  if (b !== undefined) {
    if (!isObject(b)) problems.push(`'dynamic_batching' must be an object`);
    else {
      unknown(b, BATCHING, 'dynamic_batching.', problems);
      if (max === 0) problems.push(`'dynamic_batching' needs 'max_batch_size' above 0`);
      const delay = b.max_queue_delay_microseconds ?? 0;
      if (!wholeAtLeast(delay, 0)) problems.push(`'dynamic_batching.max_queue_delay_microseconds' must be a whole number ≥ 0, got ${JSON.stringify(delay)}`);
      dais.dynamic_batching = { max_batch_size: max, max_queue_delay_ms: (delay as number) / 1000, ...(b.preferred_batch_size !== undefined ? { preferred_batch_size: b.preferred_batch_size } : {}) };
      const q = b.default_queue_policy;
      if (q !== undefined) {
        if (!isObject(q)) problems.push(`'dynamic_batching.default_queue_policy' must be an object`);
        else {
          unknown(q, QUEUE_POLICY, 'dynamic_batching.default_queue_policy.', problems);
          if (q.timeout_action !== undefined && q.timeout_action !== 'REJECT') problems.push(`'dynamic_batching.default_queue_policy.timeout_action' must be REJECT (dais fails a request that waits too long)`);
          if (q.allow_timeout_override !== undefined && q.allow_timeout_override !== false) problems.push(`'dynamic_batching.default_queue_policy.allow_timeout_override' must be false`);
          if (q.max_queue_size !== undefined) dais.max_queue_size = q.max_queue_size;
          const t = q.default_timeout_microseconds;
          if (t !== undefined) {
            if (wholeAtLeast(t, 0)) dais.request_timeout_ms = Math.ceil((t as number) / 1000);
            else problems.push(`'dynamic_batching.default_queue_policy.default_timeout_microseconds' must be a whole number ≥ 0`);
          }
        }
      }
    }
  }
  const groups = raw.instance_group;
  if (groups !== undefined) {
    if (!Array.isArray(groups) || groups.length === 0) problems.push(`'instance_group' must be a non-empty list of {count, kind}`);
    else {
      let count = 0;
      groups.forEach((g: unknown, i: number) => {
        const where = `instance_group[${i}].`;
        if (!isObject(g)) {
          problems.push(`'instance_group[${i}]' must be an object {count, kind}`);
          return;
        }
        unknown(g, INSTANCE, where, problems);
        if (g.kind !== undefined && g.kind !== 'KIND_CPU' && g.kind !== 'KIND_AUTO') problems.push(`'${where}kind' ${JSON.stringify(g.kind)} is not supported: dais runs on the CPU (KIND_CPU or KIND_AUTO)`);
        const c = g.count ?? 1;
        if (!wholeAtLeast(c, 1)) problems.push(`'${where}count' must be a whole number ≥ 1, got ${JSON.stringify(g.count)}`);
        else count += c as number;
      });
      dais.instance_count = count;
    }
  }
  if (raw.version_policy !== undefined) dais.version_policy = raw.version_policy;
  if (problems.length) refuse(problems);
  let config: ModelConfig;
  try {
    config = validateModelConfig(dais, WHERE);
  } catch (e) {
    if (e instanceof ConfigError) refuse(e.problems);
    throw e;
  }
  return { config, noBatching: config.dynamic_batching === undefined, text };
}
