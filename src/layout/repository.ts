// What a path holds: the one answer to "which models, versions and files are here", for the server, the target
// builds and the tools alike. The layout is Triton's: <repo>/<model>/<version>/model.onnx, the model's config in
// <repo>/<model>/ (model-config.ts), labels and tokenizer files beside it (processing-files.ts), the drift profile
// beside the model file. A single model file is served as version 1.
import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';

export const MODEL_FILE_NAMES = ['model.onnx', 'model.h5', 'model.keras'];
/** A model's config, in its folder beside the version folders (model-config.ts reads it). */
export const CONFIG_FILE_NAMES = ['config.json', 'config.yaml', 'config.yml', 'config.pbtxt'];
const MODEL_EXTENSIONS = ['.onnx', '.h5', '.hdf5', '.keras'];
/** `dais profile` writes the drift profile beside the model file (monitor/model-profile.ts). */
export const PROFILE_FILE = 'profile.json';

export interface ModelSource {
  name: string;
  version: string;
  path: string;
  /** The model's folder (where config.json/yaml lives); absent for a single model file. */
  modelDir?: string;
}

/** A version folder's name: a whole number. */
export function isVersionFolder(name: string): boolean {
  return /^\d+$/.test(name);
}

export function byVersion(a: string, b: string): number {
  return Number(a) - Number(b);
}

export function modelNameOf(file: string): string {
  return basename(file, extname(file)).replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** <model>/<version>/file → the model's folder, name and version; undefined for a file outside a version folder. */
export function versionFolderOf(file: string): { modelDir: string; name: string; version: string } | undefined {
  const versionDir = dirname(resolve(file));
  if (!isVersionFolder(basename(versionDir))) return undefined;
  return { modelDir: dirname(versionDir), name: basename(dirname(versionDir)), version: basename(versionDir) };
}

/** The version folders of a model's folder, lowest first. */
export async function versionsIn(modelDir: string): Promise<string[]> {
  return (await readdir(modelDir).catch(() => [] as string[])).filter(isVersionFolder).sort(byVersion);
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/** Finds the model file inside a version folder (or a model folder without versions). */
export async function modelFileIn(dir: string): Promise<string | undefined> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const n of MODEL_FILE_NAMES) if (entries.includes(n)) return join(dir, n);
  const candidates = entries.filter((e) => MODEL_EXTENSIONS.includes(extname(e).toLowerCase()));
  return candidates.length === 1 ? join(dir, candidates[0]) : undefined;
}

/** Lists what a path holds without loading anything. */
export async function scanRepository(path: string): Promise<ModelSource[]> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new Error(`no such file or directory: ${path}`);
  if (st.isFile()) return [{ name: modelNameOf(path), version: '1', path }];
  const sources: ModelSource[] = [];
  // A single model's folder (<model>/<version>/model.onnx) is served as that model, not as a repository of
  // models named after its version numbers.
  const own = await versionsIn(path);
  for (const v of own) {
    const file = await modelFileIn(join(path, v));
    if (file) sources.push({ name: modelNameOf(basename(resolve(path))), version: v, path: file, modelDir: path });
  }
  if (sources.length) return sources;
  const direct = await modelFileIn(path);
  if (direct && own.length === 0) return [{ name: modelNameOf(basename(resolve(path))), version: '1', path: direct, modelDir: path }];
  // A symlink in the repository may not lead out of it: whoever can write a link there must not get a file from
  // elsewhere on the disk served (or its parse errors shown).
  const realRoot = await realpath(path);
  const inside = async (p: string) => {
    const real = await realpath(p).catch(() => undefined);
    return real !== undefined && (real === realRoot || real.startsWith(realRoot + sep));
  };
  for (const name of (await readdir(path)).sort()) {
    if (name.startsWith('.') || !(await isDir(join(path, name))) || !(await inside(join(path, name)))) continue;
    const modelDir = join(path, name);
    let found = false;
    for (const v of await versionsIn(modelDir)) {
      const file = await modelFileIn(join(modelDir, v));
      if (file && (await inside(file))) {
        sources.push({ name, version: v, path: file, modelDir });
        found = true;
      }
    }
    if (!found) {
      const file = await modelFileIn(modelDir);
      if (file && (await inside(file))) sources.push({ name, version: '1', path: file, modelDir });
    }
  }
  if (sources.length === 0) {
    throw new Error(`${path} holds no model: expected <model>/<version>/model.onnx (or a .onnx/.h5/.keras file)`);
  }
  return sources;
}

/**
 * Folders of a repository that hold a model's config but no model file yet (e.g. examples whose network is made or
 * fetched by a script): the server skips them, with one log line each, so a fresh clone still serves the rest.
 */
export async function foldersWithoutModel(root: string, withModel: ReadonlySet<string>): Promise<string[]> {
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) return [];
  const out: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    if (name.startsWith('.') || withModel.has(name)) continue;
    const entries = await readdir(join(root, name)).catch(() => [] as string[]);
    if (entries.some((e) => CONFIG_FILE_NAMES.includes(e))) out.push(name);
  }
  return out;
}
