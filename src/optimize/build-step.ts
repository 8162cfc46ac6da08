// `dais build … --quantize <mode> | --prune-trees <n|auto> [--eval data.json] [--max-drop x]`: optimizes the model
// before a target builds it.
// The optimized file is written to a temporary folder laid out like the original (<name>/<version>/model.onnx,
// with the model's requests/ folder linked beside it), so targets derive the same model name and find the same
// sample requests. A model folder or repository is copied with every model version optimized.
import { existsSync, statSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { isVersionFolder, scanRepository } from '../layout/repository.ts';
import { formatOf, loadModelFile } from '../formats/index.ts';
import { optimizeModel, OptimizeError, parseEvalData, QUANTIZE_MODES, type OptimizeReport, type QuantizeMode } from './index.ts';

export interface BuildQuantization {
  /** The path the target should build from (the original when no --quantize was given). */
  model: string;
  /** The target's own flags, with the quantization flags taken out. */
  argv: string[];
  report?: OptimizeReport;
  /** One line per model version of a folder: what was done to it. */
  notes?: string[];
  cleanup(): Promise<void>;
}

function takeFlag(argv: string[], name: string): { value?: string; rest: string[] } {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i === -1) return { rest: argv };
  const inline = argv[i].includes('=');
  const value = inline ? argv[i].slice(argv[i].indexOf('=') + 1) : argv[i + 1];
  if (value === undefined || (!inline && value.startsWith('--'))) throw new OptimizeError(`--${name} needs a value`);
  return { value, rest: argv.filter((_, j) => j !== i && !(j === i + 1 && !inline)) };
}

/** Throws OptimizeError (one-line, user-facing) when the mode does not apply or the gate refuses. */
export async function quantizeForBuild(model: string, argv: string[]): Promise<BuildQuantization> {
  const q = takeFlag(argv, 'quantize');
  const p = takeFlag(q.rest, 'prune-trees');
  if (q.value === undefined && p.value === undefined) return { model, argv, cleanup: async () => {} };
  const e = takeFlag(p.rest, 'eval');
  const d = takeFlag(e.rest, 'max-drop');
  if (q.value !== undefined && !QUANTIZE_MODES.includes(q.value as QuantizeMode)) throw new OptimizeError(`--quantize must be one of ${QUANTIZE_MODES.join(', ')}, got '${q.value}'`);
  const pruneTrees = p.value === undefined ? undefined : p.value === 'auto' ? 'auto' : Number(p.value);
  if (typeof pruneTrees === 'number' && !(Number.isInteger(pruneTrees) && pruneTrees >= 1)) throw new OptimizeError(`--prune-trees must be a positive integer or 'auto', got '${p.value}'`);
  const what = q.value !== undefined ? `--quantize ${q.value}` : `--prune-trees ${p.value}`;
  if (!existsSync(model)) throw new OptimizeError(`${what}: no such file or folder: ${model}`);
  const maxDrop = d.value === undefined ? undefined : Number(d.value);
  if (maxDrop !== undefined && !(maxDrop >= 0 && maxDrop <= 1)) throw new OptimizeError(`--max-drop must be a fraction from 0 to 1, got '${d.value}'`);
  const evalData = e.value === undefined ? undefined : parseEvalData(JSON.parse(await readFile(e.value, 'utf8')), e.value);
  const optimize = async (file: string, label: string) => {
    // A Keras file is optimized as the ONNX it converts to (what the target would build from anyway).
    const bytes = formatOf(file) === 'onnx' ? new Uint8Array(await readFile(file)) : (await loadModelFile(file)).onnx;
    const result = await optimizeModel(bytes, { quantize: q.value as QuantizeMode | undefined, pruneTrees, eval: evalData, maxDrop, fileName: file });
    if (!result.accepted) throw new OptimizeError(`${what}${label}: ${result.report.refusal}; nothing was built`);
    return result;
  };
  if (statSync(model).isDirectory()) return quantizeFolder(model, d.rest, evalData !== undefined, optimize);
  const result = await optimize(model, '');

  const dir = await mkdtemp(join(tmpdir(), 'dais-build-quantized-'));
  const versionDir = dirname(resolve(model));
  const isVersioned = isVersionFolder(basename(versionDir));
  let out: string;
  if (isVersioned) {
    const modelDir = dirname(versionDir);
    const target = join(dir, basename(modelDir), basename(versionDir));
    await mkdir(target, { recursive: true });
    out = join(target, basename(model));
    if (existsSync(join(modelDir, 'requests'))) await symlink(join(modelDir, 'requests'), join(dir, basename(modelDir), 'requests'));
  } else {
    out = join(dir, basename(model));
  }
  await writeFile(out, result.model);
  return { model: out, argv: d.rest, report: result.report, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A model folder or repository: every model version is optimized (each through the same gate), into a copy of the
 * folder that keeps everything else (config files, requests/, profile.json), so the target sees the same layout.
 */
async function quantizeFolder(
  folder: string,
  argv: string[],
  hasEval: boolean,
  optimize: (file: string, label: string) => Promise<{ model: Uint8Array; report: OptimizeReport }>,
): Promise<BuildQuantization> {
  const sources = await scanRepository(folder);
  const names = [...new Set(sources.map((src) => src.name))];
  if (hasEval && names.length > 1) {
    throw new OptimizeError(`--eval describes one model's inputs, but ${folder} holds ${names.length} models (${names.join(', ')}): build one model's folder at a time`);
  }
  const root = resolve(folder);
  const modelFiles = new Set(sources.map((src) => resolve(src.path)));
  const dir = await mkdtemp(join(tmpdir(), 'dais-build-quantized-'));
  const copy = join(dir, basename(root));
  try {
    // The folder's name stays: a single model's folder is named after the model.
    await cp(root, copy, { recursive: true, filter: (src) => !modelFiles.has(resolve(src)) });
    let report: OptimizeReport | undefined;
    const notes: string[] = [];
    for (const src of sources) {
      const rel = relative(root, resolve(src.path));
      let result;
      try {
        result = await optimize(src.path, ` (${src.name} v${src.version})`);
      } catch (err) {
        // In a repository of several models, one the mode does not apply to (a tree ensemble under --quantize)
        // ships as it is, said aloud; a gate refusal still stops the build.
        if (names.length === 1 || !(err instanceof OptimizeError) || /nothing was built$/.test(err.message)) throw err;
        await cp(src.path, join(copy, rel));
        notes.push(`${src.name} v${src.version} kept as it is: ${err.message}`);
        continue;
      }
      // The optimized model is ONNX whatever it was converted from (model.h5 → model.onnx).
      const out = join(copy, extname(rel).toLowerCase() === '.onnx' ? rel : join(dirname(rel), 'model.onnx'));
      await mkdir(dirname(out), { recursive: true });
      await writeFile(out, result.model);
      report ??= result.report;
      notes.push(`${src.name} v${src.version}: ${result.report.mode}, ${result.report.size.before} → ${result.report.size.after} bytes`);
    }
    return { model: copy, argv, report, notes, cleanup: () => rm(dir, { recursive: true, force: true }) };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
