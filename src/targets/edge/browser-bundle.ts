// `--platform browser`: a static site holding the model, onnxruntime-web's WebAssembly runtime (the plain SIMD build,
// or the WebGPU build when asked), the SDK dais.js bundled from src/ with esbuild, a demo page and a README.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { DAIS_VERSION, requestFromJson, type ModelMetadata } from '../../core/index.ts';
import { ServedModelVersion } from '../../runtime/served-model.ts';
import { createOnnxruntimeWebBackend, ONNXRUNTIME_WEB_VERSION } from '../../runtime/onnxruntime-web.ts';
import type { BundleInfo } from './browser/sdk.ts';
import { listFiles, type BuiltFile } from './files.ts';
import { EdgeBuildError, zerosRequest, type EdgeModelSource, type SampleRequest } from './model-source.ts';
import { ZEROS_LADDER } from '../samples.ts';
import { browserReadme } from './readme.ts';
import { tokenizerPlugin, type DeclaredSteps } from './declared-steps.ts';
import { parseLabels } from '../../core/processing/postprocess.ts';

export { DAIS_VERSION };

export interface BrowserBuildOptions {
  source: EdgeModelSource;
  outDir: string;
  webgpu: boolean;
  threads: number;
  /** The result of checkBrowserModel when the caller already ran it. */
  check?: BrowserCheck;
}

export interface BrowserBuildReport {
  platform: 'browser';
  outDir: string;
  model: { name: string; version: string; metadata: ModelMetadata; notes: string[] };
  runtime: { onnxruntimeWeb: string; build: 'wasm-simd' | 'webgpu'; files: string[]; threads: number; crossOriginIsolationRequired: boolean };
  files: BuiltFile[];
  totalBytes: number;
  totalGzipBytes: number;
  /** gzip bytes the demo page downloads on first load (page, scripts, runtime, model, one sample). */
  pageLoadGzipBytes: number;
  /** The sample requests, run at build time on onnxruntime-web in Node. */
  checked: { request: string; ms: number }[];
}

const require = createRequire(import.meta.url);
const ORT_WEB_DIST = dirname(require.resolve('onnxruntime-web'));
const HERE = dirname(fileURLToPath(import.meta.url));

