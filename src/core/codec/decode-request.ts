// The v2 wire format: JSON tensors and Triton's binary tensor extension, in both directions.
// Every failure is an InferenceError that names the tensor and says what is wrong.
import { slabArray } from './slab.ts';
import { allocate, ELEMENT_SIZE, isDatatype, type Datatype, type TensorData } from './datatypes.ts';
import { InferenceError } from './errors.ts';
import { ExactInteger, numbersJson, parseJsonExact } from './json-exact.ts';
import { NumberSpan, parseRequestJson, type ParsedRequestJson } from './json-numbers.ts';
import { checkJsonDepth, MAX_JSON_DEPTH, type InputCheck } from './request-guard.ts';
import type { InferenceRequest, InferenceResponse, RequestedOutput } from './protocol.ts';
import { elementCount, fromHalfBits, toHalfBits, type Parameters, type Tensor } from './tensor.ts';

export const BINARY_HEADER = 'inference-header-content-length';

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 0xff],
  INT8: [-0x80, 0x7f],
  UINT16: [0, 0xffff],
  INT16: [-0x8000, 0x7fff],
  UINT32: [0, 0xffffffff],
  INT32: [-0x80000000, 0x7fffffff],
};

// ---------------------------------------------------------------------------------------------------------------
// Request decoding

/**
 * Decodes an infer request body. With `headerLength` (the Inference-Header-Content-Length header), the first
 * `headerLength` bytes are the JSON header and the rest holds the binary tensors in input order.
 *
 * The JSON is read by json-numbers.ts, which parses the inputs' numeric "data" straight into doubles; the result,
 * and every error, is the same as {@link decodeInferRequestSlow}'s: where that parser gives up, or anything fails,
 * the body is decoded again the reference way, so errors always come from there. `check` (request-guard.ts) sees
 * each input's name, datatype and shape before its data is decoded.
 */
export function decodeInferRequest(body: Uint8Array, headerLength?: number, check?: InputCheck): InferenceRequest {
  const binary = headerLength === undefined ? undefined : binaryPart(body, headerLength);
  const jsonBytes = binary === undefined ? body : body.subarray(0, headerLength);
  const fast = parseRequestJson(jsonBytes);
  if (fast !== null) {
    try {
      return plainRequest(fast.value, binary, fast, check) ?? requestFromJsonWith(fast.value, binary, fast, check);
    } catch {
      // The reference path below throws the error (the same one).
    }
  }
  checkJsonDepth(jsonBytes, MAX_JSON_DEPTH, check?.early);
  return requestFromText(utf8Decoder.decode(jsonBytes), binary, check, true);
}

/** The reference decoder: JSON.parse on the whole header, then {@link requestFromJson}. Kept for tests and benches. */
export function decodeInferRequestSlow(body: Uint8Array, headerLength?: number): InferenceRequest {
  const binary = headerLength === undefined ? undefined : binaryPart(body, headerLength);
  return requestFromText(utf8Decoder.decode(binary === undefined ? body : body.subarray(0, headerLength)), binary);
}

function binaryPart(body: Uint8Array, headerLength: number): Uint8Array {
  if (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.length) {
    throw new InferenceError(
      'BINARY_SIZE_MISMATCH',
      `Inference-Header-Content-Length is ${headerLength} but the body has ${body.length} bytes`,
    );
  }
  return body.subarray(headerLength);
}

