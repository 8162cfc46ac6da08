// gRPC adapter: inference.GRPCInferenceService over the same ModelRepository as REST, with the same validation,
// the same errors (each ERRORS code carries its gRPC status) and the same statistics and metrics. Models are
// resolved through the same registry as REST (the monitor's canary/shadow router when monitoring is on), and each
// ModelInfer call and each ModelStreamInfer message is reported to the same `onInfer` hook (drift, prediction log,
// feedback), with its x-request-id.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { checkBearer } from '../../core/auth.ts';
import {
  configurationOf,
  ERRORS,
  InferenceError,
  requestFromJson,
  toBinary,
  toInferenceError,
  inferAndReport,
  type InferenceResponse,
  type InferEvent,
  type ModelRegistry,
  type Parameters,
  type ServerMetadata,
} from '../../core/index.ts';
import { silentLogger, type Logger } from '../../node/logger.ts';
import { parseConfigOverride } from '../config-override.ts';
import { addHealthService } from './health.ts';
import { streamResponder } from './stream.ts';
import type { ModelRepository } from '../repository.ts';
import { checkModelControl, localActions, type RouteActions } from '../routes.ts';
import { newRequestId } from '../../node/request-id.ts';

export const PROTO_PATH = join(dirname(fileURLToPath(import.meta.url)), 'inference.proto');

/** Loader options shared with clients (tests, bench): int64 as strings so INT64 contents stay exact. */
export const PROTO_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: false, arrays: true, oneofs: true };

export function loadInferenceService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  return pkg.inference.GRPCInferenceService;
}

type Long = string | number;

interface GrpcParameter {
  parameter_choice?: string;
  bool_param?: boolean;
  int64_param?: Long;
  string_param?: string;
  double_param?: number;
  uint64_param?: Long;
}

