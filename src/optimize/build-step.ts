// `dais build … --quantize <mode> | --prune-trees <n|auto> [--eval data.json] [--max-drop x]`: optimizes the model
// before a target builds it.
// The optimized file is written to a temporary folder laid out like the original (<name>/<version>/model.onnx,
// with the model's requests/ folder linked beside it), so targets derive the same model name and find the same
// sample requests.
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { optimizeModel, OptimizeError, parseEvalData, QUANTIZE_MODES, type OptimizeReport, type QuantizeMode } from './index.ts';

export interface BuildQuantization {
  /** The path the target should build from (the original when no --quantize was given). */
  model: string;
  /** The target's own flags, with the quantization flags taken out. */
  argv: string[];
  report?: OptimizeReport;
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
  if (!existsSync(model) || !statSync(model).isFile()) {
    throw new OptimizeError(`${what} takes one model file, not ${existsSync(model) ? 'a folder' : `a missing path (${model})`}: run 'dais optimize' per model, then build from the results`);
  }
  const maxDrop = d.value === undefined ? undefined : Number(d.value);
  if (maxDrop !== undefined && !(maxDrop >= 0 && maxDrop <= 1)) throw new OptimizeError(`--max-drop must be a fraction from 0 to 1, got '${d.value}'`);
  const evalData = e.value === undefined ? undefined : parseEvalData(JSON.parse(await readFile(e.value, 'utf8')), e.value);
  const result = await optimizeModel(new Uint8Array(await readFile(model)), { quantize: q.value as QuantizeMode | undefined, pruneTrees, eval: evalData, maxDrop, fileName: model });
  if (!result.accepted) throw new OptimizeError(`${what}: ${result.report.refusal}; nothing was built`);

  const dir = await mkdtemp(join(tmpdir(), 'dais-build-quantized-'));
  const versionDir = dirname(resolve(model));
  const isVersioned = /^\d+$/.test(basename(versionDir));
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
