// The load generator, run as its own process so that its CPU time is not the server's: autocannon with a fixed
// number of connections (each keeps one request in flight), timing every response itself so p95 is exact.
// Configs arrive as a JSON array on stdin (one per point, run in turn); each result leaves as one JSON line on
// stdout as soon as its point ends, so a whole sweep pays for one process start.
import autocannon from 'autocannon';
import { summarize } from './stats.ts';

export interface LoadConfig {
  url: string;
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  bodyBase64?: string;
  connections: number;
  durationS: number;
}

export interface LoadResult {
  connections: number;
  durationS: number;
  requests: number;
  rps: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  latencyMs: ReturnType<typeof summarize>;
  responseBytes: number;
}

async function main() {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  for (const cfg of JSON.parse(Buffer.concat(chunks).toString('utf8')) as LoadConfig[]) await point(cfg);
}

async function point(cfg: LoadConfig) {
  const times: number[] = [];
  let non2xx = 0;
  let lastBytes = 0;
  const started = process.hrtime.bigint();
  const instance = autocannon({
    url: cfg.url,
    method: cfg.method,
    headers: cfg.headers,
    body: cfg.bodyBase64 ? Buffer.from(cfg.bodyBase64, 'base64') : undefined,
    connections: cfg.connections,
    pipelining: 1,
    duration: cfg.durationS,
    timeout: 30,
  }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>;
  instance.on('response', (_client, status, bytes, ms) => {
    if (status >= 200 && status < 300) times.push(ms);
    else non2xx++;
    lastBytes = bytes;
  });
  const r = await instance;
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const out: LoadResult = {
    connections: cfg.connections,
    durationS: elapsed,
    requests: times.length,
    rps: times.length / elapsed,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx,
    latencyMs: summarize(times),
    responseBytes: lastBytes,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => {
  process.stderr.write(`load generator failed: ${(e as Error).message}\n`);
  process.exit(1);
});