function requestFromText(text: string, binary: Uint8Array | undefined, check?: InputCheck, scanned = false): InferenceRequest {
  if (!scanned) checkJsonDepth(text, MAX_JSON_DEPTH, check?.early);
  let parsed: unknown;
  try {
    parsed = parseJsonExact(text);
  } catch (e) {
    throw new InferenceError('INVALID_JSON', `request body is not valid JSON: ${(e as Error).message}`);
  }
  return requestFromJsonWith(parsed, binary, undefined, check);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function parametersOf(x: unknown, where: string): Parameters | undefined {
  if (x === undefined) return undefined;
  if (!isObject(x)) throw new InferenceError('INVALID_REQUEST', `${where}.parameters must be an object`);
  return x as Parameters;
}

/** Builds a request from an already-parsed JSON value (Lambda direct invocation and browsers use this too). */
export function requestFromJson(parsed: unknown, binary?: Uint8Array, check?: InputCheck): InferenceRequest {
  return requestFromJsonWith(parsed, binary, undefined, check);
}

/**
 * {@link requestFromJson}, where an input's "data" may be a NumberSpan of `values` (from parseRequestJson): its
 * numbers, already parsed and flattened; where fromNumbers does not take them, they are read as the plain array
 * flatten() would have made of them, for the same error.
 */
function requestFromJsonWith(parsed: unknown, binary: Uint8Array | undefined, fast: ParsedRequestJson | undefined, check?: InputCheck): InferenceRequest {
  if (!isObject(parsed)) throw new InferenceError('INVALID_REQUEST', 'request body must be a JSON object with an "inputs" array');
  const { id, inputs, outputs } = parsed;
  if (id !== undefined && typeof id !== 'string') throw new InferenceError('INVALID_REQUEST', '"id" must be a string');
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new InferenceError('INVALID_REQUEST', 'request must have a non-empty "inputs" array');
  }
  const parameters = parametersOf(parsed.parameters, 'request');
  let offset = 0;
  const decoded: Tensor[] = inputs.map((raw, i) => {
    const where = `inputs[${i}]`;
    if (!isObject(raw)) throw new InferenceError('INVALID_REQUEST', `${where} must be an object`);
    const name = raw.name;
    if (typeof name !== 'string' || !name) throw new InferenceError('INVALID_REQUEST', `${where}.name must be a non-empty string`);
    const label = `input '${name}'`;
    const shape = shapeOf(raw.shape, label);
    const datatype = raw.datatype;
    if (!isDatatype(datatype)) {
      throw new InferenceError('UNSUPPORTED_DATATYPE', `${label}: datatype ${JSON.stringify(datatype)} is not a v2 datatype (BOOL, UINT8…UINT64, INT8…INT64, FP16, FP32, FP64, BYTES)`);
    }
    check?.(name, datatype, shape);
    const tparams = parametersOf(raw.parameters, label);
    const binarySize = tparams?.binary_data_size;
    let data: TensorData;
    if (binarySize !== undefined) {
      if (!binary) {
        throw new InferenceError('BINARY_SIZE_MISMATCH', `${label} has binary_data_size but the request has no Inference-Header-Content-Length header`);
      }
      if (typeof binarySize !== 'number' || !Number.isInteger(binarySize) || binarySize < 0) {
        throw new InferenceError('BINARY_SIZE_MISMATCH', `${label}: binary_data_size must be a non-negative integer`);
      }
      if (offset + binarySize > binary.length) {
        throw new InferenceError('BINARY_SIZE_MISMATCH', `${label}: binary_data_size ${binarySize} runs past the end of the body (${binary.length - offset} bytes left)`);
      }
      data = fromBinary(binary.subarray(offset, offset + binarySize), datatype, shape, label);
      offset += binarySize;
      if (raw.data !== undefined) throw new InferenceError('INVALID_REQUEST', `${label} has both "data" and binary_data_size`);
    } else {
      if (raw.data === undefined) throw new InferenceError('INVALID_REQUEST', `${label} has no "data" (and no binary_data_size)`);
      const span = raw.data;
      data =
        fast !== undefined && span instanceof NumberSpan
          ? (fromNumbers(fast, span.offset, span.count, datatype, shape) ??
            fromJsonData(Array.from(fast.values.subarray(span.offset, span.offset + span.count)), datatype, shape, label))
          : fromJsonData(span, datatype, shape, label);
    }
    const t: Tensor = { name, datatype, shape, data };
    if (tparams) {
      const { binary_data_size: _ignored, ...rest } = tparams;
      if (Object.keys(rest).length) t.parameters = rest;
    }
    return t;
  });
  if (binary && offset !== binary.length) {
    throw new InferenceError('BINARY_SIZE_MISMATCH', `binary_data_size values add up to ${offset} bytes but ${binary.length} bytes follow the JSON header`);
  }
  const request: InferenceRequest = { inputs: decoded };
  if (id !== undefined) request.id = id;
  if (parameters) request.parameters = parameters;
  if (outputs !== undefined) request.outputs = outputsOf(outputs);
  return request;
}

