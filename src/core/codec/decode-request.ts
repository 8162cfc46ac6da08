// Server side: an infer request body (JSON, or a JSON header followed by binary tensors) into an InferenceRequest.
// Every failure is an InferenceError that names the tensor and says what is wrong.
import { slabArray } from '../slab.ts';
import { allocate, isDatatype, type Datatype, type TensorData } from '../datatypes.ts';
import { InferenceError } from '../errors.ts';
import { parseJsonExact } from '../json-exact.ts';
import { checkJsonDepth, MAX_JSON_DEPTH, type InputCheck } from '../request-guard.ts';
import type { InferenceRequest, RequestedOutput } from '../protocol.ts';
import { elementCount, toHalfBits, type Parameters, type Tensor } from '../tensor.ts';
import { NumberSpan, parseRequestJson, type ParsedRequestJson } from './json-numbers.ts';
import { fromBinary, fromJsonData, INT_RANGE } from './tensor-read.ts';
import { utf8Decoder } from './wire.ts';

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
  checkJsonDepth(jsonBytes, MAX_JSON_DEPTH, check);
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
  if (!scanned) checkJsonDepth(text, MAX_JSON_DEPTH, check);
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
    check?.input(name, datatype, shape);
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
    if (tparams && hasOtherThan(tparams, 'binary_data_size')) {
      const { binary_data_size: _ignored, ...rest } = tparams;
      t.parameters = rest;
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

/** Whether an object has an own enumerable key other than `key` (without copying it, as a rest pattern would). */
function hasOtherThan(o: object, key: string): boolean {
  for (const k in o) if (k !== key && Object.hasOwn(o, k)) return true;
  return false;
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
    check?.input(name, datatype, shape as number[]);
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
      const { min: lo, max: hi } = INT_RANGE[datatype]!;
      for (let i = 0; i < n; i++) {
        const v = values[offset + i];
        if (!Number.isInteger(v) || v < lo || v > hi) return undefined;
        out[i] = v;
      }
      return out;
    }
  }
}

