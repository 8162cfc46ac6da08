// `npm run goals json-decode`: decoding JSON infer requests, decodeInferRequest (src/core/codec/json-numbers.ts reads the
// body, numeric "data" straight into doubles) against decodeInferRequestSlow, the reference path it replaced
// (TextDecoder + JSON.parse on the whole body + requestFromJson), in one run.
// Target: the 784-float MLP request and the 64-float digits request decode ≥ 2× faster. Rounds alternate between the
// two decoders so that load on a shared machine hits both alike; the medians of the per-round times are compared.
//   DAIS_JSON_BENCH_ROUNDS=400 (rounds), DAIS_JSON_BENCH_CALLS=100 (decodes per round and decoder),
//   DAIS_JSON_BENCH_ONLY=digits (only the requests whose path contains this)
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { deepStrictEqual } from 'node:assert/strict';
import { decodeInferRequest, decodeInferRequestSlow } from '../src/core/codec/index.ts';
import { EXAMPLES_DIR } from './paths.ts';

const ROUNDS = Number(process.env.DAIS_JSON_BENCH_ROUNDS ?? 400);
const CALLS = Number(process.env.DAIS_JSON_BENCH_CALLS ?? 100);
const TARGET = 2;
const targeted = new Set(['mlp/requests/single.json', 'digits/requests/single.json']);

const files: string[] = [...targeted];
for (const model of readdirSync(EXAMPLES_DIR).sort()) {
  let names: string[] = [];
  try {
    names = readdirSync(join(EXAMPLES_DIR, model, 'requests')).filter((f) => f.endsWith('.json')).sort();
  } catch {
    continue;
  }
  for (const f of names) if (!targeted.has(`${model}/requests/${f}`)) files.push(`${model}/requests/${f}`);
}
const only = process.env.DAIS_JSON_BENCH_ONLY;
if (only) files.splice(0, files.length, ...files.filter((f) => f.includes(only)));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

type Decode = (body: Uint8Array) => unknown;
function timeCalls(decode: Decode, body: Uint8Array, calls: number): number {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) decode(body);
  return ((performance.now() - t0) * 1000) / calls; // µs per decode
}

/** The body, or for a synthetic row the body built from an example. */
const synthetic: Record<string, () => Uint8Array> = {
  // Float32 values printed as doubles (0.008999999612569809): what numpy's tolist() or a JS Float32Array gives. Off
  // the exact path, so JSON.parse reads them in the new decoder too: no gain expected, and no loss.
  'mlp/requests/single.json, data as float32 doubles': () => {
    const req = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'mlp/requests/single.json'), 'utf8'));
    req.inputs[0].data = req.inputs[0].data.map((v: number) => Math.fround(v));
    return new TextEncoder().encode(JSON.stringify(req));
  },
};
if (!only) files.push(...Object.keys(synthetic));

let misses = 0;
const rows: string[][] = [['request', 'bytes', 'JSON.parse path µs', 'fast path µs', 'speed-up', 'target']];
for (const file of files) {
  const body = synthetic[file]?.() ?? new Uint8Array(readFileSync(join(EXAMPLES_DIR, file)));
  deepStrictEqual(decodeInferRequest(body), decodeInferRequestSlow(body)); // same result, or the numbers mean nothing
  const calls = Math.max(1, Math.round((CALLS * 4000) / Math.max(body.length, 4000)));
  for (let i = 0; i < 200; i++) {
    timeCalls(decodeInferRequestSlow, body, 5);
    timeCalls(decodeInferRequest, body, 5);
  }
  const slow: number[] = [];
  const fast: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      slow.push(timeCalls(decodeInferRequestSlow, body, calls));
      fast.push(timeCalls(decodeInferRequest, body, calls));
    } else {
      fast.push(timeCalls(decodeInferRequest, body, calls));
      slow.push(timeCalls(decodeInferRequestSlow, body, calls));
    }
  }
  const s = median(slow);
  const f = median(fast);
  const ratio = s / f;
  const isTarget = targeted.has(file);
  const miss = isTarget && ratio < TARGET;
  if (miss) misses++;
  rows.push([file, String(body.length), s.toFixed(2), f.toFixed(2), `${ratio.toFixed(2)}×`, isTarget ? (miss ? `MISS (< ${TARGET}×)` : 'met') : '']);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n');
process.stdout.write(
  `\nmedian µs per decode over ${ROUNDS} alternating rounds; same InferenceRequest checked first. ${misses ? `${misses} target(s) missed` : 'all targets met'}\n`,
);
process.exit(misses ? 1 : 0);
