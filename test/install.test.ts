// Issue 15: a new user's `npm install` on a machine without cmake/autoconf (most laptops and CI images) works, prints
// no warning that comes from this project's own configuration, and leaves a working `dais` command (`npx dais`).
// A real install of a fresh clone of HEAD (the npm cache stays warm, as on a developer's machine).
import assert from 'node:assert/strict';
import { test } from 'node:test';
// @ts-expect-error plain ESM script without type declarations
import { freshInstall, HIDDEN_TOOLS } from '../scripts/fresh-install.mjs';

test('a fresh clone installs with cmake, autoconf, automake and libtool absent from PATH', { timeout: 600_000 }, () => {
  const r = freshInstall();
  assert.deepEqual(r.hiddenStillFound, [], `still on PATH: ${r.hiddenStillFound.join(', ')} (of ${HIDDEN_TOOLS.join(', ')})`);
  assert.equal(r.status, 0, `npm ci failed:\n${r.output.slice(-3000)}`);
  // Warnings from the project's own configuration: an unknown .npmrc key, an engine a dependency refuses, a blocked
  // or unreviewed install script. Any npm warning at all fails here, so a new one is looked at rather than missed.
  assert.deepEqual(r.warnings, [], `npm printed warnings:\n${r.warnings.join('\n')}`);
  assert.ok(r.daisHelp, '`npx dais --help` did not print the usage in the fresh clone');
  console.log(`fresh clone installed in ${r.seconds.toFixed(1)} s (npm ci, warm cache)`);
});
