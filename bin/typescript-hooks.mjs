// Module hooks (node:module's register) that run dais's TypeScript sources, registered by bin/typescript.mjs: each .ts
// file is turned into JavaScript by esbuild as it loads (types removed, nothing else changed), and the result is
// cached by content in the user's cache folder (~/.cache/dais/typescript, not a shared temporary folder another user
// could write code into), so a start after the first transforms nothing.
//
// Why not tsx: it compiles with esbuild's keepNames, which turns every named function made at run time into a
// property definition, and `dais serve` makes several per request. Measured 2026-12-07 (MLP, binary requests, 64
// connections, interleaved): 42 against 45, then 49 against 51 µs of server CPU a request; at one connection the
// difference was within the spread between two processes of the same server. `dais serve examples`: ready in
// 550-580 against 590-700 ms, RSS 132-140 against 150-155 MB.
//
// Stack traces point into the generated JavaScript unless Node is started with --enable-source-maps (each cached
// file names its source map beside it). That is not the default: Node then parses every module's map as it loads
// (+8 MB RSS on `dais serve examples`).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform, version } from 'esbuild';

// What tsconfig.json says about emitting JavaScript: imports are kept as written (a type-only one says `import type`),
// and class fields are defined as ES2022 defines them.
const OPTIONS = {
  loader: 'ts',
  format: 'esm',
  target: `node${process.versions.node}`,
  tsconfigRaw: { compilerOptions: { target: 'ES2022', verbatimModuleSyntax: true } },
};
const BASE = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
const CACHE = join(BASE, 'dais', 'typescript');
const SALT = JSON.stringify([version, OPTIONS]);
/**
 * False once the cache folder could not be written: later files are transformed without trying again. Off from the
 * start where the cache folder's parent (the home folder) does not exist: Node 20's recursive mkdirSync never
 * returns for a path under /proc (HOME=/proc/nonexistent hung `dais --version` at full CPU).
 */
let cacheWritable = existsSync(dirname(BASE));

function save(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const source = readFileSync(file, 'utf8');
  const key = join(CACHE, createHash('sha256').update(SALT).update(file).update('\0').update(source).digest('hex').slice(0, 40));
  try {
    return { format: 'module', source: readFileSync(`${key}.js`, 'utf8'), shortCircuit: true };
  } catch {}
  if (cacheWritable) {
    // A file esbuild cannot read throws here, as it is: only a cache that cannot be written turns the cache off.
    const { code, map } = await transform(source, { ...OPTIONS, sourcemap: 'external', sourcefile: file });
    const js = `${code}//# sourceMappingURL=${key}.js.map\n`;
    try {
      mkdirSync(CACHE, { recursive: true, mode: 0o700 });
      save(`${key}.js.map`, map);
      save(`${key}.js`, js);
      return { format: 'module', source: js, shortCircuit: true };
    } catch {
      cacheWritable = false;
    }
  }
  const { code } = await transform(source, { ...OPTIONS, sourcemap: 'inline', sourcefile: file });
  return { format: 'module', source: code, shortCircuit: true };
}
