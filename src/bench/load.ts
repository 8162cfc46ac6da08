// Runs load points in one child process (load-worker.ts), point after point, and hands each result back as it ends.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadConfig, LoadResult } from './load-worker.ts';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'load-worker.ts');

export type { LoadConfig, LoadResult };

export function runLoad(configs: LoadConfig[], onPoint?: (r: LoadResult) => void): Promise<LoadResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], { stdio: ['pipe', 'pipe', 'pipe'] });
    const results: LoadResult[] = [];
    let buf = '';
    let err = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const r = JSON.parse(line) as LoadResult;
        results.push(r);
        onPoint?.(r);
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited ${code}: ${err.trim().split('\n').pop() ?? ''}`));
      if (results.length !== configs.length) return reject(new Error(`load generator returned ${results.length} of ${configs.length} points: ${err.trim()}`));
      resolve(results);
    });
    child.stdin.end(JSON.stringify(configs));
  });
}
