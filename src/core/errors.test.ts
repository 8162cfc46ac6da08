import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERRORS } from './errors.ts';

const SRC = fileURLToPath(new URL('..', import.meta.url));
const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const rows = doc.split('\n').filter((l) => /^\| `[A-Z_]+` \|/.test(l));

/** Codes defined outside the ERRORS table: error classes' `readonly code = '…'` anywhere in src/ (the CLI prints them). */
function classCodes(): string[] {
  const codes: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/readonly code = '([A-Z_]+)'/g)) codes.push(m[1]);
      }
    }
  };
  walk(SRC);
  return codes;
}

test('every error code is documented in docs/errors.md with its HTTP and gRPC status and what to do', () => {
  for (const [code, e] of Object.entries(ERRORS)) {
    const row = rows.find((l) => l.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} is missing from docs/errors.md`);
    assert.match(row, new RegExp(`\\| ${e.status} \\| ${e.grpc} `), `${code}: statuses in docs/errors.md differ from the table`);
    const cells = row.split(' | ');
    assert.equal(cells.length, 5, `${code}: the row needs code, HTTP, gRPC, meaning and what to do`);
    assert.ok(cells[4].replace(/\|$/, '').trim().length > 10, `${code}: say what to do`);
  }
  const other = classCodes();
  assert.ok(other.includes('MODEL_FILE_INVALID'), 'the scan finds the error classes\' codes');
  for (const code of other) {
    const row = rows.find((l) => l.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} is missing from docs/errors.md`);
    assert.equal(row.split(' | ').length, 3, `${code}: the row needs code, meaning and what to do`);
  }
});

test('every code docs/errors.md documents exists', () => {
  const defined = new Set([...Object.keys(ERRORS), ...classCodes()]);
  assert.ok(rows.length >= Object.keys(ERRORS).length);
  for (const row of rows) {
    const code = row.split('`')[1];
    assert.ok(defined.has(code), `docs/errors.md documents ${code}, which no code defines`);
  }
});
