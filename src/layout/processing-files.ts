// Reads what a model's declared processing needs from its folder (tokenizer.json, labels file) and binds the
// steps to the Node platform (sharp for images).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelMetadata } from '../core/index.ts';
import { parseLabels } from '../core/processing/postprocess.ts';
import type { ProcessingSpec } from '../core/processing/spec.ts';
import { ModelProcessing, type ProcessingResources } from '../runtime/processing.ts';
import { createTokenizer } from '../runtime/tokenizer-hf.ts';

export const DEFAULT_LABELS_FILE = 'labels.txt';

/**
 * The files beside a model's config that its declared processing reads (labels, tokenizer.json and
 * tokenizer_config.json), relative to the model folder: what a build copies with the config so the built server
 * loads the model as `dais serve` does. Only files that exist are listed; a missing declared file is the load's error.
 */
export async function declaredProcessingFiles(modelDir: string, spec: ProcessingSpec | undefined): Promise<string[]> {
  const names = [spec?.post?.labels ?? DEFAULT_LABELS_FILE, ...(spec?.text ? [spec.text.tokenizer, 'tokenizer_config.json'] : [])];
  const found: string[] = [];
  for (const n of names) if (!found.includes(n) && (await stat(join(modelDir, n)).then((s) => s.isFile(), () => false))) found.push(n);
  return found;
}

/**
 * The processing factory for a model folder, or undefined when it declares nothing and has no labels file.
 * Throws (a load error naming the file) when a declared file is missing or unreadable.
 */
export async function processingFor(modelDir: string | undefined, spec: ProcessingSpec | undefined): Promise<((model: ModelMetadata) => ModelProcessing) | undefined> {
  const resources: ProcessingResources = {};
  if (modelDir) {
    const labelsFile = spec?.post?.labels;
    const text = await readFile(join(modelDir, labelsFile ?? DEFAULT_LABELS_FILE), 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (labelsFile) throw new Error(`postprocess.labels: cannot read ${join(modelDir, labelsFile)}: ${e.code ?? e.message}`);
      return undefined;
    });
    if (text !== undefined) resources.labels = parseLabels(text);
  }
  if (!spec && !resources.labels) return undefined;
  if (spec?.text) {
    if (!modelDir) throw new Error('preprocess.text needs a model folder holding the tokenizer file');
    const file = join(modelDir, spec.text.tokenizer);
    let json: object;
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw new Error(`preprocess.text.tokenizer: cannot read ${file}: ${(e as Error).message}`);
    }
    const configText = await readFile(join(modelDir, 'tokenizer_config.json'), 'utf8').catch(() => undefined);
    resources.tokenizer = createTokenizer(json, configText ? JSON.parse(configText) : {});
  }
  if (spec?.image) resources.decodeImage = await imageDecoder();
  return (model) => new ModelProcessing(spec ?? {}, model, resources);
}

/**
 * sharp, loaded as the first image model loads. A built server (container image, device bundle) ships it only when
 * a model it was built with declares an image step, so a model given to it later may find it missing: said by name.
 */
async function imageDecoder(): Promise<NonNullable<ProcessingResources['decodeImage']>> {
  try {
    return (await import('../runtime/image-decoder-sharp.ts')).decodeImageWithSharp;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if ((err.code !== 'MODULE_NOT_FOUND' && err.code !== 'ERR_MODULE_NOT_FOUND') || !/'sharp'/.test(err.message)) throw e;
    throw new Error(
      "preprocess.image needs sharp (the image decoder), which is not installed beside this server: a dais image or bundle ships it only when a model it was built with declares preprocess.image; rebuild it with this model (dais build <model> --target container or edge), or serve models that arrive at run time with the KServe runtime image (dais build --target kserve --image), which always has it",
    );
  }
}
