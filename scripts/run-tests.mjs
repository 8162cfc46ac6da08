#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node's built-in test runner (bin/typescript.mjs, the CLI's own
// TypeScript loader).
// Node 20's --test takes no globs, so the files are listed here. --test-force-exit: a handle leaked by one file
// must not hang the whole run once its tests are done; --test-timeout bounds any single test.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['src', 'test'];
const files = [];
function walk(p) {
  const st = statSync(p);
  if (st.isDirectory()) {
    if (p.endsWith('node_modules')) return;
    for (const e of readdirSync(p).sort()) walk(join(p, e));
  } else if (p.endsWith('.test.ts')) files.push(p);
}
for (const r of roots) walk(r);
const r = spawnSync(process.execPath, ['--import', fileURLToPath(new URL('../bin/typescript.mjs', import.meta.url)), '--test', '--test-reporter=spec', '--test-force-exit', '--test-timeout=600000', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
