// Writing tensors into a v2 body, one way for requests (client side) and responses (server side): each tensor as
// JSON "data" or, where asked, as binary data after the JSON header.
import { ELEMENT_SIZE, type TensorData } from '../datatypes.ts';
import { numbersJson } from '../json-exact.ts';
import { fromHalfBits, type Tensor } from '../tensor.ts';
import { LITTLE_ENDIAN, swapBytes, utf8Decoder } from './wire.ts';

export interface EncodedBody {
  body: string | Uint8Array;
  contentType: string;
  /** Set when the body uses the binary extension: the JSON header's length. */
  headerLength?: number;
}

/**
 * JSON `data` for a tensor: a flat, row-major array of JS values. INT64 beyond ±2^53 loses precision here; the
 * encoders below write those (and non-finite floats) with {@link rawJsonData} instead.
 */
export function toJsonData(t: Tensor): unknown[] {
  const d = t.data;
  if (t.datatype === 'BYTES') return (d as Uint8Array[]).map((b) => utf8Decoder.decode(b));
  if (t.datatype === 'BOOL') return Array.from(d as Uint8Array, (v) => v !== 0);
  if (t.datatype === 'FP16') return Array.from(d as Uint16Array, fromHalfBits);
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, (v) => Number(v));
  return Array.from(d as Float32Array);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The JSON text of `t`'s data where JSON.stringify of {@link toJsonData} would not write it as Triton does: 64-bit
 * integers beyond 2^53 as their exact digits, NaN/±Infinity as those literals (tritonclient's Python json reads both).
 * Undefined for every other tensor (the common case, left to JSON.stringify).
 */
export function rawJsonData(t: Tensor): string | undefined {
  const d = t.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    for (let i = 0; i < d.length; i++) if (d[i] > MAX_SAFE || d[i] < -MAX_SAFE) return numbersJson(d);
  } else if (d instanceof Float32Array || d instanceof Float64Array) {
    // x - x is 0 for every finite x, NaN for NaN and ±Infinity.
    for (let i = 0; i < d.length; i++) if (d[i] - d[i] !== 0) return numbersJson(d);
  } else if (t.datatype === 'FP16') {
    const bits = d as Uint16Array;
    for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7c00) === 0x7c00) return numbersJson(Array.from(bits, fromHalfBits));
  }
  return undefined;
}

/**
 * JSON.stringify(head) with head[key] = items, where each item whose `raw[i]` is set gets that text as its "data"
 * member. Only taken when some tensor needs {@link rawJsonData}.
 */
function stringifyWithRawData(head: Record<string, unknown>, key: 'inputs' | 'outputs', items: Record<string, unknown>[], raw: (string | undefined)[]): string {
  const rest = { ...head };
  delete rest[key];
  const parts = items.map((o, i) => (raw[i] === undefined ? JSON.stringify(o) : `${JSON.stringify(o).slice(0, -1)},"data":${raw[i]}}`));
  const start = JSON.stringify(rest);
  return `${start === '{}' ? '{' : `${start.slice(0, -1)},`}"${key}":[${parts.join(',')}]}`;
}

export function toBinary(t: Tensor): Uint8Array {
  if (t.datatype === 'BYTES') {
    const items = t.data as Uint8Array[];
    let total = 0;
    for (const b of items) total += 4 + b.length;
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    let p = 0;
    for (const b of items) {
      view.setUint32(p, b.length, true);
      out.set(b, p + 4);
      p += 4 + b.length;
    }
    return out;
  }
  const d = t.data as Exclude<TensorData, Uint8Array[]>;
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (LITTLE_ENDIAN || ELEMENT_SIZE[t.datatype] === 1) return bytes;
  const copy = bytes.slice();
  swapBytes(copy, ELEMENT_SIZE[t.datatype]);
  return copy;
}

/** A list of tensors as the JSON items of a body's "inputs" or "outputs", and the binary data that follows the header. */
export interface EncodedTensors {
  items: Record<string, unknown>[];
  /** The binary tensors, in order, for the part after the JSON header (empty when none is binary). */
  chunks: Uint8Array[];
  /** Set only when some item's "data" must be written as raw text ({@link rawJsonData}): that text, by index. */
  raw?: (string | undefined)[];
}

/**
 * Encodes each tensor as `describe(t)` (its name, datatype and shape, in the order the caller writes them) plus its
 * parameters and either its JSON "data" or, where `isBinary(name)`, binary_data_size and a chunk.
 */
export function encodeTensors(tensors: readonly Tensor[], isBinary: (name: string) => boolean, describe: (t: Tensor) => Record<string, unknown>): EncodedTensors {
  const chunks: Uint8Array[] = [];
  let raw: (string | undefined)[] | undefined;
  const items = tensors.map((t, i) => {
    const o = describe(t);
    if (isBinary(t.name)) {
      const bytes = toBinary(t);
      chunks.push(bytes);
      o.parameters = { ...t.parameters, binary_data_size: bytes.length };
    } else {
      if (t.parameters) o.parameters = t.parameters;
      const text = rawJsonData(t);
      if (text === undefined) o.data = toJsonData(t);
      else (raw ??= [])[i] = text;
    }
    return o;
  });
  return raw === undefined ? { items, chunks } : { items, chunks, raw };
}

/** The JSON header: `head`, whose `key` member holds `encoded.items`. */
export function headerJson(head: Record<string, unknown>, key: 'inputs' | 'outputs', encoded: EncodedTensors): string {
  return encoded.raw === undefined ? JSON.stringify(head) : stringifyWithRawData(head, key, encoded.items, encoded.raw);
}

/** Writes the header's `headerLength` bytes, then the chunks, into `body` (sized for all of them). */
export function fillBody(body: Uint8Array, header: Uint8Array, headerLength: number, chunks: readonly Uint8Array[]): Uint8Array {
  body.set(header.subarray(0, headerLength), 0);
  let p = headerLength;
  for (const c of chunks) {
    body.set(c, p);
    p += c.length;
  }
  return body;
}