function shapeOf(x: unknown, label: string): number[] {
  if (!Array.isArray(x) || !x.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new InferenceError('INVALID_REQUEST', `${label}: "shape" must be an array of non-negative integers, got ${JSON.stringify(x)}`);
  }
  return x as number[];
}

function outputsOf(x: unknown): RequestedOutput[] {
  if (!Array.isArray(x)) throw new InferenceError('INVALID_REQUEST', '"outputs" must be an array of {name}');
  return x.map((o, i) => {
    if (!isObject(o) || typeof o.name !== 'string') throw new InferenceError('INVALID_REQUEST', `outputs[${i}] must be an object with a "name" string`);
    const r: RequestedOutput = { name: o.name };
    const p = parametersOf(o.parameters, `outputs[${i}]`);
    if (p) r.parameters = p;
    return r;
  });
}

/** Flattens nested `data` (row-major) without recursion cost for the common flat case. */
function flatten(data: unknown[], label: string): unknown[] {
  if (data.length === 0 || !Array.isArray(data[0])) {
    for (const v of data) if (Array.isArray(v)) throw new InferenceError('INVALID_DATA', `${label}: "data" mixes nested arrays and values`);
    return data;
  }
  const out: unknown[] = [];
  // Bounded: data parsed elsewhere (gRPC JSON, a Lambda event) has not been through checkJsonDepth.
  const walk = (a: unknown[], depth: number) => {
    if (depth > MAX_JSON_DEPTH) throw new InferenceError('NESTING_TOO_DEEP', `${label}: "data" nests arrays more than ${MAX_JSON_DEPTH} levels deep`);
    const nested = Array.isArray(a[0]);
    for (const v of a) {
      if (Array.isArray(v) !== nested) throw new InferenceError('INVALID_DATA', `${label}: "data" mixes nested arrays and values`);
      if (nested) walk(v as unknown[], depth + 1);
      else out.push(v);
    }
  };
  walk(data, 1);
  return out;
}

function badValue(label: string, values: unknown[], i: number, what: string): never {
  const v = values[i];
  const shown = v instanceof ExactInteger ? v.text : typeof v === 'number' ? String(v) : JSON.stringify(v);
  throw new InferenceError('INVALID_DATA', `${label}: data[${i}] = ${shown} is not ${what}`);
}

/** A JSON number element: an ExactInteger (a long integer token) counts as its double. */
function numberOf(v: unknown): unknown {
  return v instanceof ExactInteger ? v.number : v;
}

function fromJsonData(raw: unknown, datatype: Datatype, shape: number[], label: string): TensorData {
  const n = elementCount(shape);
  const values = Array.isArray(raw) ? flatten(raw, label) : [raw];
  if (values.length !== n) {
    throw new InferenceError('DATA_LENGTH_MISMATCH', `${label}: shape ${JSON.stringify(shape)} needs ${n} elements but "data" has ${values.length}`);
  }
  switch (datatype) {
    case 'FP32':
    case 'FP64': {
      const out = datatype === 'FP32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = numberOf(values[i]);
        if (typeof v !== 'number') badValue(label, values, i, `a number (${datatype})`);
        out[i] = v as number;
      }
      return out;
    }
    case 'FP16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        const v = numberOf(values[i]);
        if (typeof v !== 'number') badValue(label, values, i, 'a number (FP16)');
        out[i] = toHalfBits(v as number);
      }
      return out;
    }
    case 'BOOL': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'boolean') badValue(label, values, i, 'true or false (BOOL)');
        out[i] = v ? 1 : 0;
      }
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const out = datatype === 'INT64' ? new BigInt64Array(n) : new BigUint64Array(n);
      const [lo, hi] = datatype === 'INT64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
      for (let i = 0; i < n; i++) {
        const v = values[i];
        let b: bigint | undefined;
        if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
        else if (v instanceof ExactInteger) b = v.value;
        else if (typeof v === 'string' && /^-?\d+$/.test(v)) b = BigInt(v); // exact 64-bit values beyond 2^53
        if (b === undefined || b < lo || b > hi) badValue(label, values, i, `an integer in the ${datatype} range`);
        out[i] = b as bigint;
      }
      return out;
    }
    case 'BYTES': {
      const out: Uint8Array[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'string') badValue(label, values, i, 'a string (BYTES)');
        out[i] = utf8Encoder.encode(v as string);
      }
      return out;
    }
    default: {
      const out = allocate(datatype, n) as Exclude<TensorData, Uint8Array[] | BigInt64Array | BigUint64Array>;
      const [lo, hi] = INT_RANGE[datatype]!;
      for (let i = 0; i < n; i++) {
        const v = numberOf(values[i]);
        if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) badValue(label, values, i, `an integer from ${lo} to ${hi} (${datatype})`);
        out[i] = v as number;
      }
      return out;
    }
  }
}

