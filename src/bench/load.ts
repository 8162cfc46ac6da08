// The one load client of `dais bench` and the goal checks (goals/). Two engines behind one config and one result:
//   runLoad  — autocannon in one child process (load-worker.ts), point after point, each result handed back as it
//              ends; every response timed, so every percentile is exact. What `dais bench` uses.
//   runWrk   — wrk (C, one thread), where installed: autocannon, in Node, needs about a core of its own, which the
//              servers under test then do not get on a small machine. The goal checks prefer it (loadPoint).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadConfig, LoadResult } from './load-worker.ts';
import { TYPESCRIPT_LOADER } from './servers.ts';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'load-worker.ts');

export type { LoadConfig, LoadResult };

export function runLoad(configs: LoadConfig[], onPoint?: (r: LoadResult) => void): Promise<LoadResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TYPESCRIPT_LOADER, WORKER], { stdio: ['pipe', 'pipe', 'pipe'] });
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

/** wrk's path where it is installed. */
export const WRK = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((f) => existsSync(f));

/** One point with wrk when it is installed, else with autocannon. */
export async function loadPoint(cfg: LoadConfig): Promise<LoadResult> {
  return WRK ? runWrk(cfg) : (await runLoad([cfg]))[0];
}

/** wrk's "50%    2.17ms" and "Latency   2.17ms  1.02ms  20.00ms" figures, in milliseconds. */
function wrkMs(value: string, unit: string): number {
  return Number(value) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit as 'us' | 'ms' | 's' | 'm'];
}

function wrkPercentile(out: string, label: string): number {
  const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
  if (!m) throw new Error(`wrk printed no ${label} latency:\n${out}`);
  return wrkMs(m[1], m[2]);
}

const BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/**
 * One point with wrk: one thread, `connections` connections, the body sent as raw bytes (a Lua script reads it from a
 * file). wrk prints the 50/75/90/99th percentiles only, so p95 and min are NaN; errors count socket errors of every
 * kind (timeouts included, as autocannon's do); responseBytes is the mean bytes read per response, headers included.
 */
export function runWrk(cfg: LoadConfig): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'dais-wrk-'));
  const bodyFile = join(dir, 'body');
  const script = join(dir, 'request.lua');
  writeFileSync(bodyFile, cfg.bodyBase64 ? Buffer.from(cfg.bodyBase64, 'base64') : Buffer.alloc(0));
  const headers = Object.entries(cfg.headers)
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join('\n');
  writeFileSync(script, `local f = assert(io.open(${JSON.stringify(bodyFile)}, "rb"))\nwrk.method = ${JSON.stringify(cfg.method)}\nwrk.body = f:read("*a")\nf:close()\n${headers}\n`);
  return new Promise<LoadResult>((resolve, reject) => {
    // wrk reads -d as whole seconds.
    // --timeout: wrk's default (2 s) counts a slow model's queued answers as socket errors (ResNet-50 at 64
    // connections on 2 cores waits longer than that); an answer is an answer, however late.
    const child = spawn(WRK!, ['-t1', `-c${cfg.connections}`, `-d${Math.max(1, Math.ceil(cfg.durationS))}s`, '--timeout', '60s', '--latency', '-s', script, cfg.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk failed (${code}): ${out}`));
      try {
        const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
        const read = /requests in ([\d.]+)(us|ms|s|m), ([\d.]+)([KMG]?B) read/.exec(out);
        const secs = read ? wrkMs(read[1], read[2]) / 1000 : NaN;
        const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
        const errors = socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
        const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
        const avg = /^\s*Latency\s+([\d.]+)(us|ms|s|m)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m)/m.exec(out);
        const ok = total - non2xx; // as load-worker.ts counts: answered with a 2xx
        resolve({
          connections: cfg.connections,
          durationS: secs,
          requests: ok,
          rps: ok / secs,
          errors,
          timeouts: Number(socket?.[4] ?? 0),
          non2xx,
          latencyMs: {
            n: ok,
            min: NaN,
            mean: avg ? wrkMs(avg[1], avg[2]) : NaN,
            p50: wrkPercentile(out, '50%'),
            p95: NaN,
            p99: wrkPercentile(out, '99%'),
            max: avg ? wrkMs(avg[3], avg[4]) : NaN,
          },
          responseBytes: read && total > 0 ? (Number(read[3]) * BYTES[read[4]]) / total : NaN,
        });
      } catch (e) {
        reject(e as Error);
      }
    });
  }).finally(() => rmSync(dir, { recursive: true, force: true }));
}