interface GrpcContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: Long[];
  uint_contents?: number[];
  uint64_contents?: Long[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

interface GrpcInferRequest {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, GrpcParameter>;
  inputs?: { name?: string; datatype?: string; shape?: Long[]; parameters?: Record<string, GrpcParameter>; contents?: GrpcContents | null }[];
  outputs?: { name?: string; parameters?: Record<string, GrpcParameter> }[];
  raw_input_contents?: Uint8Array[];
}

const CONTENTS_FIELD: Record<string, keyof GrpcContents> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

function parametersFrom(p: Record<string, GrpcParameter> | undefined): Parameters | undefined {
  if (!p) return undefined;
  const out: Parameters = {};
  for (const [k, v] of Object.entries(p)) {
    switch (v.parameter_choice) {
      case 'bool_param':
        out[k] = Boolean(v.bool_param);
        break;
      case 'string_param':
        out[k] = v.string_param ?? '';
        break;
      case 'double_param':
        out[k] = Number(v.double_param);
        break;
      case 'int64_param':
        out[k] = Number(v.int64_param);
        break;
      case 'uint64_param':
        out[k] = Number(v.uint64_param);
        break;
    }
  }
  return Object.keys(out).length ? out : undefined;
}

function parametersTo(p: Parameters | undefined): Record<string, GrpcParameter> {
  const out: Record<string, GrpcParameter> = {};
  for (const [k, v] of Object.entries(p ?? {})) {
    if (typeof v === 'boolean') out[k] = { bool_param: v };
    else if (typeof v === 'string') out[k] = { string_param: v };
    else if (Number.isInteger(v)) out[k] = { int64_param: v };
    else out[k] = { double_param: v };
  }
  return out;
}

/** ModelInferRequest → the core's InferenceRequest, through the same decoder (and checks) as REST's binary path. */
export function inferRequestFromGrpc(req: GrpcInferRequest): { name: string; version?: string; request: ReturnType<typeof requestFromJson> } {
  const name = req.model_name ?? '';
  if (!name) throw new InferenceError('INVALID_REQUEST', 'model_name is required');
  const inputs = req.inputs ?? [];
  const raw = req.raw_input_contents ?? [];
  if (raw.length && raw.length !== inputs.length) {
    throw new InferenceError('INVALID_REQUEST', `raw_input_contents has ${raw.length} entries for ${inputs.length} inputs: give one per input, in the same order`);
  }
  const chunks: Uint8Array[] = [];
  const jsonInputs = inputs.map((t, i) => {
    const label = `input '${t.name ?? i}'`;
    const o: Record<string, unknown> = { name: t.name, datatype: t.datatype, shape: (t.shape ?? []).map(Number) };
    const params: Record<string, unknown> = { ...parametersFrom(t.parameters) };
    const contents = t.contents ?? undefined;
    const given = contents ? (Object.keys(contents) as (keyof GrpcContents)[]).filter((k) => (contents[k]?.length ?? 0) > 0) : [];
    if (raw.length) {
      if (given.length) throw new InferenceError('INVALID_REQUEST', `${label} has typed contents but the request also has raw_input_contents; use one or the other`);
      chunks.push(raw[i]);
      params.binary_data_size = raw[i].length;
    } else {
      const field = CONTENTS_FIELD[t.datatype ?? ''];
      if (!field) {
        throw new InferenceError(
          t.datatype === 'FP16' ? 'INVALID_REQUEST' : 'UNSUPPORTED_DATATYPE',
          t.datatype === 'FP16' ? `${label}: FP16 has no typed contents field; send it in raw_input_contents` : `${label}: datatype ${JSON.stringify(t.datatype)} is not a v2 datatype`,
        );
      }
      const wrong = given.filter((k) => k !== field);
      if (wrong.length) throw new InferenceError('INVALID_REQUEST', `${label} is ${t.datatype} but has contents.${wrong[0]}; use contents.${field}`);
      const values = (contents?.[field] ?? []) as unknown[];
      if (field === 'bytes_contents') {
        // The binary extension's BYTES layout (4-byte length + bytes per element), written by the core's encoder.
        const bytes = toBinary({ name: label, datatype: 'BYTES', shape: [values.length], data: values as Uint8Array[] });
        chunks.push(bytes);
        params.binary_data_size = bytes.length;
      } else o.data = values;
    }
    if (Object.keys(params).length) o.parameters = params;
    return o;
  });
  let total = 0;
  for (const c of chunks) total += c.length;
  let binary: Uint8Array | undefined;
  if (chunks.length) {
    binary = new Uint8Array(total);
    let p = 0;
    for (const c of chunks) {
      binary.set(c, p);
      p += c.length;
    }
  }
  const json: Record<string, unknown> = { inputs: jsonInputs };
  if (req.id) json.id = req.id;
  const params = parametersFrom(req.parameters);
  if (params) json.parameters = params;
  if (req.outputs?.length) json.outputs = req.outputs.map((o) => ({ name: o.name, ...(o.parameters ? { parameters: parametersFrom(o.parameters) ?? {} } : {}) }));
  return { name, version: req.model_version || undefined, request: requestFromJson(json, binary) };
}

export function inferResponseToGrpc(r: InferenceResponse): Record<string, unknown> {
  return {
    model_name: r.model_name,
    model_version: r.model_version ?? '',
    id: r.id ?? '',
    parameters: parametersTo(r.parameters),
    outputs: r.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, parameters: parametersTo(t.parameters) })),
    raw_output_contents: r.outputs.map((t) => {
      const b = toBinary(t);
      return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    }),
  };
}

interface RepositoryModelRequest {
  repository_name?: string;
  model_name?: string;
  parameters?: Record<string, { parameter_choice?: string; string_param?: string; bool_param?: boolean; int64_param?: Long; bytes_param?: Uint8Array }>;
}

/**
 * The model a load/unload names. Triton's messages have repository_name = 1, model_name = 2; KServe's
 * grpc_predict_v2.proto has model_name = 1. dais serves one, unnamed repository, so a request with only field 1 set
 * comes from a KServe-numbered client and field 1 is the model's name.
 */
function repositoryModelName(req: RepositoryModelRequest): string {
  return req.model_name || req.repository_name || '';
}

/** The "config" parameter of a load (Triton sends it as a string_param; bytes_param is read as UTF-8 text). */
function configParameter(req: RepositoryModelRequest): string | undefined {
  const p = req.parameters?.config;
  if (p === undefined) return undefined;
  if (p.parameter_choice === 'bytes_param' && p.bytes_param) return Buffer.from(p.bytes_param).toString('utf8');
  if (p.parameter_choice !== 'string_param') throw new InferenceError('INVALID_REQUEST', "load parameter 'config' must be a string_param holding the model config as JSON");
  return p.string_param ?? '';
}

/** What a request that is not a valid protobuf message deserializes to, so the handler can answer INVALID_ARGUMENT. */
class MalformedMessage {
  constructor(readonly reason: string) {}
}