/**
 * The request {@link requestFromJson} makes of the common body (from parseRequestJson): no request "outputs", no
 * input "parameters", no binary part, every input's "data" a NumberSpan of numbers. Undefined for anything else,
 * including every body requestFromJson refuses; nothing here throws an InferenceError, so it needs no messages.
 */
function plainRequest(parsed: Record<string, unknown>, binary: Uint8Array | undefined, fast: ParsedRequestJson, check?: InputCheck): InferenceRequest | undefined {
  const { id, inputs, outputs, parameters } = parsed;
  if ((id !== undefined && typeof id !== 'string') || outputs !== undefined) return undefined;
  if (parameters !== undefined && !isObject(parameters)) return undefined;
  if (!Array.isArray(inputs) || inputs.length === 0) return undefined;
  if (binary !== undefined && binary.length !== 0) return undefined;
  const decoded: Tensor[] = new Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const raw: unknown = inputs[i];
    if (!isObject(raw) || raw.parameters !== undefined) return undefined;
    const { name, shape, datatype, data: span } = raw;
    if (typeof name !== 'string' || name === '' || !Array.isArray(shape) || !isDatatype(datatype) || !(span instanceof NumberSpan)) return undefined;
    for (let j = 0; j < shape.length; j++) {
      const d: unknown = shape[j];
      if (!Number.isInteger(d) || (d as number) < 0) return undefined;
    }
    check?.(name, datatype, shape as number[]);
    const data = fromNumbers(fast, span.offset, span.count, datatype, shape as number[]);
    if (data === undefined) return undefined;
    decoded[i] = { name, datatype, shape: shape as number[], data };
  }
  const request: InferenceRequest = { inputs: decoded };
  if (id !== undefined) request.id = id;
  if (parameters !== undefined) request.parameters = parameters as Parameters;
  return request;
}

/**
 * What {@link fromJsonData} makes of flattened numbers (`count` of them from `offset` in `values`), copied out;
 * undefined where it would throw, and for BOOL and BYTES (numbers are never right there).
 */
function fromNumbers(fast: ParsedRequestJson, offset: number, count: number, datatype: Datatype, shape: number[]): TensorData | undefined {
  const values = fast.values;
  const n = elementCount(shape);
  if (count !== n) return undefined;
  switch (datatype) {
    case 'FP32': {
      const out = slabArray(Float32Array, n);
      if (n > 128) out.set(values.subarray(offset, offset + n));
      else for (let i = 0; i < n; i++) out[i] = values[offset + i];
      return out;
    }
    case 'FP64': {
      const out = slabArray(Float64Array, n);
      out.set(values.subarray(offset, offset + n));
      return out;
    }
    case 'FP16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = toHalfBits(values[offset + i]);
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const out = datatype === 'INT64' ? new BigInt64Array(n) : new BigUint64Array(n);
      const lo = datatype === 'INT64' ? -(2 ** 63) : 0;
      const hi = datatype === 'INT64' ? 2 ** 63 : 2 ** 64;
      const exact = fast.exact;
      for (let i = 0; i < n; i++) {
        const big = exact?.get(offset + i);
        if (big !== undefined) {
          // The digits, not the double: INT64/UINT64 beyond 2^53 stay exact.
          if (big < BigInt(lo) || big >= BigInt(hi)) return undefined;
          out[i] = big;
          continue;
        }
        const v = values[offset + i];
        // Integral doubles in [lo, hi) are exactly those whose BigInt is in range (2^63 and 2^64 are not).
        if (!Number.isInteger(v) || v < lo || v >= hi) return undefined;
        out[i] = BigInt(v);
      }
      return out;
    }
    case 'BOOL':
    case 'BYTES':
      return undefined;
    default: {
      const out = allocate(datatype, n) as Exclude<TensorData, Uint8Array[] | BigInt64Array | BigUint64Array>;
      const [lo, hi] = INT_RANGE[datatype]!;
      for (let i = 0; i < n; i++) {
        const v = values[offset + i];
        if (!Number.isInteger(v) || v < lo || v > hi) return undefined;
        out[i] = v;
      }
      return out;
    }
  }
}

