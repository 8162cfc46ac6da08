// Writes a Docker build context: Dockerfile, .dockerignore, package.json + lock (onnxruntime-node, and sharp when
// a model declares preprocess.image), app/server.mjs (the bundled server) and models/ (the model repository, Keras files converted to ONNX).
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { loadModelFile, formatOf } from '../../formats/index.ts';
import { externalDataFiles, mayHaveExternalData } from '../../formats/onnx/external-data.ts';
import { readOnnx } from '../../formats/onnx/onnx.ts';
import { checkModelLoads } from '../load-check.ts';
import { DAIS_VERSION as SERVER_VERSION } from '../../core/version.ts';
import { PROFILE_FILE, scanRepository, versionFolderOf, type ModelSource } from '../../layout/repository.ts';
import { CONFIG_FILE_NAMES, readModelConfig } from '../../layout/model-config.ts';
import { declaredProcessingFiles } from '../../layout/processing-files.ts';
import { bundleServer, DAIS_ROOT, IMAGE_DECODER_PACKAGE, RUNTIME_PACKAGES } from './bundle.ts';
import { generateDockerfile, generateDockerignore, SERVER_FILE } from './dockerfile.ts';
import { contextPackage, type PackageLock } from './lockfile.ts';
import { ORT_ARCH, type ImageArch } from './platform.ts';

/** Model-level files the server reads beside the versions (issue 3's per-model config). */
export const MODEL_CONFIG_FILES = CONFIG_FILE_NAMES;

export interface ContextOptions {
  /** A model file or a model repository folder. */
  model: string;
  out: string;
  arch: ImageArch;
  port: number;
  nodeImage: string;
  /** The server reads Keras files itself (h5wasm in the bundle): for an image whose models arrive at run time. */
  keras?: boolean;
  /** Ship the image decoder (sharp) even when no model here declares preprocess.image: models arrive at run time. */
  imageDecoder?: boolean;
}

export interface ContextModel {
  name: string;
  version: string;
  /** Path inside the context, e.g. models/digits/1/model.onnx. */
  file: string;
  source: string;
  convertedFrom?: string;
}

export interface BuildContext {
  dir: string;
  models: ContextModel[];
  /** Every file written, relative to dir, sorted. */
  files: string[];
  /** The packages package.json names (what node_modules holds beside the bundle), with their versions. */
  packages: Record<string, string>;
}

/**
 * The lock must hold sharp's prebuilt packages for the image's platform (npm ci installs the one matching the
 * machine that runs it); dais' lock normally has every platform's, as npm records optional dependencies.
 */
function checkImageDecoderLock(lock: PackageLock, arch: ImageArch, models: string[]): void {
  const platform = `linux-${ORT_ARCH[arch]}`;
  for (const name of [`@img/sharp-${platform}`, `@img/sharp-libvips-${platform}`]) {
    if (!lock.packages[`node_modules/${name}`]) {
      throw new Error(
        `${models.length === 0 ? 'the image decoder' : `${models.length === 1 ? 'model' : 'models'} ${models.join(', ')} ${models.length === 1 ? 'declares' : 'declare'} preprocess.image, which`} needs sharp's ${platform} binary (${name}), and dais' package-lock.json has no entry for it: run npm install in dais (it records every platform's sharp package)`,
      );
    }
  }
}

/** dais' own lock, which pins onnxruntime-node and its dependencies. */
export async function readDaisLock(): Promise<PackageLock> {
  return JSON.parse(await readFile(join(DAIS_ROOT, 'package-lock.json'), 'utf8')) as PackageLock;
}

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined)) !== undefined;
}

/**
 * The models a path holds. A single model's folder (<model>/<version>/model.onnx, given without its
 * repository) is read as that model, not as a repository whose models are named '1', '2', …
 */
export function scanModels(path: string): Promise<ModelSource[]> {
  return scanRepository(path);
}


/** The external data files an ONNX model names (relative to its folder); none for most models. */
async function externalDataOf(path: string): Promise<string[]> {
  const bytes = new Uint8Array(await readFile(path));
  return mayHaveExternalData(bytes) ? externalDataFiles(readOnnx(bytes, path)) : [];
}

