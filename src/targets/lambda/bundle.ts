// `dais build --target lambda`: the models (converted to ONNX at build time), the handler bundled and minified
// by esbuild, and onnxruntime's native binding for one architecture only → function/ and function.zip,
// checked against Lambda's limits, with template.yaml and a Dockerfile beside them.
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import yazl from 'yazl';
import { loadModelFile } from '../../formats/index.ts';
import { serverMetadata } from '../../core/version.ts';
import { isVersionFolder, scanRepository, versionFolderOf, type ModelSource } from '../../layout/repository.ts';
import { checkModelLoads } from '../load-check.ts';
import { sampleRequests, zerosRequest } from '../samples.ts';
import { checkInit, sampleEvent, type InitCheck, type SampleEvent } from './init-check.ts';
import { checkImagePackage, checkZipPackage } from './limits.ts';
import { IMAGE_DECODER_BUNDLE, TOKENIZER_BUNDLE, type BundledProcessing, type BundleManifest } from './registry.ts';
import { copySharp } from '../sharp-package.ts';
import { parse as parseYaml } from 'yaml';
import { parseLabels } from '../../core/processing/postprocess.ts';
import { readModelConfig } from '../../layout/model-config.ts';
import { DEFAULT_LABELS_FILE } from '../../layout/processing-files.ts';
import { dockerfile, samTemplate, type DeployOptions, type LambdaArch, type LambdaRuntime } from './sam.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const ENTRY_FILE = join(here, 'entry.ts');
/** OpenTelemetry tracing, bundled on its own (tracing.mjs): index.mjs imports it only when OTEL_* turns tracing on. */
export const TRACING_FILE = join(here, '..', '..', 'node', 'tracing.ts');
export const TRACING_BUNDLE = 'tracing.mjs';
const TOKENIZER_FILE = join(here, 'tokenizer-entry.ts');
/** sharp's decoder, bundled on its own (image-decoder.mjs) with sharp itself left to function/node_modules. */
const IMAGE_DECODER_FILE = join(here, '..', '..', 'runtime', 'image-decoder-sharp.ts');
/** Written beside function/ so `dais invoke` knows the arch, memory and models a bundle was built with. */
export const BUILD_INFO_FILE = 'dais-lambda.json';
/** The protocol extensions a Lambda function serves (its handler has no repository or statistics routes). */
export const LAMBDA_EXTENSIONS = ['binary_tensor_data', 'model_configuration'];
/** Where the native binding sits inside the function, relative to index.mjs. */
const BINDING_DIR = 'onnxruntime';
/** Fixed zip timestamps, so the same inputs give the same function.zip (and the same CodeSha256). */
const ZIP_MTIME = new Date('2000-01-01T00:00:00Z');

export interface LambdaBuildOptions {
  /** A model file or a model repository folder. */
  model: string;
  out: string;
  /** The model's name when building one model (default: from the folder or file name). */
  name?: string;
  arch: LambdaArch;
  runtime: LambdaRuntime;
  memoryMb: number;
  timeoutS: number;
  packageType: 'zip' | 'image';
  urlAuth: 'AWS_IAM' | 'NONE';
  provisioned?: number;
  reserved?: number;
  keepWarmMinutes?: number;
  /** Skip the 50 MB direct-upload check (the zip is deployed through S3). */
  viaS3?: boolean;
  /** Minify the handler (default true): less JavaScript to parse in every cold start. */
  minify?: boolean;
  /** Open sessions on the first invocation instead of during INIT (default false). */
  lazy?: boolean;
  /** Run each model once on zeros during INIT, so the first caller does not pay for the first run (default true). */
  warmup?: boolean;
  onProgress?: (line: string) => void;
  /** Measure one cold start with the sample requests after building (default true). */
  initCheck?: boolean;
  /** Refuse (throw) instead of reporting when the measured cold start passes a limit. */
  strict?: boolean;
}

