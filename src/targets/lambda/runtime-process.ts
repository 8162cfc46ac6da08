// The emulator's runtime processes: the program it starts (dais's bootstrap, compiled once per machine, or AWS's
// aws-lambda-ric found outside the project) and what it reads about them from /proc (peak memory, CPU time).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/** Peak resident memory of a process, from the kernel (VmHWM), in MB; 0 where /proc is absent. */
export function peakRssMb(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.ceil(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat times, is 100 on every mainstream architecture. */
const CLK_TCK = 100;

function statFields(path: string): string[] | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses; [0] is field 3 (state).
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU time a process has used so far (all its threads, user + system), in ms at 10 ms resolution; undefined
 * where /proc is absent. On a busy machine this varies far less than wall time.
 */
export function processCpuMs(pid: number | undefined): number | undefined {
  const f = pid ? statFields(`/proc/${pid}/stat`) : undefined;
  return f ? ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK : undefined;
}

/** CPU time of this process's children that have exited and been reaped (cutime + cstime), in ms. */
export function reapedChildrenCpuMs(): number | undefined {
  const f = statFields('/proc/self/stat');
  return f ? ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK : undefined;
}

let bootstrapPath: Promise<string> | undefined;
/**
 * dais's bootstrap compiled to plain JavaScript, so the child needs no TypeScript loader. Named by the hash of
 * its source, so every run on a machine shares one file; written to a temporary name first, then renamed.
 */
export function compiledBootstrap(): Promise<string> {
  bootstrapPath ??= (async () => {
    const source = join(here, 'bootstrap.ts');
    const hash = createHash('sha256').update(readFileSync(source)).update(esbuild.version).digest('hex').slice(0, 16);
    const dir = join(tmpdir(), 'dais-lambda');
    const out = join(dir, `bootstrap-${hash}.mjs`);
    if (existsSync(out)) return out;
    await mkdir(dir, { recursive: true });
    const result = await esbuild.build({ entryPoints: [source], bundle: true, write: false, platform: 'node', format: 'esm', target: 'node20', minify: true, logLevel: 'silent' });
    const partial = `${out}.${process.pid}.tmp`;
    await writeFile(partial, result.outputFiles[0].contents);
    await rename(partial, out);
    return out;
  })();
  return bootstrapPath;
}

/** Where aws-lambda-ric is looked for outside the project: it builds curl and aws-lambda-cpp from source when installed
 * (cmake, autoconf, automake, libtool, g++, make), so it is not one of dais's own dependencies. `.ci/run` installs it here. */
export const AWS_LAMBDA_RIC_HOME = process.env.DAIS_AWS_LAMBDA_RIC_HOME ?? join(homedir(), '.cache', 'dais', 'aws-lambda-ric');
const RIC_INSTALL = `apt-get install autoconf automake libtool pkg-config cmake g++ make python3, then ` +
  `npm install --prefix ${AWS_LAMBDA_RIC_HOME} aws-lambda-ric@3.3.0 (or set DAIS_AWS_LAMBDA_RIC_HOME to a folder that has it)`;

/** Where aws-lambda-ric's entry is, or why it cannot be used. Looked up in the project first, then in AWS_LAMBDA_RIC_HOME. */
export function findAwsLambdaRic(): { path?: string; reason?: string } {
  for (const from of [import.meta.url, pathToFileURL(join(AWS_LAMBDA_RIC_HOME, 'package.json')).href]) {
    let manifest: string;
    try {
      manifest = createRequire(from).resolve('aws-lambda-ric/package.json');
    } catch {
      continue;
    }
    const dir = dirname(manifest);
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { main?: string; bin?: string | Record<string, string> };
    // The runner is the package's `aws-lambda-ric` bin (bin/index.mjs in 3.x); `main` is only the library in 3.x.
    const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.['aws-lambda-ric'];
    const entry = join(dir, bin ?? pkg.main ?? 'index.js');
    if (!existsSync(join(dir, 'dist', 'rapid-client.node')) && !existsSync(join(dirname(entry), 'rapid-client.node'))) {
      return { reason: `aws-lambda-ric is installed at ${dir} but its native addon (rapid-client.node) was not built: ${RIC_INSTALL}` };
    }
    return { path: entry };
  }
  return { reason: `aws-lambda-ric is not installed: ${RIC_INSTALL}` };
}
