// A file from a published npm package, fetched with `npm pack` (never installed) into a cache folder beside the
// other dais caches, for tests that need a real model shipped on npm (Silero VAD in @ricky0123/vad-web).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export const NPM_PACK_CACHE = process.env.DAIS_NPM_PACK_CACHE ?? join(homedir(), '.cache', 'dais', 'npm-pack');

/** <cache>/<name>@<version>/<file>, packed and extracted once; undefined (with the reason) when npm or the registry fails. */
export function npmPackFile(spec: string, file: string): { path?: string; reason?: string } {
  const dir = join(NPM_PACK_CACHE, spec.replace(/\//g, '+'));
  const path = join(dir, 'package', file);
  if (existsSync(path)) return { path };
  mkdirSync(dir, { recursive: true });
  let tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tgz) {
    const r = spawnSync('npm', ['pack', spec, '--pack-destination', dir, '--silent'], { encoding: 'utf8', timeout: 180_000 });
    tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    if (r.status !== 0 || !tgz) return { reason: `npm pack ${spec} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}` };
  }
  const x = spawnSync('tar', ['-xzf', join(dir, tgz), '-C', dir, `package/${file}`], { encoding: 'utf8' });
  if (x.status !== 0 || !existsSync(path)) return { reason: `${tgz} holds no package/${file}: ${x.stderr.trim()}` };
  return { path };
}

/** The file, or a visible skip (an error under DAIS_REQUIRE_SYSTEM_TESTS=1). */
export function requireNpmPackFile(t: TestContext, spec: string, file: string): string | undefined {
  const r = npmPackFile(spec, file);
  if (r.path) return r.path;
  const msg = `${file} from ${spec} is not available: ${r.reason}`;
  if (process.env.DAIS_REQUIRE_SYSTEM_TESTS === '1') throw new Error(`${msg} (DAIS_REQUIRE_SYSTEM_TESTS=1 forbids skipping)`);
  console.warn(`SKIP: ${msg}`);
  t.skip(msg);
  return undefined;
}