/**
 * The service with deserializers that never throw: grpc-js answers a throwing deserializer with INTERNAL, but a body
 * that is not a valid message is the client's error (docs/errors.md: INVALID_REQUEST → INVALID_ARGUMENT).
 */
function tolerant(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(service)) {
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (e) {
          return new MalformedMessage((e as Error).message);
        }
      },
    };
  }
  return out;
}

function checkWellFormed(req: unknown): void {
  if (req instanceof MalformedMessage) throw new InferenceError('INVALID_REQUEST', `the request is not a valid protobuf message: ${req.reason}`);
}

function grpcError(e: unknown): Partial<grpc.StatusObject> {
  const err = toInferenceError(e);
  return { code: ERRORS[err.code].grpc as grpc.status, details: err.message };
}

export interface GrpcServerOptions {
  repository: ModelRepository;
  /** Where infer, readiness and metadata calls resolve models, as REST's (e.g. the monitor's traffic router); default: the repository. */
  registry?: ModelRegistry;
  /**
   * Called after each ModelInfer call and each ModelStreamInfer message (answered or failed once decoded), as REST's
   * onInfer. `requestId` is the call's x-request-id; a stream's message n (from 0, in the order sent) gets
   * `<the stream's x-request-id>.<n>`, so that feedback can name each message.
   */
  onInfer?: (event: InferEvent) => void;
  server: ServerMetadata;
  host?: string;
  port?: number;
  authToken?: string;
  logger?: Logger;
  /** Largest message accepted, in bytes (default 64 MiB, as the REST body limit). */
  maxMessageBytes?: number;
  /** Where load/unload and statistics are carried out (every worker under `dais serve --workers N`); default: here. */
  actions?: RouteActions;
  /** Allow RepositoryIndex/Load/Unload (`--model-control explicit`); default false: MODEL_CONTROL_DISABLED. */
  modelControl?: boolean;
}

export interface RunningGrpcServer {
  port: number;
  url: string;
  close(options?: { timeoutMs?: number; graceMs?: number }): Promise<boolean>;
}

const OPEN_METHODS = new Set(['ServerLive', 'ServerReady', 'ModelReady']);

