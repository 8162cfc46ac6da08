// Runs `dais <args>` as a child process (the way a user runs it) and returns its exit code and output.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './servers.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runDais(args: string[], timeoutMs = 300_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** Whether this checkout has a CLI command (its file under src/cli). */
export async function hasCommand(name: string): Promise<boolean> {
  const r = await runDais(['--help'], 30_000);
  return new RegExp(`^\\s+${name}\\s`, 'm').test(r.stdout);
}
