// Servers under test run as child processes: their memory is their own (VmHWM), and the load generator, the
// bench and the server never share an event loop.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processMemory } from './proc.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, '../..');
const DAIS_BIN = join(REPO_ROOT, 'bin/dais.js');
/** `node --import` this to run a .ts file the way the CLI runs its own (bin/typescript-hooks.mjs). */
export const TYPESCRIPT_LOADER = join(REPO_ROOT, 'bin/typescript.mjs');
/** The hand-written peer server (peer-server.ts), also started by the goal checks. */
export const PEER_SERVER = join(HERE, 'peer-server.ts');

export interface ServerProcess {
  url: string;
  pid: number;
  /** First model the server lists (its name in /v2/models/{name}/infer). */
  model: string;
  peakRssMb(): number | undefined;
  stop(): Promise<void>;
}

function startChild(args: string[], what: string, timeoutMs = 60_000): Promise<{ child: ChildProcess; ready: Record<string, unknown> }> {
  return new Promise((resolveP, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not report ready in ${timeoutMs / 1000} s: ${err.trim().split('\n').slice(-3).join(' ')}`));
    }, timeoutMs);
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.trim().startsWith('{'));
      if (line) {
        clearTimeout(timer);
        try {
          resolveP({ child, ready: JSON.parse(line) });
        } catch (e) {
          reject(new Error(`${what} printed a bad ready line: ${line}`));
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready: ${err.trim().split('\n').slice(-3).join(' ')}`));
    });
  });
}

function wrap(child: ChildProcess, url: string, model: string): ServerProcess {
  let lastPeak: number | undefined;
  return {
    url,
    pid: child.pid!,
    model,
    peakRssMb() {
      const m = processMemory(child.pid!);
      if (m) lastPeak = m.peakRssMb;
      return lastPeak;
    },
    stop() {
      return new Promise<void>((res) => {
        if (child.exitCode !== null) return res();
        this.peakRssMb();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          res();
        });
        child.kill('SIGTERM');
      });
    },
  };
}

/** `dais serve <model or repository> --port 0 --json` with extra flags. */
export async function startDais(model: string, flags: string[] = []): Promise<ServerProcess> {
  const { child, ready } = await startChild([DAIS_BIN, 'serve', model, '--port', '0', '--json', ...flags], 'dais serve');
  const models = ready.models as { name: string }[];
  return wrap(child, String(ready.url), models[0].name);
}

/** The peer: node:http + onnxruntime-node, one request one run, onnxruntime's default threads (peer-server.ts). */
export async function startPeer(modelFile: string): Promise<ServerProcess> {
  const { child, ready } = await startChild(['--import', TYPESCRIPT_LOADER, PEER_SERVER, 'ort', modelFile, '--threads', '0'], 'peer server');
  return wrap(child, String(ready.url), String(ready.model));
}
