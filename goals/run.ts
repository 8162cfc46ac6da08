// `npm run goals` (alias `npm run bench`): runs every goals/*.goal.ts in turn (or the ones named on the command
// line). Each prints the ratios it measured in one run; targets are stated beside them, and a miss is reported, not
// hidden: a goal check that misses a goal exits 1, and so does `npm run goals`.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TYPESCRIPT_LOADER } from '../src/bench/servers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.goal.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
let failed = 0;
for (const f of files) {
  process.stdout.write(`\n=== ${f} ===\n`);
  const r = spawnSync(process.execPath, ['--import', TYPESCRIPT_LOADER, join(here, f)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.stdout.write(`\n${files.length} goal checks ran: ${files.length - failed} met every goal, ${failed} missed a goal or failed (see above)\n`);
process.exit(failed ? 1 : 0);
