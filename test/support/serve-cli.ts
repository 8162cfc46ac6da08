// `dais serve` as a real process (bin/dais.js), for tests of what only a process shows: workers, child processes,
// signals, exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './env.ts';

export interface Started {
  child: ChildProcess;
  info: { url: string; port: number; grpcPort: number | null; workers: number };
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Starts `dais serve <args> --port 0 --json` and resolves once it announces itself; its JSON log lines are kept. */
export async function startServe(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Started> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'serve', ...args, '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  createInterface({ input: child.stderr! }).on('line', (l) => {
    stderr += l + '\n';
    try {
      logs.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`dais serve exited (${code}) before it was ready: ${stderr}`)));
  });
  return { child, info: JSON.parse(line), logs, exited };
}
