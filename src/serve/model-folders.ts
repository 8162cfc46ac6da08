// Folders of a repository that hold a model's config but no model file yet (e.g. examples whose network is made or
// fetched by a script): skipped, with one log line each, so a fresh clone still serves the rest.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFIG_FILE_NAMES } from './model-config.ts';

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
