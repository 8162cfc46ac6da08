// A model repository: a single model file, or a folder laid out as <repo>/<model>/<version>/model.onnx
// (Triton's layout). Every version found is loaded; the default version is the highest.
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { InferenceError, type ModelEndpoint, type ModelRegistry } from '../core/index.ts';
import { loadModelFile } from '../formats/index.ts';
import type { Backend, SessionOptions } from '../runtime/backend.ts';
import { OnnxModel } from '../runtime/onnx-model.ts';

export const MODEL_FILE_NAMES = ['model.onnx', 'model.h5', 'model.keras'];
const MODEL_EXTENSIONS = ['.onnx', '.h5', '.hdf5', '.keras'];

export interface ModelSource {
  name: string;
  version: string;
  path: string;
}

export interface RepositoryOptions {
  backend: Backend;
  sessionOptions?: SessionOptions;
  /** Called with one line per loaded model (progress on the terminal, or a log). */
  onLoad?: (event: { name: string; version: string; path: string; ms: number; notes: string[] }) => void;
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/** Finds the model file inside a version folder (or a model folder without versions). */
async function modelFileIn(dir: string): Promise<string | undefined> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const n of MODEL_FILE_NAMES) if (entries.includes(n)) return join(dir, n);
  const candidates = entries.filter((e) => MODEL_EXTENSIONS.includes(extname(e).toLowerCase()));
  return candidates.length === 1 ? join(dir, candidates[0]) : undefined;
}

export function modelNameOf(file: string): string {
  return basename(file, extname(file)).replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** Lists what a path holds without loading anything. */
export async function scanRepository(path: string): Promise<ModelSource[]> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new Error(`no such file or directory: ${path}`);
  if (st.isFile()) return [{ name: modelNameOf(path), version: '1', path }];
  const sources: ModelSource[] = [];
  const direct = await modelFileIn(path);
  if (direct && !(await readdir(path)).some((e) => /^\d+$/.test(e))) return [{ name: modelNameOf(basename(path)), version: '1', path: direct }];
  for (const name of (await readdir(path)).sort()) {
    if (name.startsWith('.') || !(await isDir(join(path, name)))) continue;
    const modelDir = join(path, name);
    const versions = (await readdir(modelDir)).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b));
    let found = false;
    for (const v of versions) {
      const file = await modelFileIn(join(modelDir, v));
      if (file) {
        sources.push({ name, version: v, path: file });
        found = true;
      }
    }
    if (!found) {
      const file = await modelFileIn(modelDir);
      if (file) sources.push({ name, version: '1', path: file });
    }
  }
  if (sources.length === 0) {
    throw new Error(`${path} holds no model: expected <model>/<version>/model.onnx (or a .onnx/.h5/.keras file)`);
  }
  return sources;
}

export class ModelRepository implements ModelRegistry {
  private readonly models = new Map<string, Map<string, OnnxModel>>();
  private draining = false;

  private constructor(readonly root: string) {}

  static async open(path: string, options: RepositoryOptions): Promise<ModelRepository> {
    const repo = new ModelRepository(path);
    for (const src of await scanRepository(path)) await repo.load(src, options);
    return repo;
  }

  private async load(src: ModelSource, options: RepositoryOptions): Promise<void> {
    const t0 = performance.now();
    const file = await loadModelFile(src.path);
    let model: OnnxModel;
    try {
      model = await OnnxModel.load(file.onnx, {
        name: src.name,
        version: src.version,
        backend: options.backend,
        sessionOptions: options.sessionOptions,
        versions: () => this.versionsOf(src.name),
      });
    } catch (e) {
      throw new Error(`model '${src.name}' version ${src.version} (${src.path}): ${(e as Error).message}`, { cause: e });
    }
    let versions = this.models.get(src.name);
    if (!versions) this.models.set(src.name, (versions = new Map()));
    versions.set(src.version, model);
    options.onLoad?.({ name: src.name, version: src.version, path: src.path, ms: performance.now() - t0, notes: file.notes });
  }

  versionsOf(name: string): string[] {
    return [...(this.models.get(name)?.keys() ?? [])].sort((a, b) => Number(a) - Number(b));
  }

  names(): string[] {
    return [...this.models.keys()].sort();
  }

  isReady(): boolean {
    return !this.draining && this.models.size > 0;
  }

  setDraining(): void {
    this.draining = true;
  }

  resolve(name: string, version?: string): ModelEndpoint {
    const versions = this.models.get(name);
    if (!versions) {
      throw new InferenceError('MODEL_NOT_FOUND', `model '${name}' is not in the repository; models: ${this.names().join(', ') || '(none)'}`);
    }
    if (version === undefined) {
      const all = this.versionsOf(name);
      return versions.get(all[all.length - 1])!;
    }
    const m = versions.get(version);
    if (!m) throw new InferenceError('VERSION_NOT_FOUND', `model '${name}' has no version '${version}'; versions: ${this.versionsOf(name).join(', ')}`);
    return m;
  }

  async close(): Promise<void> {
    for (const versions of this.models.values()) for (const m of versions.values()) await m.dispose();
    this.models.clear();
  }
}
