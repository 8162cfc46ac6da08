// onnxruntime-web (WebAssembly, optionally WebGPU) as a dais Backend. The same file runs in Node (tests, the edge
// build's checks, benchmarks) and in browsers: the edge bundler points the 'onnxruntime-web' import at the build
// it ships (plain SIMD wasm, or the WebGPU build), so nothing here knows which one it got.
import * as ort from 'onnxruntime-web';
import { InferenceError, type Tensor } from '../core/index.ts';
import type { Backend, Session, SessionOptions } from './backend.ts';
import { fromOrtTensor, tensorMetadataOf, toOrtTensor } from './ort-tensors.ts';

export interface WebBackendOptions {
  /** 'wasm' (default) or 'webgpu'; WebGPU falls back to wasm for operators it lacks. */
  executionProviders?: readonly ('wasm' | 'webgpu')[];
  /**
   * WebAssembly threads. 1 (default) needs nothing from the page; more need SharedArrayBuffer, which browsers only
   * give to cross-origin-isolated pages (COOP/COEP headers).
   */
  numThreads?: number;
  /** Where the runtime's .wasm/.mjs files are (a URL prefix ending in '/'); default: beside the runtime's script. */
  wasmPaths?: string;
}

/** The version of onnxruntime-web this backend runs on (shown in build reports and the demo page). */
export const ONNXRUNTIME_WEB_VERSION: string = ort.env.versions.web ?? ort.env.versions.common;

function ortOptions(providers: readonly string[], o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return { executionProviders: [...providers], graphOptimizationLevel: o.graphOptimizationLevel ?? 'all' };
}

/**
 * A Backend over onnxruntime-web. onnxruntime-web keeps its wasm settings in one global `env` that is read when the
 * first session starts, so the first backend created in a page decides them; later ones reuse the loaded runtime.
 */
export function createOnnxruntimeWebBackend(options: WebBackendOptions = {}): Backend {
  const providers = options.executionProviders?.length ? options.executionProviders : (['wasm'] as const);
  return {
    name: providers.includes('webgpu') ? 'onnxruntime-web-webgpu' : 'onnxruntime-web',
    async createSession(model: Uint8Array, sessionOptions?: SessionOptions): Promise<Session> {
      const threads = options.numThreads ?? sessionOptions?.intraOpThreads ?? 1;
      ort.env.wasm.numThreads = threads;
      if (options.wasmPaths) ort.env.wasm.wasmPaths = options.wasmPaths;
      let session: ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(model, ortOptions(providers, sessionOptions));
      } catch (e) {
        throw new InferenceError('UNSUPPORTED', `onnxruntime-web could not load the model: ${messageOf(e)}`, { cause: e });
      }
      let inputs, outputs;
      try {
        inputs = tensorMetadataOf(session.inputMetadata, 'input');
        outputs = tensorMetadataOf(session.outputMetadata, 'output');
      } catch (e) {
        await session.release();
        throw e;
      }
      return {
        inputs,
        outputs,
        async run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
          const ortFeeds: Record<string, ort.Tensor> = {};
          for (const t of feeds) ortFeeds[t.name] = toOrtTensor(ort.Tensor, t);
          let result: ort.InferenceSession.ReturnType;
          try {
            result = await session.run(ortFeeds, outputNames as string[]);
          } catch (e) {
            throw new InferenceError('INFERENCE_FAILED', `onnxruntime-web failed to run the model: ${messageOf(e)}`, { cause: e });
          }
          return outputNames.map((n) => fromOrtTensor(n, result[n] as ort.Tensor));
        },
        async dispose() {
          await session.release();
        },
      };
    },
  };
}

// onnxruntime-web sometimes throws plain strings or numbers (wasm aborts) instead of Errors.
function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The default: plain SIMD WebAssembly on one thread. */
export const onnxruntimeWeb: Backend = createOnnxruntimeWebBackend();
