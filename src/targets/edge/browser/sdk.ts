// The browser SDK, bundled as dais.js: `const model = await load(); const response = await model.infer(request)`,
// where request and response are the v2 JSON objects the REST API takes and returns, so client code moves between
// the server and the page unchanged. Decoding, validation and errors are the server's own (src/core).
import { InferenceError, requestFromJson, toJsonData, type InferenceRequest, type ModelMetadata, type Parameters } from '../../../core/index.ts';
import { ServedModelVersion } from '../../../runtime/served-model.ts';
import { ModelProcessing, type TextTokenizer } from '../../../runtime/processing.ts';
import { processingSpecOf, type ProcessingSpec } from '../../../core/processing/spec.ts';
import { fileKindOf, fileRequest, processingOf } from '../../../core/processing/file-request.ts';
import { decodeImageInBrowser } from './image-decoder.ts';
import { createTokenizer } from '../../../runtime/tokenizer-hf.ts';
import { createOnnxruntimeWebBackend, ONNXRUNTIME_WEB_VERSION } from '../../../runtime/onnxruntime-web.ts';

/** What the edge build wrote into this bundle (esbuild replaces DAIS_BUNDLE with the literal). */
export interface BundleInfo {
  name: string;
  version: string;
  /** The model file, relative to dais.js. */
  model: string;
  /** True when the bundle ships onnxruntime-web's WebGPU build (WebGPU first, wasm where it is missing). */
  webgpu: boolean;
  /** WebAssembly threads asked for at build time; more than 1 needs a cross-origin-isolated page. */
  threads: number;
  /**
   * The model's declared processing (config.yaml `preprocess`/`postprocess`) and labels, when it has them; with
   * preprocess.text, the tokenizer.json (and tokenizer_config.json) beside dais.js.
   */
  processing?: { preprocess?: unknown; postprocess?: unknown; labels?: string[]; tokenizer?: string; tokenizerConfig?: string };
  /** Sample requests shipped with the bundle, relative to dais.js. */
  requests: string[];
  builtBy: string;
}

declare const DAIS_BUNDLE: BundleInfo;

export const bundle: BundleInfo = DAIS_BUNDLE;

export interface LoadOptions {
  /** Another model file (URL, or path relative to dais.js) with the same runtime. */
  modelUrl?: string;
  /** Override the build's choice: false keeps to wasm in a WebGPU bundle. */
  webgpu?: boolean;
  /** WebAssembly threads; capped to 1 when the page is not cross-origin isolated. */
  threads?: number;
  /** Declared steps for this page (they replace the bundle's): config.yaml's `preprocess`/`postprocess` and labels. */
  processing?: BundleInfo['processing'];
  /** preprocess.text's tokenizer: e.g. `new Tokenizer(tokenizerJson, {})` from @huggingface/tokenizers. */
  tokenizer?: TextTokenizer;
}

/** A v2 infer response as JSON (what POST /v2/models/{name}/infer returns). */
export interface JsonInferenceResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: { name: string; datatype: string; shape: number[]; parameters?: Parameters; data: unknown[] }[];
}

export interface RuntimeInfo {
  backend: string;
  onnxruntimeWeb: string;
  executionProviders: string[];
  threads: number;
  crossOriginIsolated: boolean;
  /** Milliseconds from load() to a ready session (model download included). */
  loadMs: number;
}

export interface EdgeModel {
  readonly name: string;
  readonly version: string;
  readonly runtime: RuntimeInfo;
  /** The model's v2 metadata (what GET /v2/models/{name} returns). */
  metadata(): ModelMetadata;
  /**
   * Runs a v2 JSON infer request, or a file (Blob/File: an image or WAV) or a text through the model's declared
   * steps, answered like the server's bare-file form (top-k classification strings, or the embedding). Bad input
   * rejects with an InferenceError naming the field (its `code` and `status` are the REST API's).
   */
  infer(request: unknown): Promise<JsonInferenceResponse>;
  dispose(): Promise<void>;
}

export { InferenceError };

const here = new URL('./', import.meta.url).href;