/**
 * Reads one binary tensor (little-endian). The bytes are copied (into a slab, see slab.ts) so that the typed array
 * is aligned and does not keep the request body alive.
 */
function fromBinary(bytes: Uint8Array, datatype: Datatype, shape: number[], label: string): TensorData {
  const n = elementCount(shape);
  if (datatype === 'BYTES') {
    const out: Uint8Array[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let p = 0;
    while (p < bytes.length) {
      if (p + 4 > bytes.length) throw new InferenceError('BINARY_SIZE_MISMATCH', `${label}: truncated BYTES length prefix at byte ${p}`);
      const len = view.getUint32(p, true);
      p += 4;
      if (p + len > bytes.length) throw new InferenceError('BINARY_SIZE_MISMATCH', `${label}: BYTES element ${out.length} claims ${len} bytes but only ${bytes.length - p} remain`);
      out.push(bytes.slice(p, p + len));
      p += len;
    }
    if (out.length !== n) {
      throw new InferenceError('BINARY_SIZE_MISMATCH', `${label}: shape ${JSON.stringify(shape)} needs ${n} BYTES elements but the binary data holds ${out.length}`);
    }
    return out;
  }
  const size = ELEMENT_SIZE[datatype];
  if (bytes.length !== n * size) {
    throw new InferenceError(
      'BINARY_SIZE_MISMATCH',
      `${label}: binary_data_size is ${bytes.length} bytes but shape ${JSON.stringify(shape)} of ${datatype} needs ${n * size}`,
    );
  }
  const copy = slabArray(Uint8Array, bytes.length);
  copy.set(bytes);
  if (!LITTLE_ENDIAN && size > 1) swapBytes(copy, size);
  const out = allocate(datatype, 0) as Exclude<TensorData, Uint8Array[]>;
  const Ctor = out.constructor as new (b: ArrayBufferLike, o: number, l: number) => TensorData;
  const data = new Ctor(copy.buffer, copy.byteOffset, n);
  if (datatype === 'BOOL') {
    for (let i = 0; i < n; i++) {
      if ((data as Uint8Array)[i] > 1) throw new InferenceError('INVALID_DATA', `${label}: BOOL element ${i} is ${(data as Uint8Array)[i]}, not 0 or 1`);
    }
  }
  return data;
}

function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
}

// ---------------------------------------------------------------------------------------------------------------
// Response encoding

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

/** Which outputs go as binary: per-output `binary_data` wins over request-level `binary_data_output`. */
export function binaryOutputNames(request: Pick<InferenceRequest, 'parameters' | 'outputs'>): (name: string) => boolean {
  const all = request.parameters?.binary_data_output === true;
  const per = new Map<string, boolean>();
  for (const o of request.outputs ?? []) {
    const b = o.parameters?.binary_data;
    if (typeof b === 'boolean') per.set(o.name, b);
  }
  return (name) => per.get(name) ?? all;
}

