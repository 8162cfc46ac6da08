// The arrows point one way: core ← formats ← runtime ← serve/targets ← tools ← cli. core/ imports no node:* and
// no runtime package, so it runs unchanged in a browser and a Lambda. Checked on the sources' import lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { REPO_ROOT } from './support/env.ts';

const SRC = join(REPO_ROOT, 'src');
// Pure-JS packages with no node:* and no runtime behind them, allowed in core (drift.ts's χ² distribution).
const CORE_PURE_PACKAGES = ['@stdlib/stats-base-dists-chisquare-cdf'];

// layout/: what a path holds (model files, config, version folders): below serve and targets, which both read it.
const LAYER: Record<string, number> = { core: 0, formats: 1, runtime: 2, layout: 2.5, node: 2.5, serve: 3, targets: 3, bench: 4, cost: 4, monitor: 4, optimize: 4, cli: 5 };

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)].map((m) => m[1] ?? m[2]);
}

test('core imports nothing from node:* or a runtime package', () => {
  for (const f of sources(join(SRC, 'core'))) {
    for (const spec of importsOf(f)) {
      if (CORE_PURE_PACKAGES.includes(spec)) continue;
      assert.ok(spec.startsWith('.'), `${relative(REPO_ROOT, f)} imports '${spec}': core may import only core`);
      const target = relative(SRC, resolve(dirname(f), spec)).split('/')[0];
      assert.equal(target, 'core', `${relative(REPO_ROOT, f)} imports ${spec}`);
    }
  }
});


test('imports between layers point one way', () => {
  for (const f of sources(SRC)) {
    const from = relative(SRC, f).split('/')[0];
    if (!(from in LAYER)) continue;
    for (const spec of importsOf(f).filter((s) => s.startsWith('.'))) {
      const to = relative(SRC, resolve(dirname(f), spec)).split('/')[0];
      if (!(to in LAYER) || to === from) continue;
      assert.ok(LAYER[to] < LAYER[from], `${relative(REPO_ROOT, f)} (${from}) imports ${spec} (${to}) against the arrows`);
    }
  }
});

test('package.json exports and bin point at files that exist', async () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string>; bin: Record<string, string> };
  for (const [key, file] of [...Object.entries(pkg.exports), ...Object.entries(pkg.bin)]) {
    assert.ok(statSync(join(REPO_ROOT, file), { throwIfNoEntry: false })?.isFile(), `package.json maps ${key} to ${file}, which does not exist`);
  }
  const lib = (await import('../src/index.ts')) as Record<string, unknown>;
  assert.equal(typeof lib.serve, 'function');
  assert.equal(lib.DAIS_VERSION, (pkg as unknown as { version: string }).version, 'src/core/version.ts must equal package.json\'s version');
});

test('every error class a user can cause extends core UserError (one base, printed as one line by the CLI)', () => {
  const bases = new Set(['UserError', 'InferenceError']); // core/errors.ts: the base, and the protocol's own error
  for (const f of sources(SRC)) {
    for (const m of readFileSync(f, 'utf8').matchAll(/class (\w+) extends Error\b/g)) {
      assert.ok(bases.has(m[1]) && f.endsWith(join('core', 'errors.ts')), `${relative(REPO_ROOT, f)}: ${m[1]} extends Error; extend UserError (src/core/errors.ts)`);
    }
  }
});

test('the goal checks (goals/, the top layer) import src/ but never test support', () => {
  const goals = sources(join(REPO_ROOT, 'goals'));
  assert.ok(goals.length > 0, 'goals/ holds the goal checks');
  for (const f of goals) {
    for (const spec of importsOf(f).filter((s) => s.startsWith('.'))) {
      const to = relative(REPO_ROOT, resolve(dirname(f), spec)).split('/')[0];
      assert.notEqual(to, 'test', `${relative(REPO_ROOT, f)} imports ${spec}: give the goal checks what they need in goals/ or src/`);
    }
  }
});
