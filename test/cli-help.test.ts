// `dais --help` lists each command with a one-line summary kept in src/cli/main.ts (so the help loads no command);
// each must be the command's own summary, so the two cannot drift apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMANDS } from '../src/cli/main.ts';

test('every command summary in dais --help equals the command\'s own', async () => {
  for (const [name, entry] of Object.entries(COMMANDS)) {
    const { command } = await entry.load();
    assert.equal(command.name, name);
    assert.equal(entry.summary, command.summary, `dais --help's summary of '${name}'`);
  }
});