function isolated(): boolean {
  return (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
}

/** WebGPU is usable only when an adapter is granted: headless and blocklisted GPUs expose navigator.gpu but give none. */
async function hasWebGpu(): Promise<boolean> {
  const gpu = typeof navigator === 'undefined' ? undefined : (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

export async function load(options: LoadOptions = {}): Promise<EdgeModel> {
  const started = performance.now();
  const wantGpu = (options.webgpu ?? bundle.webgpu) && bundle.webgpu && (await hasWebGpu());
  const asked = options.threads ?? bundle.threads;
  // Without cross-origin isolation there is no SharedArrayBuffer: one thread, and no warning from the runtime.
  const threads = isolated() ? Math.max(1, asked) : 1;
  const executionProviders: ('wasm' | 'webgpu')[] = wantGpu ? ['webgpu', 'wasm'] : ['wasm'];
  const backend = createOnnxruntimeWebBackend({ executionProviders, numThreads: threads, wasmPaths: here });
  const url = new URL(options.modelUrl ?? bundle.model, here);
  const res = await fetch(url);
  if (!res.ok) throw new InferenceError('MODEL_NOT_READY', `could not download the model from ${url.href}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const declared = options.processing ?? bundle.processing;
  let processing: ((m: ModelMetadata) => ModelProcessing) | undefined;
  if (declared) {
    const problems: string[] = [];
    const spec: ProcessingSpec = processingSpecOf(declared.preprocess, declared.postprocess, problems) ?? {};
    if (problems.length) throw new InferenceError('INVALID_REQUEST', `the declared processing is not valid: ${problems.join('; ')}`);
    const tokenizer = options.tokenizer ?? (spec.text && declared.tokenizer ? await bundledTokenizer(declared.tokenizer, declared.tokenizerConfig) : undefined);
    processing = (m) => new ModelProcessing(spec, m, { labels: declared.labels, tokenizer, decodeImage: decodeImageInBrowser });
  }
  const model = await ServedModelVersion.load(bytes, { name: bundle.name, version: bundle.version, backend, processing });
  const runtime: RuntimeInfo = {
    backend: backend.name,
    onnxruntimeWeb: ONNXRUNTIME_WEB_VERSION,
    executionProviders,
    threads,
    crossOriginIsolated: isolated(),
    loadMs: performance.now() - started,
  };
  return {
    name: model.name,
    version: model.version,
    runtime,
    metadata: () => model.metadata(),
    async infer(request: unknown): Promise<JsonInferenceResponse> {
      const response = await model.infer(await requestOf(model.metadata(), request));
      // Keys in the REST encoder's order, so a response prints the same from either side.
      const out = { model_name: response.model_name, model_version: response.model_version } as JsonInferenceResponse;
      if (response.id !== undefined) out.id = response.id;
      if (response.parameters) out.parameters = response.parameters;
      out.outputs = response.outputs.map((t) => {
        const o = { name: t.name, datatype: t.datatype, shape: t.shape } as JsonInferenceResponse['outputs'][number];
        if (t.parameters) o.parameters = t.parameters;
        o.data = toJsonData(t);
        return o;
      });
      return out;
    },
    dispose: () => model.dispose(),
  };
}

const textEncoder = new TextEncoder();

async function fetchJson(file: string): Promise<object> {
  const url = new URL(file, here);
  const res = await fetch(url);
  if (!res.ok) throw new InferenceError('MODEL_NOT_READY', `could not download ${url.href}: HTTP ${res.status}`);
  return (await res.json()) as object;
}

/** The tokenizer the build put beside dais.js for preprocess.text. */
async function bundledTokenizer(file: string, configFile: string | undefined): Promise<TextTokenizer> {
  return createTokenizer(await fetchJson(file), configFile ? await fetchJson(configFile) : {});
}

/** A Blob/File or a string becomes the request the server's bare-file form would make; anything else is v2 JSON. */
async function requestOf(meta: ModelMetadata, request: unknown): Promise<InferenceRequest> {
  if (typeof request === 'string') return fileRequest(meta, 'text', textEncoder.encode(request));
  if (typeof Blob === 'undefined' || !(request instanceof Blob)) return requestFromJson(request);
  // A Blob without a type (e.g. from fetch) is taken for what the model reads.
  const kind = fileKindOf(request.type) ?? (processingOf(meta)?.input?.kind === 'audio' ? 'audio' : 'image');
  return fileRequest(meta, kind, new Uint8Array(await request.arrayBuffer()));
}