export async function writeBuildContext(o: ContextOptions): Promise<BuildContext> {
  const sources = await scanModels(o.model);
  const files: string[] = [];
  const put = async (rel: string, data: string | Uint8Array) => {
    await mkdir(dirname(join(o.out, rel)), { recursive: true });
    await writeFile(join(o.out, rel), data);
    files.push(rel);
  };
  // Only the folders this builder owns are replaced, so a user's files beside them survive a rebuild.
  await mkdir(o.out, { recursive: true });
  for (const d of ['app', 'models']) await rm(join(o.out, d), { recursive: true, force: true });

  const models: ContextModel[] = [];
  const imageModels: string[] = [];
  const configsCopied = new Set<string>();
  for (const src of sources) {
    const rel = `models/${src.name}/${src.version}/model.onnx`;
    // Opened once in onnxruntime-node here: a model the image's runtime cannot run is refused now, not at start.
    const loaded = await loadModelFile(src.path);
    await checkModelLoads(loaded.onnx, `${src.name} v${src.version} (${src.path})`, 'container image');
    if (formatOf(src.path) === 'onnx') {
      await mkdir(dirname(join(o.out, rel)), { recursive: true });
      await copyFile(src.path, join(o.out, rel));
      files.push(rel);
      // External data files go beside the model, where the server reads them from.
      for (const f of await externalDataOf(src.path)) await put(`models/${src.name}/${src.version}/${f.split(sep).join('/')}`, await readFile(join(dirname(src.path), f)));
      models.push({ name: src.name, version: src.version, file: rel, source: src.path });
    } else {
      // Converted once here, so the image needs no Keras importer (h5wasm) and starts faster.
      await put(rel, loaded.onnx);
      models.push({ name: src.name, version: src.version, file: rel, source: src.path, convertedFrom: loaded.format });
    }
    // The drift profile (dais profile) sits beside the model file: without it the container's monitoring is off.
    const profile = join(dirname(src.path), PROFILE_FILE);
    if (await exists(profile)) await put(`models/${src.name}/${src.version}/${PROFILE_FILE}`, await readFile(profile));
    // A repository's per-model config sits in <repo>/<model>/ (beside the version folders); a single file has none.
    const versioned = versionFolderOf(src.path);
    if (!configsCopied.has(src.name) && versioned) {
      configsCopied.add(src.name);
      for (const c of MODEL_CONFIG_FILES) {
        const p = join(versioned.modelDir, c);
        if (await exists(p)) await put(`models/${src.name}/${c}`, await readFile(p));
      }
      // And what its declared steps read (labels, tokenizer), which the config names relative to itself.
      const spec = (await readModelConfig(versioned.modelDir))?.config.processing;
      if (spec?.image) imageModels.push(src.name);
      for (const f of await declaredProcessingFiles(versioned.modelDir, spec)) await put(`models/${src.name}/${f}`, await readFile(join(versioned.modelDir, f)));
    }
  }

  const lock = await readDaisLock();
  const imageDecoder = o.imageDecoder || imageModels.length > 0;
  if (imageDecoder) checkImageDecoderLock(lock, o.arch, imageModels);
  const pkg = contextPackage(lock, imageDecoder ? [...RUNTIME_PACKAGES, IMAGE_DECODER_PACKAGE] : RUNTIME_PACKAGES, {
    name: 'dais-model-server',
    version: SERVER_VERSION,
    description: `dais ${SERVER_VERSION} serving ${[...new Set(models.map((m) => m.name))].join(', ')} over the Open Inference Protocol (v2)`,
  });
  await put('package.json', JSON.stringify(pkg.packageJson, null, 2) + '\n');
  await put('package-lock.json', JSON.stringify(pkg.lock, null, 2) + '\n');
  const bundle = await bundleServer({ keras: o.keras });
  await put(`app/${SERVER_FILE}`, bundle.code);
  for (const a of bundle.assets) await put(`app/${a.name}`, await readFile(a.source));
  await put(
    'Dockerfile',
    generateDockerfile({ nodeImage: o.nodeImage, arch: o.arch, port: o.port, daisVersion: SERVER_VERSION, models: [...new Set(models.map((m) => m.name))], imageDecoder }),
  );
  await put('.dockerignore', generateDockerignore());
  return { dir: o.out, models, files: files.sort(), packages: pkg.packageJson.dependencies };
}
