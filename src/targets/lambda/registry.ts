// The models inside a Lambda bundle. The build converted and checked every model already, so the function
// only reads ONNX bytes and opens sessions: no format code, no protobuf parser in the bundle.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InferenceError, type ModelEndpoint, type ModelMetadata, type ModelRegistry } from '../../core/index.ts';
import type { Backend, SessionOptions } from '../../runtime/backend.ts';
import { ServedModelVersion } from '../../runtime/served-model.ts';
import { ModelProcessing, type DecodeImage } from '../../runtime/processing.ts';
import { processingSpecOf } from '../../core/processing/spec.ts';
import { pathToFileURL } from 'node:url';

/** What the build writes into the bundle (as an esbuild define) to say which models it holds. */
export interface BundleManifest {
  models: { name: string; version: string; file: string; processing?: BundledProcessing }[];
}

/** A model's declared processing as the build copied it: config.yaml's keys, the labels, the tokenizer file. */
export interface BundledProcessing {
  preprocess?: unknown;
  postprocess?: unknown;
  labels?: string[];
  /** tokenizer.json, relative to the function's root. */
  tokenizer?: string;
  /** The image decoder's bundle (sharp, for preprocess.image), relative to the function's root. */
  imageDecoder?: string;
}

/**
 * The tokenizer library is bundled on its own (tokenizer.mjs, built only for functions whose models tokenize text),
 * so a function without text steps neither ships nor parses it. The path is a variable so esbuild leaves it alone.
 */
export const TOKENIZER_BUNDLE = 'tokenizer.mjs';
type TokenizerClass = typeof import('@huggingface/tokenizers').Tokenizer;
let tokenizerClass: Promise<TokenizerClass> | undefined;
function loadTokenizerClass(root: string): Promise<TokenizerClass> {
  tokenizerClass ??= import(pathToFileURL(join(root, TOKENIZER_BUNDLE)).href).then((m: { Tokenizer: TokenizerClass }) => m.Tokenizer);
  return tokenizerClass;
}

/**
 * sharp (libvips, ~20 MB of native code) is bundled apart too (image-decoder.mjs, with sharp in node_modules/): only a
 * function whose models declare preprocess.image ships it, and only such a model's load pays for loading it.
 */
export const IMAGE_DECODER_BUNDLE = 'image-decoder.mjs';
let imageDecoder: Promise<DecodeImage> | undefined;
function loadImageDecoder(root: string, file: string): Promise<DecodeImage> {
  imageDecoder ??= import(pathToFileURL(join(root, file)).href).then((m: { decodeImageWithSharp: DecodeImage }) => m.decodeImageWithSharp);
  return imageDecoder;
}

/** The same steps `dais serve` runs, bound from what the bundle carries. */
async function processingOf(root: string, p: BundledProcessing): Promise<(model: ModelMetadata) => ModelProcessing> {
  const problems: string[] = [];
  const spec = processingSpecOf(p.preprocess, p.postprocess, problems) ?? {};
  if (problems.length) throw new Error(`declared processing is not valid: ${problems.join('; ')}`);
  const tokenizer = p.tokenizer ? new (await loadTokenizerClass(root))(JSON.parse(readFileSync(join(root, p.tokenizer), 'utf8')), {}) : undefined;
  const decodeImage = spec.image && p.imageDecoder ? await loadImageDecoder(root, p.imageDecoder) : undefined;
  return (model) => new ModelProcessing(spec, model, { labels: p.labels, tokenizer, decodeImage });
}

export class BundledModels implements ModelRegistry {
  private constructor(private readonly models: Map<string, Map<string, ServedModelVersion>>) {}

  static async load(root: string, manifest: BundleManifest, backend: Backend, sessionOptions?: SessionOptions): Promise<BundledModels> {
    const models = new Map<string, Map<string, ServedModelVersion>>();
    const versionsOf = (name: string) => [...(models.get(name)?.keys() ?? [])].sort((a, b) => Number(a) - Number(b));
    for (const m of manifest.models) {
      const onnx = readFileSync(join(root, m.file));
      const processing = m.processing ? await processingOf(root, m.processing) : undefined;
      const model = await ServedModelVersion.load(onnx, { name: m.name, version: m.version, backend, sessionOptions, versions: () => versionsOf(m.name), processing });
      let versions = models.get(m.name);
      if (!versions) models.set(m.name, (versions = new Map()));
      versions.set(m.version, model);
    }
    return new BundledModels(models);
  }

  names(): string[] {
    return [...this.models.keys()].sort();
  }

  isReady(): boolean {
    return this.models.size > 0;
  }

  resolve(name: string, version?: string): ModelEndpoint {
    const versions = this.models.get(name);
    if (!versions) throw new InferenceError('MODEL_NOT_FOUND', `model '${name}' is not in this function; models: ${this.names().join(', ')}`);
    const all = [...versions.keys()].sort((a, b) => Number(a) - Number(b));
    const v = version ?? all[all.length - 1];
    const m = versions.get(v);
    if (!m) throw new InferenceError('VERSION_NOT_FOUND', `model '${name}' has no version '${version}'; versions: ${all.join(', ')}`);
    return m;
  }
}
