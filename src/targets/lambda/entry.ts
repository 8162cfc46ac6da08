// The bundle's entry file (index.mjs once built). Everything at module scope runs in Lambda's INIT phase:
// with eager loading the sessions open there, so only a cold start pays for them and every invocation
// finds the model ready. The build fills the __DAIS_* constants in.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createV2App, StartupClock, type ServerMetadata, type TensorMetadata, type V2Handler } from '../../core/index.ts';
import { embeddingsRoute } from '../../core/processing/embeddings-route.ts';
import { onnxruntimeNode } from '../../runtime/onnxruntime-node.ts';
import { tracingFromEnv } from '../../node/tracing-env.ts';
import { createLambdaHandler, logInitPhases, logLambdaError } from './handler.ts';
import { BundledModels, type BundleManifest } from './registry.ts';

// The first statement of the module body: every import above has been evaluated by now, so `imports` ends here.
const clock = new StartupClock();

declare const __DAIS_MANIFEST__: BundleManifest;
declare const __DAIS_SERVER__: ServerMetadata;
declare const __DAIS_LAZY__: boolean;
declare const __DAIS_WARMUP__: boolean;

/** One intra-op thread per full vCPU Lambda gives this memory size (1,769 MB = 1 vCPU), at least one. */
export function intraOpThreadsFor(memoryMb: number | undefined): number {
  if (!memoryMb || !Number.isFinite(memoryMb)) return 0;
  return Math.max(1, Math.min(6, Math.floor(memoryMb / 1769)));
}

const root = dirname(fileURLToPath(import.meta.url));

// Tracing when the OTEL_* variables ask for it: the SDK lives in tracing.mjs beside this file (a separate bundle,
// so a function without tracing neither loads nor parses it). The path is a variable so that esbuild leaves the
// import alone.
const tracingOptions = tracingFromEnv(process.env);
const tracingBundle = './tracing.mjs';
const tracer = tracingOptions
  ? new ((await import(tracingBundle)) as typeof import('../../node/tracing.ts')).InferTracer({ ...tracingOptions, serviceName: tracingOptions.serviceName ?? process.env.AWS_LAMBDA_FUNCTION_NAME })
  : undefined;

// onnxruntime-node 1.30's Linux library starts a telemetry client when its environment is created (at the first
// session): it writes an SQLite file with fsyncs under $HOME/.cache (read-only on Lambda) and may upload. Off,
// INIT is shorter and the function sends nothing it was not asked to. A value set on the function wins.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

/**
 * One request per model on zeros (batch 1) through the whole app: onnxruntime's first run sets up its kernels
 * and buffers, and V8 compiles the codec, so that cost lands in INIT (ahead of time with provisioned
 * concurrency or a keep-warm ping) instead of in the first caller's request. Best effort: a model whose
 * inputs zeros do not suit simply stays cold.
 */
export async function warmUp(app: V2Handler, models: BundledModels): Promise<void> {
  for (const name of models.names()) {
    const md = models.resolve(name).metadata();
    // A model with declared processing serves a file (BYTES) input; its tensor form, listed beside it, runs the
    // same session without a decoder.
    const tensorInputs = (md.parameters?.processing as { tensor_inputs?: TensorMetadata[] } | undefined)?.tensor_inputs ?? md.inputs;
    if (tensorInputs.some((i) => i.datatype === 'BYTES')) continue;
    const inputs = tensorInputs.map((i) => {
      const shape = i.shape.map((d) => (d < 0 ? 1 : d));
      const n = shape.reduce((a, b) => a * b, 1);
      return { name: i.name, shape, datatype: i.datatype, data: new Array(n).fill(i.datatype === 'BOOL' ? false : 0) };
    });
    const body = new TextEncoder().encode(JSON.stringify({ inputs }));
    await app({ method: 'POST', path: `/v2/models/${encodeURIComponent(name)}/infer`, headers: { 'content-type': 'application/json' }, body });
  }
}

async function init(): Promise<V2Handler> {
  const threads = Number(process.env.DAIS_INTRA_OP_THREADS) || intraOpThreadsFor(Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE));
  const models = await BundledModels.load(root, __DAIS_MANIFEST__, onnxruntimeNode, threads ? { intraOpThreads: threads } : undefined);
  let warming = __DAIS_WARMUP__;
  const app = createV2App({
    registry: models,
    server: __DAIS_SERVER__,
    routes: [embeddingsRoute(models)],
    onInfer: (event) => {
      if (warming) return;
      if (event.error) logLambdaError({ error: event.error });
      tracer?.onInfer(event);
    },
  });
  if (warming) {
    const w0 = performance.now();
    await warmUp(app, models);
    clock.addWarmup(performance.now() - w0);
    warming = false;
  }
  clock.loaded();
  logInitPhases(clock.ready(), __DAIS_LAZY__);
  return app;
}

let app: V2Handler;
if (__DAIS_LAZY__) {
  // Lazy: INIT stays short and the first invocation opens the session (for models whose load would pass
  // Lambda's 10 s INIT limit); that first invocation is billed for it instead.
  let loading: Promise<V2Handler> | undefined;
  app = async (request) => {
    // A failed load is retried by the next invocation instead of failing every later one.
    loading ??= init().catch((e) => {
      loading = undefined;
      throw e;
    });
    return (await loading)(request);
  };
} else {
  app = await init();
}

const only = __DAIS_MANIFEST__.models.length === 1 || new Set(__DAIS_MANIFEST__.models.map((m) => m.name)).size === 1;
// A frozen function runs no timers: spans are exported before each invocation returns.
export const handler = createLambdaHandler(app, { defaultModel: only ? __DAIS_MANIFEST__.models[0].name : undefined, afterInvoke: tracer && (() => tracer.flush()) });
