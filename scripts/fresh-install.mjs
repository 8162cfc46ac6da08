// A new user's install, reproduced: clone this repository's committed HEAD into a temporary folder and run
// `npm ci` there with cmake, autoconf, automake and libtool hidden from PATH (most laptops and CI images have none),
// then check that the `dais` command answers. Used by test/install.test.ts (it must work, and print no warning from
// this project's own configuration) and by goals/install.goal.ts (how long it takes, goal ≤ 60 s here).
//
//   node scripts/fresh-install.mjs        prints the result as JSON
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HIDDEN_TOOLS = ['cmake', 'autoconf', 'automake', 'libtool', 'libtoolize'];
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** PATH with every folder that holds a hidden tool replaced by a copy (of symlinks) without it. */
function pathWithout(tools, scratch) {
  const out = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || !existsSync(dir)) continue;
    if (!tools.some((t) => existsSync(join(dir, t)))) {
      out.push(dir);
      continue;
    }
    const copy = join(scratch, `path-${out.length}`);
    mkdirSync(copy);
    for (const entry of readdirSync(dir)) if (!tools.includes(entry)) symlinkSync(join(dir, entry), join(copy, entry));
    out.push(copy);
  }
  return out.join(delimiter);
}

function which(tool, path) {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { env: { PATH: path }, encoding: 'utf8' }).status === 0;
}

/**
 * Clones HEAD and installs it as a new user would. Returns what happened; the clone is removed unless `keep`.
 * @returns {{ ok: boolean, seconds: number, status: number | null, output: string, warnings: string[],
 *   hiddenStillFound: string[], daisHelp: boolean, clone: string }}
 */
export function freshInstall({ keep = false } = {}) {
  const scratch = mkdtempSync(join(tmpdir(), 'dais-fresh-install-'));
  const clone = join(scratch, 'dais');
  try {
    const c = spawnSync('git', ['clone', '--quiet', REPO, clone], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`git clone failed: ${c.stderr}`);
    const PATH = pathWithout(HIDDEN_TOOLS, scratch);
    const hiddenStillFound = HIDDEN_TOOLS.filter((t) => which(t, PATH));
    const env = { ...process.env, PATH };
    // The npm cache stays (warm, as on a developer's machine); nothing else of this checkout is reused.
    for (const k of Object.keys(env)) if (k.startsWith('npm_') || k === 'ONNXRUNTIME_NODE_INSTALL') delete env[k];
    const t0 = process.hrtime.bigint();
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: clone, env, encoding: 'utf8', maxBuffer: 64 << 20 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const output = `${r.stdout}\n${r.stderr}`;
    const warnings = output.split('\n').filter((l) => /^npm (warn|WARN)/.test(l));
    const help = r.status === 0 ? spawnSync('npx', ['dais', '--help'], { cwd: clone, env, encoding: 'utf8' }) : undefined;
    const daisHelp = help?.status === 0 && /Usage: dais <command>/.test(help.stdout);
    return { ok: r.status === 0 && daisHelp, seconds, status: r.status, output, warnings, hiddenStillFound, daisHelp, clone };
  } finally {
    if (!keep) rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = freshInstall();
  process.stdout.write(JSON.stringify({ ...r, output: r.output.slice(-4000) }, null, 2) + '\n');
  process.exit(r.ok ? 0 : 1);
}