export interface LambdaBuildResult {
  out: string;
  functionDir: string;
  zipPath?: string;
  models: { name: string; version: string; source: string; bytes: number; notes: string[] }[];
  sizes: {
    handlerBytes: number;
    runtimeBytes: number;
    modelBytes: number;
    /** What declared processing adds: tokenizer.mjs, image-decoder.mjs and sharp with libvips in node_modules/. */
    processingBytes: number;
    unzippedBytes: number;
    zipBytes?: number;
  };
  onnxruntime: { version: string; platform: string; arch: string };
  files: string[];
  /** One cold start measured in the emulator (absent with initCheck: false). */
  initCheck?: InitCheck;
}

export interface BuildInfo {
  arch: LambdaArch;
  runtime: LambdaRuntime;
  memoryMb: number;
  timeoutS: number;
  packageType: 'zip' | 'image';
  minified: boolean;
  lazy: boolean;
  warmup: boolean;
  models: { name: string; version: string }[];
  sizes: LambdaBuildResult['sizes'];
}

/**
 * The models to bundle. A single model's folder (<name>/<version>/model.onnx) or file inside such a folder
 * takes its name from the folder; anything else is read as a repository.
 */
export async function resolveModels(path: string, name?: string): Promise<ModelSource[]> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new Error(`no such file or directory: ${path}`);
  const abs = resolve(path);
  if (st.isFile()) {
    const versioned = versionFolderOf(abs);
    return [{ name: name ?? versioned?.name ?? (await scanRepository(abs))[0].name, version: versioned?.version ?? '1', path: abs }];
  }
  if (isVersionFolder(basename(abs))) {
    // A version folder: <name>/<version>/model.onnx.
    const [src] = await scanRepository(abs);
    return [{ name: name ?? basename(dirname(abs)), version: basename(abs), path: src.path }];
  }
  const entries = await readdir(abs, { withFileTypes: true });
  if (entries.some((e) => e.isDirectory() && isVersionFolder(e.name))) {
    // One model's folder (<name>/<version>/...): its siblings (requests/, samples/) are not models.
    const sources = (await scanRepository(dirname(abs))).filter((s) => s.name === basename(abs));
    if (sources.length) return sources.map((s) => ({ ...s, name: name ?? s.name }));
  }
  const sources = await scanRepository(abs);
  if (name !== undefined && new Set(sources.map((s) => s.name)).size > 1) {
    throw new Error(`--name applies to one model, but ${path} holds ${new Set(sources.map((s) => s.name)).size}: drop --name`);
  }
  return sources.map((s) => ({ ...s, name: name ?? s.name }));
}

function hostArch(arch: LambdaArch): 'x64' | 'arm64' {
  return arch === 'x86_64' ? 'x64' : 'arm64';
}

/** onnxruntime-node's Linux binding for one architecture: the N-API addon and the shared library it links. */
export async function onnxruntimeBinaries(arch: LambdaArch): Promise<{ dir: string; files: string[]; version: string }> {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('onnxruntime-node/package.json');
  const pkg = require(pkgJson) as { version: string };
  const bin = join(dirname(pkgJson), 'bin');
  const napi = (await readdir(bin).catch(() => [] as string[])).filter((d) => /^napi-v\d+$/.test(d)).sort((a, b) => Number(b.slice(6)) - Number(a.slice(6)));
  for (const v of napi) {
    const dir = join(bin, v, 'linux', hostArch(arch));
    const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.node') || /\.so(\.\d+)*$/.test(f));
    if (files.includes('onnxruntime_binding.node')) return { dir, files: files.sort(), version: pkg.version };
  }
  throw new Error(`onnxruntime-node ${pkg.version} has no Linux ${hostArch(arch)} binding under ${bin}: reinstall it (npm ci)`);
}

