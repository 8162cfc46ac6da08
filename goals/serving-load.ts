// The load generator of goals/serving.goal.ts, in its own process: autocannon's API with the body as raw bytes
// (its CLI reads -i files as UTF-8, which corrupts binary tensors). Prints autocannon's result as one JSON line.
// Usage: node --import tsx goals/serving-load.ts '{"url":…,"bodyFile":…,"headers":{…},"connections":64,"seconds":8}'
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

const o = JSON.parse(process.argv[2]) as { url: string; bodyFile: string; headers: Record<string, string>; connections: number; seconds: number };
const result = await autocannon({ url: o.url, method: 'POST', body: readFileSync(o.bodyFile), headers: o.headers, connections: o.connections, duration: o.seconds });
process.stdout.write(JSON.stringify({ rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx, total: result.requests.total }) + '\n');
