// The bundle's entry file (index.mjs once built). Everything at module scope runs in Lambda's INIT phase:
// with eager loading the sessions open there, so only a cold start pays for them and every invocation
// finds the model ready. The build fills the __DAIS_* constants in.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createV2App, type ServerMetadata, type V2Handler } from '../../core/index.ts';
import { onnxruntimeNode } from '../../runtime/onnxruntime-node.ts';
import { createLambdaHandler, logLambdaError } from './handler.ts';
import { BundledModels, type BundleManifest } from './registry.ts';

declare const __DAIS_MANIFEST__: BundleManifest;
declare const __DAIS_SERVER__: ServerMetadata;
declare const __DAIS_LAZY__: boolean;

/** One intra-op thread per full vCPU Lambda gives this memory size (1,769 MB = 1 vCPU), at least one. */
export function intraOpThreadsFor(memoryMb: number | undefined): number {
  if (!memoryMb || !Number.isFinite(memoryMb)) return 0;
  return Math.max(1, Math.min(6, Math.floor(memoryMb / 1769)));
}

const root = dirname(fileURLToPath(import.meta.url));

// onnxruntime-node 1.30's Linux library starts a telemetry client when its environment is created (at the first
// session): it writes an SQLite file with fsyncs under $HOME/.cache (read-only on Lambda) and may upload. Off,
// INIT is shorter and the function sends nothing it was not asked to. A value set on the function wins.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

async function init(): Promise<V2Handler> {
  const threads = Number(process.env.DAIS_INTRA_OP_THREADS) || intraOpThreadsFor(Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE));
  const models = await BundledModels.load(root, __DAIS_MANIFEST__, onnxruntimeNode, threads ? { intraOpThreads: threads } : undefined);
  return createV2App({
    registry: models,
    server: __DAIS_SERVER__,
    onInfer: ({ error }) => {
      if (error) logLambdaError({ error });
    },
  });
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
export const handler = createLambdaHandler(app, { defaultModel: only ? __DAIS_MANIFEST__.models[0].name : undefined });
