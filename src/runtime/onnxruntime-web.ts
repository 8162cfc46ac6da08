// onnxruntime-web (WebAssembly, optionally WebGPU) as a dais Backend. The same file runs in Node (tests, the edge
// build's checks, benchmarks) and in browsers: the edge bundler points the 'onnxruntime-web' import at the build
// it ships (plain SIMD wasm, or the WebGPU build), so nothing here knows which one it got.
import * as ort from 'onnxruntime-web';
import type { Backend, Session, SessionOptions } from './backend.ts';
import { sessionOf } from './ort-tensors.ts';

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
      return sessionOf(ort.Tensor, () => ort.InferenceSession.create(model, ortOptions(providers, sessionOptions)), 'onnxruntime-web');
    },
  };
}

/** The default: plain SIMD WebAssembly on one thread. */
export const onnxruntimeWeb: Backend = createOnnxruntimeWebBackend();
