// The declared pre/post-processing of a model folder (config.yaml `preprocess`/`postprocess`) and the files the
// steps read (labels file, tokenizer.json), for the edge bundles: they carry these and nothing the steps do not need.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as esbuild from 'esbuild';
import { parse as parseYaml } from 'yaml';
import type { ProcessingSpec } from '../../core/processing/spec.ts';
import { readModelConfig } from '../../layout/model-config.ts';
import { DEFAULT_LABELS_FILE } from '../../layout/processing-files.ts';

export interface DeclaredSteps {
  /** config.yaml's `preprocess` and `postprocess` as written (the bundles validate them again when they load). */
  preprocess?: unknown;
  postprocess?: unknown;
  spec: ProcessingSpec;
  /** The labels file's text, when the model has one. */
  labels?: { file: string; text: string };
  /** tokenizer.json (and tokenizer_config.json, when present), only for preprocess.text. */
  tokenizer?: { file: string; json: string; config?: string };
}

/** Undefined when the folder declares no steps and has no labels file; throws an Error naming what is missing. */
export async function declaredStepsIn(modelDir: string): Promise<DeclaredSteps | undefined> {
  const found = await readModelConfig(modelDir);
  const spec = found?.config.processing ?? {};
  const raw = found ? (parseYaml(found.text) as Record<string, unknown>) : {};
  const steps: DeclaredSteps = { spec };
  if (raw.preprocess !== undefined) steps.preprocess = raw.preprocess;
  if (raw.postprocess !== undefined) steps.postprocess = raw.postprocess;
  const labelsFile = spec.post?.labels ?? DEFAULT_LABELS_FILE;
  if (existsSync(join(modelDir, labelsFile))) steps.labels = { file: labelsFile, text: readFileSync(join(modelDir, labelsFile), 'utf8') };
  else if (spec.post?.labels) throw new Error(`postprocess.labels: cannot read ${join(modelDir, labelsFile)}`);
  if (spec.text) {
    const file = join(modelDir, spec.text.tokenizer);
    if (!existsSync(file)) throw new Error(`preprocess.text.tokenizer: cannot read ${file}`);
    const config = join(modelDir, 'tokenizer_config.json');
    steps.tokenizer = { file: spec.text.tokenizer, json: readFileSync(file, 'utf8'), ...(existsSync(config) ? { config: readFileSync(config, 'utf8') } : {}) };
  }
  if (!found?.config.processing && !steps.labels) return undefined;
  return steps;
}

const RUNTIME = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'runtime');

/** esbuild: without a text step, the tokenizer factory is a stub, so the bundle carries no tokenizer library. */
export function tokenizerPlugin(withText: boolean): esbuild.Plugin {
  return {
    name: 'dais-tokenizer',
    setup(build) {
      if (!withText) build.onResolve({ filter: /tokenizer-hf\.ts$/ }, () => ({ path: join(RUNTIME, 'tokenizer-absent.ts') }));
    },
  };
}