export function encodeInferResponse(response: InferenceResponse, isBinary: (name: string) => boolean = () => false): EncodedBody {
  const chunks: Uint8Array[] = [];
  let raw: (string | undefined)[] | undefined;
  const outputs = response.outputs.map((t, i) => {
    const o: Record<string, unknown> = { name: t.name, datatype: t.datatype, shape: t.shape };
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
  const head: Record<string, unknown> = { model_name: response.model_name };
  if (response.model_version !== undefined) head.model_version = response.model_version;
  if (response.id !== undefined) head.id = response.id;
  if (response.parameters) head.parameters = response.parameters;
  head.outputs = outputs;
  const json = raw === undefined ? JSON.stringify(head) : stringifyWithRawData(head, 'outputs', outputs, raw);
  if (chunks.length === 0) return { body: json, contentType: 'application/json' };
  // The header is encoded into a reused scratch array, then copied with the tensors into one slab-carved body: a
  // TextEncoder.encode result and a new body array would be two ArrayBuffers per response.
  if (headerScratch.length < json.length * 3) headerScratch = new Uint8Array(Math.max(json.length * 3, 1024));
  const headerLength = utf8Encoder.encodeInto(json, headerScratch).written;
  let total = headerLength;
  for (const c of chunks) total += c.length;
  const body = slabArray(Uint8Array, total);
  body.set(headerScratch.subarray(0, headerLength), 0);
  let p = headerLength;
  for (const c of chunks) {
    body.set(c, p);
    p += c.length;
  }
  return { body, contentType: 'application/octet-stream', headerLength };
}

let headerScratch = new Uint8Array(0);

// ---------------------------------------------------------------------------------------------------------------
// Client side (tests, bench, the browser SDK): the same format in the other direction.

/** Encodes a request; inputs named in `binaryInputs` travel as binary tensors. */
export function encodeInferRequest(request: InferenceRequest, binaryInputs: (name: string) => boolean = () => false): EncodedBody {
  const chunks: Uint8Array[] = [];
  let raw: (string | undefined)[] | undefined;
  const inputs = request.inputs.map((t, i) => {
    const o: Record<string, unknown> = { name: t.name, shape: t.shape, datatype: t.datatype };
    if (binaryInputs(t.name)) {
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
  const head: Record<string, unknown> = {};
  if (request.id !== undefined) head.id = request.id;
  if (request.parameters) head.parameters = request.parameters;
  head.inputs = inputs;
  if (request.outputs) head.outputs = request.outputs;
  const json = raw === undefined ? JSON.stringify(head) : stringifyWithRawData(head, 'inputs', inputs, raw);
  if (chunks.length === 0) return { body: json, contentType: 'application/json' };
  const headerBytes = utf8Encoder.encode(json);
  const body = new Uint8Array(headerBytes.length + chunks.reduce((s, c) => s + c.length, 0));
  body.set(headerBytes, 0);
  let p = headerBytes.length;
  for (const c of chunks) {
    body.set(c, p);
    p += c.length;
  }
  return { body, contentType: 'application/octet-stream', headerLength: headerBytes.length };
}

/** Decodes an infer response body (JSON, or JSON header + binary outputs). */
export function decodeInferResponse(body: Uint8Array, headerLength?: number): InferenceResponse {
  const json = headerLength === undefined ? body : body.subarray(0, headerLength);
  const parsed = parseJsonExact(utf8Decoder.decode(json)) as Record<string, unknown> & { outputs: Record<string, unknown>[] };
  const binary = headerLength === undefined ? undefined : body.subarray(headerLength);
  let offset = 0;
  const outputs = parsed.outputs.map((o) => {
    const datatype = o.datatype as Datatype;
    const shape = o.shape as number[];
    const params = o.parameters as Parameters | undefined;
    const size = params?.binary_data_size;
    let data: TensorData;
    if (typeof size === 'number' && binary) {
      data = fromBinary(binary.subarray(offset, offset + size), datatype, shape, `output '${o.name}'`);
      offset += size;
    } else data = fromJsonData(o.data, datatype, shape, `output '${o.name}'`);
    return { name: o.name as string, datatype, shape, data } satisfies Tensor;
  });
  return { ...(parsed as object), outputs } as InferenceResponse;
}
