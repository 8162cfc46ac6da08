// Runs one load point in a child process (load-worker.ts) and returns what it measured.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadConfig, LoadResult } from './load-worker.ts';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'load-worker.ts');

export type { LoadConfig, LoadResult };

export function runLoad(cfg: LoadConfig): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited ${code}: ${err.trim().split('\n').pop() ?? ''}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult);
      } catch {
        reject(new Error(`load generator printed no result: ${err.trim()}`));
      }
    });
    child.stdin.end(JSON.stringify(cfg));
  });
}