/**
 * onnxruntime-node finds its addon with a require built from process.platform and process.arch, relative to
 * its own dist/ folder. In the bundle that folder is gone, so the require is pointed at the one binding the
 * build copies beside index.mjs; the addon finds libonnxruntime.so.1 through its $ORIGIN run path.
 */
const ortBindingPlugin: esbuild.Plugin = {
  name: 'dais-onnxruntime-binding',
  setup(build) {
    build.onLoad({ filter: /onnxruntime-node[\\/]dist[\\/]binding\.js$/ }, async (args) => {
      const { readFile } = await import('node:fs/promises');
      const source = await readFile(args.path, 'utf8');
      const pattern = /require\(`\.\.\/bin\/napi-v\d+\/\$\{process\.platform\}\/\$\{process\.arch\}\/onnxruntime_binding\.node`\)/;
      if (!pattern.test(source)) {
        return { errors: [{ text: `${args.path} no longer loads its binding the way dais expects; the Lambda bundler needs updating for this onnxruntime-node version` }] };
      }
      return { contents: source.replace(pattern, `require("./${BINDING_DIR}/onnxruntime_binding.node")`), loader: 'js' };
    });
    build.onResolve({ filter: /\.node$/ }, (args) => ({ path: args.path, external: true }));
  },
};

/**
 * Copies what a model's declared processing needs (labels, tokenizer.json) into the function and returns its
 * manifest entry. An image step's decoder (sharp) is copied once for the whole function, by the caller.
 */
async function bundledProcessing(src: { name: string; modelDir?: string }, functionDir: string): Promise<BundledProcessing | undefined> {
  if (!src.modelDir) return undefined;
  const found = await readModelConfig(src.modelDir);
  const spec = found?.config.processing;
  const labelsText = await readFile(join(src.modelDir, spec?.post?.labels ?? DEFAULT_LABELS_FILE), 'utf8').catch(() => undefined);
  if (!spec && labelsText === undefined) return undefined;
  const raw = found ? (parseYaml(found.text) as Record<string, unknown>) : {};
  const out: BundledProcessing = {};
  if (raw.preprocess !== undefined) out.preprocess = raw.preprocess;
  if (raw.postprocess !== undefined) out.postprocess = raw.postprocess;
  if (labelsText !== undefined) out.labels = parseLabels(labelsText);
  if (spec?.text) {
    const rel = `models/${src.name}/tokenizer.json`;
    await mkdir(dirname(join(functionDir, rel)), { recursive: true });
    await copyFile(join(src.modelDir, spec.text.tokenizer), join(functionDir, rel));
    out.tokenizer = rel;
  }
  if (spec?.image) out.imageDecoder = IMAGE_DECODER_BUNDLE;
  return out;
}

async function bundleHandler(outfile: string, manifest: BundleManifest, minify: boolean, lazy: boolean, warmup: boolean): Promise<void> {
  await esbuild.build({
    entryPoints: [ENTRY_FILE],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify,
    legalComments: minify ? 'none' : 'inline',
    // ESM has no require; onnxruntime-node's CommonJS needs one to load its native addon.
    banner: { js: "import{createRequire as __daisRequire}from'node:module';const require=__daisRequire(import.meta.url);" },
    define: {
      __DAIS_MANIFEST__: JSON.stringify(manifest),
      // Only what the function serves: the repository and statistics extensions belong to `dais serve`.
      __DAIS_SERVER__: JSON.stringify({ ...serverMetadata(), extensions: LAMBDA_EXTENSIONS }),
      __DAIS_LAZY__: JSON.stringify(lazy),
      __DAIS_WARMUP__: JSON.stringify(warmup),
    },
    plugins: [ortBindingPlugin],
    logLevel: 'silent',
  });
}

async function sizeOf(path: string): Promise<number> {
  const st = await stat(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of await readdir(path)) total += await sizeOf(join(path, e));
  return total;
}