/** Which onnxruntime-web build goes into the bundle: its ES module (bundled into dais.js) and the files it loads. */
export function runtimeBuild(webgpu: boolean): { entry: string; files: string[] } {
  // The "extern wasm" builds load the emscripten glue (.mjs) and the binary (.wasm) beside dais.js at run time,
  // so threads can start their workers from the glue file and nothing is inlined twice.
  return webgpu
    ? { entry: join(ORT_WEB_DIST, 'ort.webgpu.min.mjs'), files: ['ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm'] }
    : { entry: join(ORT_WEB_DIST, 'ort.wasm.min.mjs'), files: ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'] };
}

/** Loads the model on onnxruntime-web here, in Node, and runs each sample: a model the browser cannot run fails the build, not the page. */
export interface BrowserCheck {
  metadata: ModelMetadata;
  /** The source's samples, or a zeros request when it had none. */
  samples: SampleRequest[];
  checked: BrowserBuildReport['checked'];
}

/**
 * Without sample requests, a request of zeros the model answers: dynamic dimensions at 1, else larger (a model that
 * pads or windows its input refuses a length of 1); refused with the way out when none is answered.
 */
async function answeredZeros(model: ServedModelVersion, metadata: ModelMetadata, path: string): Promise<SampleRequest> {
  let last = '';
  for (const k of ZEROS_LADDER) {
    const s = zerosRequest(metadata, k);
    try {
      await model.infer(requestFromJson(s.body));
      return s;
    } catch (e) {
      last = (e as Error).message;
    }
  }
  throw new EdgeBuildError(
    `${path}: the model answers no request of zeros on onnxruntime-web (every dynamic dimension ${ZEROS_LADDER.join(', ')}; last: ${last}); give it a real request: --request <file.json>`,
  );
}

export async function checkBrowserModel(source: EdgeModelSource): Promise<BrowserCheck> {
  let model: ServedModelVersion;
  try {
    model = await ServedModelVersion.load(source.onnx, { name: source.name, version: source.version, backend: createOnnxruntimeWebBackend() });
  } catch (e) {
    throw new EdgeBuildError(`${source.path}: onnxruntime-web ${ONNXRUNTIME_WEB_VERSION} (the browser runtime) cannot load this model: ${(e as Error).message}`);
  }
  try {
    const metadata = model.metadata();
    const samples = source.samples.length ? source.samples : [await answeredZeros(model, metadata, source.path)];
    const checked: BrowserBuildReport['checked'] = [];
    for (const s of samples) {
      const t0 = performance.now();
      try {
        await model.infer(requestFromJson(s.body));
      } catch (e) {
        throw new EdgeBuildError(`${source.path}: sample request ${s.file} failed on onnxruntime-web: ${(e as Error).message}`);
      }
      checked.push({ request: s.file, ms: performance.now() - t0 });
    }
    return { metadata, samples, checked };
  } finally {
    await model.dispose();
  }
}

async function bundleScripts(outDir: string, info: BundleInfo, runtimeEntry: string, withText: boolean): Promise<void> {
  const ortPlugin: esbuild.Plugin = {
    name: 'dais-onnxruntime-web',
    setup(build) {
      build.onResolve({ filter: /^onnxruntime-web$/ }, () => ({ path: runtimeEntry }));
    },
  };
  const common: esbuild.BuildOptions = {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'eof',
    logLevel: 'silent',
  };
  try {
    await esbuild.build({
      ...common,
      entryPoints: [join(HERE, 'browser', 'sdk.ts')],
      outfile: join(outDir, 'dais.js'),
      define: { DAIS_BUNDLE: JSON.stringify(info) },
      plugins: [ortPlugin, tokenizerPlugin(withText)],
    });
    // The demo imports the SDK the way a user's page would: as ./dais.js, not a second copy.
    await esbuild.build({
      ...common,
      entryPoints: [join(HERE, 'browser', 'demo.ts')],
      outfile: join(outDir, 'demo.js'),
      plugins: [
        {
          name: 'dais-sdk-external',
          setup(build) {
            build.onResolve({ filter: /\/sdk\.ts$/ }, () => ({ path: './dais.js', external: true }));
          },
        },
      ],
    });
  } catch (e) {
    throw new EdgeBuildError(`esbuild could not bundle the browser SDK: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The declared steps for BundleInfo; the tokenizer files (text steps only) are written beside dais.js. */
function bundledSteps(outDir: string, steps: DeclaredSteps): NonNullable<BundleInfo['processing']> {
  const p: NonNullable<BundleInfo['processing']> = {};
  if (steps.preprocess !== undefined) p.preprocess = steps.preprocess;
  if (steps.postprocess !== undefined) p.postprocess = steps.postprocess;
  if (steps.labels) p.labels = parseLabels(steps.labels.text);
  if (steps.tokenizer) {
    writeFileSync(join(outDir, 'tokenizer.json'), steps.tokenizer.json);
    p.tokenizer = 'tokenizer.json';
    if (steps.tokenizer.config !== undefined) {
      writeFileSync(join(outDir, 'tokenizer_config.json'), steps.tokenizer.config);
      p.tokenizerConfig = 'tokenizer_config.json';
    }
  }
  return p;
}

export function indexHtml(name: string): string {
  const title = `${name} · dais edge demo`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  fieldset { margin: .8rem 0; border: 1px solid #ccc; border-radius: 6px; }
  legend { font-family: ui-monospace, monospace; }
  textarea, input { font-family: ui-monospace, monospace; font-size: 13px; max-width: 100%; }
  table { border-collapse: collapse; margin-top: .6rem; }
  td, th { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
  td.data { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
  #error { color: #b00020; white-space: pre-wrap; }
  #latency { font-weight: 600; }
</style>
</head>
<body>
<h1>${name}</h1>
<p id="status">loading…</p>
<p><label>sample request <select id="sample"></select></label></p>
<form id="inputs" onsubmit="return false"></form>
<p><button id="run" type="button" disabled>Run in this page</button> <span id="latency"></span></p>
<div id="outputs"></div>
<p id="error" role="alert"></p>
<p><small>Runs entirely in the browser with onnxruntime-web. Use it from your own page:
<code>import { load } from './dais.js'; const model = await load(); const response = await model.infer(request);</code></small></p>
<script type="module" src="./demo.js"></script>
</body>
</html>
`;
}

export async function buildBrowserBundle(options: BrowserBuildOptions): Promise<BrowserBuildReport> {
  const { source, outDir, webgpu, threads } = options;
  const { metadata, samples, checked } = options.check ?? (await checkBrowserModel(source));

  mkdirSync(join(outDir, 'requests'), { recursive: true });
  writeFileSync(join(outDir, 'model.onnx'), source.onnx);
  for (const s of samples) writeFileSync(join(outDir, 'requests', s.file), `${JSON.stringify(s.body)}\n`);

  const runtime = runtimeBuild(webgpu);
  for (const f of runtime.files) copyFileSync(join(ORT_WEB_DIST, f), join(outDir, f));
  const info: BundleInfo = {
    name: source.name,
    version: source.version,
    model: 'model.onnx',
    webgpu,
    threads,
    requests: samples.map((s) => `requests/${s.file}`),
    builtBy: `dais ${DAIS_VERSION}, onnxruntime-web ${ONNXRUNTIME_WEB_VERSION}`,
  };
  if (source.steps) info.processing = bundledSteps(outDir, source.steps);
  await bundleScripts(outDir, info, runtime.entry, source.steps?.spec.text !== undefined);
  writeFileSync(join(outDir, 'index.html'), indexHtml(source.name));

  const report: BrowserBuildReport = {
    platform: 'browser',
    outDir,
    model: { name: source.name, version: source.version, metadata, notes: source.notes },
    runtime: { onnxruntimeWeb: ONNXRUNTIME_WEB_VERSION, build: webgpu ? 'webgpu' : 'wasm-simd', files: runtime.files, threads, crossOriginIsolationRequired: threads > 1 },
    files: [],
    totalBytes: 0,
    totalGzipBytes: 0,
    pageLoadGzipBytes: 0,
    checked,
  };
  // What the demo page fetches on first load; the README and the other samples are never downloaded by it.
  const fetched = new Set(['index.html', 'demo.js', 'dais.js', 'model.onnx', ...runtime.files, info.requests[0], info.processing?.tokenizer, info.processing?.tokenizerConfig]);
  const count = (files: BuiltFile[]) => {
    report.files = files;
    report.totalBytes = files.reduce((s, f) => s + f.bytes, 0);
    report.totalGzipBytes = files.reduce((s, f) => s + f.gzipBytes, 0);
    report.pageLoadGzipBytes = files.filter((f) => fetched.has(f.path)).reduce((s, f) => s + f.gzipBytes, 0);
  };
  count(listFiles(outDir, true));
  writeFileSync(join(outDir, 'README.md'), browserReadme(report, samples[0]));
  count(listFiles(outDir, true));
  return report;
}
