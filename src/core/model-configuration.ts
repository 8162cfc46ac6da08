// Triton's model configuration extension: GET /v2/models/{m}[/versions/{v}]/config and the ModelConfig RPC answer
// with the served model's configuration as a ModelConfig (Triton's model_config.proto), so that tools written for
// Triton (perf_analyzer, tritonclient's get_model_config) learn a dais model's batching, shapes and instances.
// Only the fields dais has something true to say about are filled; the rest keep their protobuf defaults.
import type { Datatype } from './datatypes.ts';
import type { ModelMetadata } from './protocol.ts';

/** model_config.proto's DataType names for the protocol's datatypes (BYTES is TYPE_STRING there). */
export const CONFIG_DATA_TYPE: Record<Datatype, string> = {
  BOOL: 'TYPE_BOOL',
  UINT8: 'TYPE_UINT8',
  UINT16: 'TYPE_UINT16',
  UINT32: 'TYPE_UINT32',
  UINT64: 'TYPE_UINT64',
  INT8: 'TYPE_INT8',
  INT16: 'TYPE_INT16',
  INT32: 'TYPE_INT32',
  INT64: 'TYPE_INT64',
  FP16: 'TYPE_FP16',
  FP32: 'TYPE_FP32',
  FP64: 'TYPE_FP64',
  BYTES: 'TYPE_STRING',
};

export type ConfigVersionPolicy = { latest: { num_versions: number } } | { all: Record<string, never> } | { specific: { versions: number[] } };

/** ModelConfig in its JSON form (field names as in model_config.proto; enums by name; integers as numbers). */
export interface ModelConfiguration {
  name: string;
  platform: string;
  backend: string;
  version_policy?: ConfigVersionPolicy;
  /** 0: requests carry the model's full shapes and are never joined; above 0: the dynamic batcher's limit, and
   * `dims` leave out dimension 0. */
  max_batch_size: number;
  input: { name: string; data_type: string; format: 'FORMAT_NONE'; dims: number[] }[];
  output: { name: string; data_type: string; dims: number[] }[];
  dynamic_batching?: {
    preferred_batch_size: number[];
    max_queue_delay_microseconds: number;
    default_queue_policy: { timeout_action: 'REJECT'; default_timeout_microseconds: number; allow_timeout_override: false; max_queue_size: number };
  };
  instance_group: { name: string; kind: 'KIND_CPU'; count: number }[];
  default_model_filename: string;
  /** model_config.proto's `parameters` (field 14): how the server chose to run the model, and what it measured. */
  parameters?: Record<string, { string_value: string }>;
}

/** How a version is served, for its configuration. Absent fields: what the endpoint cannot say (nothing is made up). */
export interface ServingSettings {
  batching?: { maxBatchSize: number; maxQueueDelayMs: number; preferredBatchSizes?: readonly number[] };
  instanceCount?: number;
  maxQueueSize?: number;
  /** 0 = no limit. */
  requestTimeoutMs?: number;
  versionPolicy?: { latest: number } | { all: true } | { specific: readonly string[] };
  parameters?: Record<string, { string_value: string }>;
}

function versionPolicyOf(p: NonNullable<ServingSettings['versionPolicy']>): ConfigVersionPolicy {
  if ('latest' in p) return { latest: { num_versions: p.latest } };
  if ('all' in p) return { all: {} };
  return { specific: { versions: p.specific.map(Number) } };
}

/** The ModelConfig of a model version from its metadata and how it is served. */
export function modelConfiguration(metadata: ModelMetadata, settings: ServingSettings = {}): ModelConfiguration {
  const b = settings.batching;
  const batched = b !== undefined && b.maxBatchSize > 0;
  const dims = (shape: readonly number[]) => (batched ? shape.slice(1) : [...shape]);
  const config: ModelConfiguration = {
    name: metadata.name,
    platform: metadata.platform,
    backend: metadata.platform === 'onnxruntime_onnx' ? 'onnxruntime' : '',
    max_batch_size: batched ? b.maxBatchSize : 0,
    input: metadata.inputs.map((t) => ({ name: t.name, data_type: CONFIG_DATA_TYPE[t.datatype], format: 'FORMAT_NONE', dims: dims(t.shape) })),
    output: metadata.outputs.map((t) => ({ name: t.name, data_type: CONFIG_DATA_TYPE[t.datatype], dims: dims(t.shape) })),
    instance_group: [{ name: `${metadata.name}_0`, kind: 'KIND_CPU', count: settings.instanceCount ?? 1 }],
    default_model_filename: 'model.onnx',
  };
  if (settings.versionPolicy) config.version_policy = versionPolicyOf(settings.versionPolicy);
  if (settings.parameters) config.parameters = { ...settings.parameters };
  if (batched) {
    config.dynamic_batching = {
      preferred_batch_size: [...(b.preferredBatchSizes ?? [])],
      max_queue_delay_microseconds: Math.round(b.maxQueueDelayMs * 1000),
      default_queue_policy: {
        timeout_action: 'REJECT',
        default_timeout_microseconds: Math.round((settings.requestTimeoutMs ?? 0) * 1000),
        allow_timeout_override: false,
        max_queue_size: settings.maxQueueSize ?? 0,
      },
    };
  }
  return config;
}
