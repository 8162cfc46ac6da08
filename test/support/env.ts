// Gates for tests that need a system tool or the ../shared folder: skip visibly on a user's machine,
// fail under DAIS_REQUIRE_SYSTEM_TESTS=1 (CI), so nothing skips silently there.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED_DIR = resolve(REPO_ROOT, '..', 'shared');
export const EXAMPLES_DIR = join(REPO_ROOT, 'examples');

const required = process.env.DAIS_REQUIRE_SYSTEM_TESTS === '1';

function toolPath(tool: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Returns the tool's path, or skips the test (fails it under DAIS_REQUIRE_SYSTEM_TESTS=1). */
export function requireTool(t: TestContext, tool: string, aptPackage: string): string | undefined {
  const p = toolPath(tool);
  if (p) return p;
  const msg = `${tool} not found: install it with 'apt-get install ${aptPackage}'`;
  if (required) throw new Error(`${msg} (DAIS_REQUIRE_SYSTEM_TESTS=1 forbids skipping)`);
  console.warn(`SKIP: ${msg}`);
  t.skip(msg);
  return undefined;
}

/** Returns the absolute path of ../shared/<rel>, or skips (fails under DAIS_REQUIRE_SYSTEM_TESTS=1). */
export function requireShared(t: TestContext, rel: string): string | undefined {
  const p = join(SHARED_DIR, rel);
  if (existsSync(p)) return p;
  const msg = `${p} is absent (it comes with the project's shared/ folder, beside the clone)`;
  if (required) throw new Error(`${msg} (DAIS_REQUIRE_SYSTEM_TESTS=1 forbids skipping)`);
  console.warn(`SKIP: ${msg}`);
  t.skip(msg);
  return undefined;
}

/** For root-only tools (runc): skips when not root, fails under DAIS_REQUIRE_SYSTEM_TESTS=1. */
export function requireRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  const msg = 'this test must run as root (runc)';
  if (required) throw new Error(`${msg} (DAIS_REQUIRE_SYSTEM_TESTS=1 forbids skipping)`);
  console.warn(`SKIP: ${msg}`);
  t.skip(msg);
  return false;
}
