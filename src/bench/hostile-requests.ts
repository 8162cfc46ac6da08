// Hostile REST bodies: the fuzz suite's (test/fuzz-hostile.test.ts), which sends them to a server in process and
// asserts every answer, and `npm run goals hostile`'s, which sends the same seeded cases to a running `dais serve`
// and reads the worst event-loop delay they caused. `r` is a seeded random source (src/bench/random.ts).
import type { ModelMetadata } from '../core/index.ts';

export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES', 'fp32', '', 'COMPLEX64'];

export type Rand = () => number;
export const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
export const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

export function nest(depth: number, leaf: string): string {
  return '['.repeat(depth) + leaf + ']'.repeat(depth);
}

/** A dimension list a hostile client might send for a model input of rank `rank`. */
export function hostileShape(r: Rand, rank: number): unknown {
  switch (int(r, 0, 9)) {
    case 0: return Array.from({ length: rank }, (_, i) => (i === int(r, 0, rank - 1) ? 0 : int(r, 1, 3)));
    case 1: return Array.from({ length: rank }, () => int(r, -3, 3));
    case 2: return Array.from({ length: rank }, () => pick(r, [2 ** 31, 2 ** 53, 1e308, 4294967296, 65536]));
    case 3: return Array.from({ length: int(r, 0, 9) }, () => int(r, 0, 4));
    case 4: return pick(r, ['[1,2]', null, 5, { a: 1 }, [1.5, 2], ['1', '2'], [true]]);
    case 5: return [];
    default: return Array.from({ length: rank }, () => int(r, 0, 4));
  }
}

/** `data` for a tensor: wrong types, amplifying counts, nesting past the limits. Returned as JSON text. */
function hostileData(r: Rand, count: number): string {
  switch (int(r, 0, 11)) {
    case 0: return nest(int(r, 65, 20_000), '0');
    case 1: return `[${Array.from({ length: Math.min(count, 5000) }, () => '""').join(',')}]`;
    case 2: return `[${Array.from({ length: int(r, 0, 50_000) }, () => '""').join(',')}]`;
    case 3: return '[]';
    case 4: return pick(r, ['null', '"x"', '{}', 'true', '1e999', '-0', '[null]', '[[1],2]', '[1,[2]]', '["\\u0000"]']);
    case 5: return `[${Array.from({ length: Math.min(count, 5000) }, () => pick(r, ['1', 'true', '"1"', '1.5e300', '-1', '99999999999999999999'])).join(',')}]`;
    case 6: return nest(int(r, 2, 64), Array.from({ length: Math.min(count, 100) }, () => '0.5').join(','));
    default: return `[${Array.from({ length: Math.min(count, 20_000) }, () => (r() * 10).toFixed(2)).join(',')}]`;
  }
}

/** One hostile REST body (text) for `model`, and the headers to send it with. */
export function hostileBody(r: Rand, model: ModelMetadata): { body: string | Uint8Array; headers: Record<string, string> } {
  const input = model.inputs[0];
  const rank = Math.max(1, input.shape.length);
  const name = r() < 0.9 ? input.name : pick(r, ['', 'x', '__proto__', 'constructor', 'a'.repeat(5000)]);
  const shape = hostileShape(r, rank);
  const count = Array.isArray(shape) && shape.every((d) => typeof d === 'number') ? (shape as number[]).reduce((a, b) => a * Math.max(0, b), 1) : 1;
  const datatype = r() < 0.6 ? input.datatype : pick(r, DATATYPES);
  const data = hostileData(r, count);
  const extra: string[] = [];
  if (r() < 0.15) extra.push(`"outputs":${pick(r, ['[]', '[{"name":"nope"}]', '{}', '[1]', '[{"name":"x","parameters":5}]', nest(200, '{}')])}`);
  if (r() < 0.1) extra.push(`"id":${pick(r, ['5', 'null', nest(int(r, 65, 50_000), '1'), '"ok"'])}`);
  if (r() < 0.1) extra.push(`"parameters":${pick(r, ['5', '{"binary_data_output":true}', '[]'])}`);
  const params = r() < 0.1 ? `,"parameters":{"binary_data_size":${pick(r, ['-1', '1e20', '3', '"x"'])}}` : '';
  let text = `{${extra.map((e) => e + ',').join('')}"inputs":[{"name":${JSON.stringify(name)},"shape":${JSON.stringify(shape)},"datatype":${JSON.stringify(datatype)},"data":${data}${params}}]}`;
  const headers: Record<string, string> = { 'content-type': pick(r, ['application/json', 'application/json', 'text/plain', 'application/octet-stream', 'image/png']) };
  switch (int(r, 0, 14)) {
    case 0: text = text.slice(0, int(r, 0, text.length)); break;
    case 1: text = pick(r, ['', '[]', 'null', '{}', '{"inputs":5}', '{"inputs":[]}', '{"inputs":[null]}', '\u0000\u0001']); break;
    case 2: headers['inference-header-content-length'] = pick(r, ['-1', '0', String(text.length), String(text.length + 100), 'abc', '1e3']); break;
    default:
  }
  if (r() < 0.05) return { body: Uint8Array.from({ length: int(r, 0, 2000) }, () => int(r, 0, 255)), headers };
  return { body: text, headers };
}

