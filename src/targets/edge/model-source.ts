// What an edge build starts from: one model file or a model repository, turned into ONNX bytes (Keras files are
// converted here, at build time, so no bundle carries a converter), with the sample requests that travel with it.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { requestFromJson, type ModelMetadata } from '../../core/index.ts';
import { loadModelFile } from '../../formats/index.ts';
import { isVersionFolder, scanRepository } from '../../layout/repository.ts';
import { UserError } from '../../core/errors.ts';
import { declaredStepsIn, type DeclaredSteps } from './declared-steps.ts';
import { zerosRequest as zerosOf } from '../samples.ts';

/** A user-facing build failure: the CLI prints its message as one line and exits 1. */
export class EdgeBuildError extends UserError {
  override readonly name = 'EdgeBuildError';
}

export interface SampleRequest {
  /** File name inside the bundle's requests/ folder. */
  file: string;
  /** The v2 JSON body, as a client would send it. */
  body: Record<string, unknown>;
}

export interface EdgeModelSource {
  name: string;
  version: string;
  path: string;
  onnx: Uint8Array;
  notes: string[];
  samples: SampleRequest[];
  /** Declared pre/post-processing and the files it reads, for a model in a repository folder with a config. */
  steps?: DeclaredSteps;
}

const NAME = /^[A-Za-z0-9_.-]+$/;

/** examples/digits/1/model.onnx → "digits"; my-net.onnx → "my-net". */
export function modelNameFor(file: string): string {
  const stem = basename(file, extname(file));
  if (stem !== 'model') return stem.replace(/[^A-Za-z0-9_.-]/g, '_');
  const parent = dirname(file);
  const owner = isVersionFolder(basename(parent)) ? dirname(parent) : parent;
  return basename(owner).replace(/[^A-Za-z0-9_.-]/g, '_') || 'model';
}

/** Sample requests kept beside a model in a repository: <model>/requests/*.json (the examples' layout). */
function samplesBeside(file: string): string[] {
  const versionDir = dirname(file);
  for (const dir of [join(dirname(versionDir), 'requests'), join(versionDir, 'requests')]) {
    if (existsSync(dir) && statSync(dir).isDirectory()) {
      return readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => join(dir, f));
    }
  }
  return [];
}

function readSample(path: string): SampleRequest {
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new EdgeBuildError(`sample request ${path} is not readable JSON: ${(e as Error).message}`);
  }
  try {
    requestFromJson(body);
  } catch (e) {
    throw new EdgeBuildError(`sample request ${path} is not a v2 infer request: ${(e as Error).message}`);
  }
  return { file: basename(path), body: body as Record<string, unknown> };
}

/** A request of zeros (every dynamic dimension `dynamic`, scalars kept) for a model that came without sample requests. */
export function zerosRequest(meta: ModelMetadata, dynamic = 1): SampleRequest {
  return { file: 'zeros.json', body: { id: 'zeros', ...zerosOf(meta.inputs, dynamic) } };
}

async function loadOne(path: string, name: string, version: string, requestFiles: string[], modelDir?: string): Promise<EdgeModelSource> {
  const file = await loadModelFile(path);
  const files = requestFiles.length ? requestFiles : samplesBeside(path);
  const source: EdgeModelSource = { name, version, path, onnx: file.onnx, notes: file.notes, samples: files.map(readSample) };
  if (modelDir) {
    try {
      const steps = await declaredStepsIn(modelDir);
      if (steps) source.steps = steps;
    } catch (e) {
      throw new EdgeBuildError(`${modelDir}: ${(e as Error).message}`);
    }
  }
  return source;
}

/**
 * Reads what the build packs: a single model (a file, or a repository folder holding one model) or, where
 * `allowMany`, every model of a repository.
 */
export async function loadModelSources(path: string, opts: { name?: string; requests?: string[]; allowMany: boolean }): Promise<EdgeModelSource[]> {
  if (!existsSync(path)) throw new EdgeBuildError(`no such model file or repository: ${path}`);
  if (opts.name !== undefined && !NAME.test(opts.name)) throw new EdgeBuildError(`--name '${opts.name}' may hold only letters, digits, '_', '.' and '-'`);
  if (statSync(path).isFile()) return [await loadOne(path, opts.name ?? modelNameFor(path), '1', opts.requests ?? [])];
  let sources;
  try {
    sources = await scanRepository(path);
  } catch (e) {
    throw new EdgeBuildError((e as Error).message);
  }
  // Only the newest version of each model goes to a device: it has no room for rollbacks it cannot switch to.
  const newest = new Map<string, (typeof sources)[number]>();
  for (const s of sources) {
    const cur = newest.get(s.name);
    if (!cur || Number(s.version) > Number(cur.version)) newest.set(s.name, s);
  }
  const picked = [...newest.values()];
  if (picked.length > 1 && !opts.allowMany) {
    throw new EdgeBuildError(
      `${path} holds ${picked.length} models (${picked.map((s) => s.name).join(', ')}); a browser bundle holds one: give one model, e.g. ${picked[0].path}`,
    );
  }
  if (picked.length > 1 && (opts.name || opts.requests?.length)) {
    throw new EdgeBuildError('--name and --request apply to a single model; give one model file to use them');
  }
  const out: EdgeModelSource[] = [];
  for (const s of picked) {
    const name = picked.length === 1 ? (opts.name ?? (s.name === 'model' ? modelNameFor(s.path) : s.name)) : s.name;
    out.push(await loadOne(s.path, name, s.version, picked.length === 1 ? (opts.requests ?? []) : [], s.modelDir));
  }
  return out;
}