/** The client's x-request-id when it sent a usable one, else a new id. */
function requestIdOf(metadata: grpc.Metadata): string {
  const given = metadata.get('x-request-id')[0];
  return typeof given === 'string' && given.length > 0 && given.length <= 128 ? given : newRequestId();
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const { repository, authToken, onInfer } = options;
  const modelControl = options.modelControl ?? false;
  const registry = options.registry ?? repository;
  const actions = options.actions ?? localActions(repository);
  const logger = options.logger ?? silentLogger;
  const service = tolerant(loadInferenceService().service);
  const max = options.maxMessageBytes ?? 64 * 1024 * 1024;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': max, 'grpc.max_send_message_length': -1 });

  function unary<Req, Res>(method: string, fn: (req: Req, requestId: string, metadata: grpc.Metadata) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const requestId = requestIdOf(call.metadata);
      const md = new grpc.Metadata();
      md.set('x-request-id', requestId);
      call.sendMetadata(md);
      try {
        if (authToken && !OPEN_METHODS.has(method)) checkBearer(call.metadata.get('authorization')[0] as string | undefined, authToken);
        checkWellFormed(call.request);
        Promise.resolve(fn(call.request, requestId, call.metadata)).then(
          (res) => callback(null, res),
          (e: unknown) => {
            const err = grpcError(e);
            if ((err.code ?? 0) === grpc.status.INTERNAL) logger.error({ requestId, method, error: (e as Error).message }, 'gRPC call failed unexpectedly');
            callback(err);
          },
        );
      } catch (e) {
        callback(grpcError(e));
      }
    };
  }

  const report = (event: InferEvent) => {
    try {
      onInfer?.(event);
    } catch (e) {
      logger.warn({ model: event.model, requestId: event.requestId, error: (e as Error).message }, 'onInfer hook failed');
    }
  };

  // As REST: a request that does not decode, or names no servable model, is refused without an event.
  const infer = async (req: GrpcInferRequest, requestId: string, metadata?: grpc.Metadata) => {
    const started = performance.now();
    const { name, version, request } = inferRequestFromGrpc(req);
    const endpoint = registry.resolve(name, version);
    if (!endpoint.isReady()) throw new InferenceError('MODEL_NOT_READY', `model '${name}' version ${endpoint.version} is not ready`);
    const traceparent = metadata?.get('traceparent')[0]; // W3C trace context, as gRPC clients send it in metadata
    return inferAndReport(endpoint, request, requestId, started, inferResponseToGrpc, report, undefined, typeof traceparent === 'string' ? traceparent : undefined);
  };

  type ModelRef = { name?: string; version?: string };
  const resolve = (req: ModelRef) => registry.resolve(req.name ?? '', req.version || undefined);

  const handlers: grpc.UntypedServiceImplementation = {
    ServerLive: unary('ServerLive', () => ({ live: true })),
    ServerReady: unary('ServerReady', () => ({ ready: registry.isReady() })),
    ModelReady: unary('ModelReady', (req: ModelRef) => ({ ready: resolve(req).isReady() })),
    ServerMetadata: unary('ServerMetadata', () => options.server),
    ModelMetadata: unary('ModelMetadata', (req: ModelRef) => {
      const m = resolve(req).metadata();
      return { name: m.name, versions: m.versions ?? [], platform: m.platform, inputs: m.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })), outputs: m.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })) };
    }),
    ModelConfig: unary('ModelConfig', (req: ModelRef) => ({ config: configurationOf(resolve(req)) })),
    ModelInfer: unary('ModelInfer', infer),
    ModelStreamInfer: (call: grpc.ServerDuplexStream<GrpcInferRequest, unknown>) => {
      try {
        if (authToken) checkBearer(call.metadata.get('authorization')[0] as string | undefined, authToken);
      } catch (e) {
        call.emit('error', grpcError(e));
        return;
      }
      const streamId = requestIdOf(call.metadata);
      const md = new grpc.Metadata();
      md.set('x-request-id', streamId);
      call.sendMetadata(md);
      let received = 0;
      const responder = streamResponder(call);
      call.on('data', (req: GrpcInferRequest) => {
        const id = `${streamId}.${received++}`;
        responder.add(
          req,
          Promise.resolve().then(() => {
            checkWellFormed(req);
            return infer(req, id);
          }),
        );
      });
      call.on('end', () => responder.end());
    },
    ModelStatistics: unary('ModelStatistics', (req: ModelRef) => actions.statistics(req.name || undefined, req.version || undefined)),
    RepositoryIndex: unary('RepositoryIndex', (req: { ready?: boolean }) => {
      checkModelControl(modelControl);
      return { models: repository.index(req.ready === true).map((e) => ({ ...e, version: e.version ?? '' })) };
    }),
    RepositoryModelLoad: unary('RepositoryModelLoad', async (req: RepositoryModelRequest) => {
      checkModelControl(modelControl);
      const keys = Object.keys(req.parameters ?? {}).filter((k) => k.startsWith('file:'));
      if (keys.length) throw new InferenceError('UNSUPPORTED', `load parameters ${keys.map((k) => `'${k}'`).join(', ')} are not supported: put the model file in the repository folder, then load it by name`);
      const name = repositoryModelName(req);
      const config = configParameter(req);
      if (config !== undefined) parseConfigOverride(config, name); // refused here, before any worker is asked
      await actions.loadOrUnload('load', name, config);
      return {};
    }),
    RepositoryModelUnload: unary('RepositoryModelUnload', async (req: RepositoryModelRequest) => {
      checkModelControl(modelControl);
      await actions.loadOrUnload('unload', repositoryModelName(req));
      return {};
    }),
  };
  server.addService(service, handlers);
  const endHealthWatches = addHealthService(server, () => registry.isReady());
  const host = options.host ?? '127.0.0.1';
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${shownHost}:${options.port ?? 8081}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  let closing: Promise<boolean> | undefined;
  return {
    port,
    url: `${shownHost}:${port}`,
    close(closeOptions = {}) {
      closing ??= new Promise<boolean>((resolve) => {
        endHealthWatches();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve(false);
        }, closeOptions.timeoutMs ?? 30_000);
        // tryShutdown stops accepting calls and waits for the ones in progress; the grace period keeps accepting
        // calls already on their way, as the HTTP side does.
        setTimeout(
          () =>
            server.tryShutdown(() => {
              clearTimeout(timer);
              resolve(true);
            }),
          Math.min(closeOptions.graceMs ?? 0, closeOptions.timeoutMs ?? 30_000),
        );
      });
      return closing;
    },
  };
}