/** The total size of those of `names` that exist under `dir`. */
async function sizesOf(dir: string, names: readonly string[]): Promise<number> {
  let total = 0;
  for (const n of names) total += await sizeOf(join(dir, n)).catch(() => 0);
  return total;
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out;
}

/** Zips a folder with fixed timestamps and world-readable modes (Lambda reads the files as another user). */
export async function zipDirectory(dir: string, zipPath: string): Promise<number> {
  const zip = new yazl.ZipFile();
  for (const f of await listFiles(dir)) zip.addFile(join(dir, f), f, { mtime: ZIP_MTIME, mode: 0o100644, compress: true });
  zip.end();
  await new Promise<void>((resolveDone, reject) => {
    const out = createWriteStream(zipPath);
    zip.outputStream.on('error', reject).pipe(out).on('error', reject).on('close', () => resolveDone());
  });
  return (await stat(zipPath)).size;
}

export async function buildLambda(options: LambdaBuildOptions): Promise<LambdaBuildResult> {
  const progress = options.onProgress ?? (() => {});
  const out = resolve(options.out);
  const functionDir = join(out, 'function');
  const sources = await resolveModels(options.model, options.name);

  await rm(functionDir, { recursive: true, force: true });
  await rm(join(out, 'function.zip'), { force: true });
  await mkdir(functionDir, { recursive: true });

  const manifest: BundleManifest = { models: [] };
  const samples: SampleEvent[] = [];
  const models: LambdaBuildResult['models'] = [];
  const imageModels: string[] = [];
  for (const src of sources) {
    // Conversion (Keras → ONNX) and rewrites (ZipMap) happen here, once, not in every cold start.
    const file = await loadModelFile(src.path);
    // A model onnxruntime cannot open is refused here, not at INIT (external data is already read into it).
    const hasSamples = (await sampleRequests(src.path)).length > 0;
    const { inputs, zerosSize } = await checkModelLoads(file.onnx, `${src.name} v${src.version} (${src.path})`, 'Lambda function', !hasSamples && (options.initCheck ?? true));
    if (!samples.some((s) => s.model === src.name)) samples.push(await sampleEvent(src.name, src.path, () => zerosRequest(inputs, zerosSize), zerosSize));
    const rel = `models/${src.name}/${src.version}/model.onnx`;
    await mkdir(dirname(join(functionDir, rel)), { recursive: true });
    await writeFile(join(functionDir, rel), file.onnx);
    const processing = await bundledProcessing(src, functionDir);
    if (processing?.imageDecoder && !imageModels.includes(src.name)) imageModels.push(src.name);
    manifest.models.push({ name: src.name, version: src.version, file: rel, ...(processing ? { processing } : {}) });
    models.push({ name: src.name, version: src.version, source: src.path, bytes: file.onnx.byteLength, notes: file.notes });
    progress(`model ${src.name} v${src.version}: ${src.path} (${file.onnx.byteLength} bytes)`);
  }

  const minify = options.minify ?? true;
  const lazy = options.lazy ?? false;
  // Lazy loading opens the session inside the first invocation, where a warm-up run would only add to it.
  const warmup = (options.warmup ?? true) && !lazy;
  await bundleHandler(join(functionDir, 'index.mjs'), manifest, minify, lazy, warmup);
  const apart = { bundle: true, platform: 'node', format: 'esm', target: 'node20', minify, legalComments: minify ? 'none' : 'inline', logLevel: 'silent' } as const;
  await esbuild.build({ ...apart, entryPoints: [TRACING_FILE], outfile: join(functionDir, TRACING_BUNDLE) });
  if (manifest.models.some((m) => m.processing?.tokenizer)) await esbuild.build({ ...apart, entryPoints: [TOKENIZER_FILE], outfile: join(functionDir, TOKENIZER_BUNDLE) });
  let sharpVersion: string | undefined;
  if (imageModels.length) {
    // The same decoder as `dais serve`: sharp with its prebuilt libvips for the function's architecture, loaded
    // from node_modules by image-decoder.mjs, which the handler imports only for a model with an image step.
    sharpVersion = copySharp(join(functionDir, 'node_modules'), `linux-${hostArch(options.arch)}`, (m) => new Error(`model '${imageModels[0]}': ${m}`));
    await esbuild.build({ ...apart, entryPoints: [IMAGE_DECODER_FILE], outfile: join(functionDir, IMAGE_DECODER_BUNDLE), external: ['sharp'] });
    progress(`sharp ${sharpVersion} (linux ${hostArch(options.arch)}) for preprocess.image of ${imageModels.join(', ')}`);
  }

  const ort = await onnxruntimeBinaries(options.arch);
  await mkdir(join(functionDir, BINDING_DIR));
  for (const f of ort.files) await copyFile(join(ort.dir, f), join(functionDir, BINDING_DIR, f));

  const sizes: LambdaBuildResult['sizes'] = {
    handlerBytes: await sizeOf(join(functionDir, 'index.mjs')),
    runtimeBytes: await sizeOf(join(functionDir, BINDING_DIR)),
    modelBytes: await sizeOf(join(functionDir, 'models')),
    processingBytes: await sizesOf(functionDir, [TOKENIZER_BUNDLE, IMAGE_DECODER_BUNDLE, 'node_modules']),
    unzippedBytes: await sizeOf(functionDir),
  };

  let zipPath: string | undefined;
  if (options.packageType === 'zip') {
    // The unzipped limit is checked before spending time on compression.
    checkZipPackage(sizes, options.viaS3 ?? false);
    zipPath = join(out, 'function.zip');
    sizes.zipBytes = await zipDirectory(functionDir, zipPath);
    try {
      checkZipPackage(sizes, options.viaS3 ?? false);
    } catch (e) {
      await rm(zipPath, { force: true });
      throw e;
    }
  } else {
    checkImagePackage(sizes);
  }

  const deploy: DeployOptions = {
    models: [...new Set(sources.map((s) => s.name))],
    arch: options.arch,
    runtime: options.runtime,
    memoryMb: options.memoryMb,
    timeoutS: options.timeoutS,
    packageType: options.packageType,
    urlAuth: options.urlAuth,
    provisioned: options.provisioned,
    reserved: options.reserved,
    keepWarmMinutes: options.keepWarmMinutes,
  };
  await writeFile(join(out, 'template.yaml'), samTemplate(deploy));
  await writeFile(join(out, 'Dockerfile'), dockerfile(deploy));
  const info: BuildInfo = {
    arch: options.arch,
    runtime: options.runtime,
    memoryMb: options.memoryMb,
    timeoutS: options.timeoutS,
    packageType: options.packageType,
    minified: minify,
    lazy,
    warmup,
    models: sources.map((s) => ({ name: s.name, version: s.version })),
    sizes,
  };
  await writeFile(join(out, BUILD_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);

  let initCheck: InitCheck | undefined;
  if (options.initCheck ?? true) {
    progress('measuring one cold start with the sample requests (dais invoke)');
    initCheck = await checkInit(functionDir, samples, { memoryMb: options.memoryMb, timeoutS: options.timeoutS, lazy });
    if (options.strict && initCheck.problems.length) {
      // Refused: nothing deployable is left behind.
      if (zipPath) await rm(zipPath, { force: true });
      throw new Error(`--strict: ${initCheck.problems.join('; ')}`);
    }
  }

  const files = [...(await listFiles(functionDir)).map((f) => `function/${f}`), ...(zipPath ? ['function.zip'] : []), 'template.yaml', 'Dockerfile', BUILD_INFO_FILE];
  return {
    out,
    functionDir,
    zipPath,
    models,
    sizes,
    onnxruntime: { version: ort.version, platform: 'linux', arch: hostArch(options.arch) },
    files: files.map((f) => relative(out, join(out, f))),
    initCheck,
  };
}
