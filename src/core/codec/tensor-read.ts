// Reading one tensor's data, from JSON values or from the binary extension's bytes: requests on the server and
// responses on the client read tensors the same way. Every failure is an InferenceError naming the tensor.
import { slabArray, slabCopy } from '../slab.ts';
import { allocate, ARRAY_TYPE, ELEMENT_SIZE, type Datatype, type TensorData } from '../datatypes.ts';
import { InferenceError } from '../errors.ts';
import { ExactInteger } from '../json-exact.ts';
import { MAX_JSON_DEPTH } from '../request-guard.ts';
import { elementCount, toHalfBits } from '../tensor.ts';
import { LITTLE_ENDIAN, swapBytes, utf8Encoder } from './wire.ts';

/** The values a JSON integer element may take in each fixed-width integer datatype below 64 bits. */
export const INT_RANGE: Partial<Record<Datatype, { min: number; max: number }>> = {
  UINT8: { min: 0, max: 0xff },
  INT8: { min: -0x80, max: 0x7f },
  UINT16: { min: 0, max: 0xffff },
  INT16: { min: -0x8000, max: 0x7fff },
  UINT32: { min: 0, max: 0xffffffff },
  INT32: { min: -0x80000000, max: 0x7fffffff },
};

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

export function fromJsonData(raw: unknown, datatype: Datatype, shape: number[], label: string): TensorData {
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
      const { min: lo, max: hi } = INT_RANGE[datatype]!;
      for (let i = 0; i < n; i++) {
        const v = numberOf(values[i]);
        if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) badValue(label, values, i, `an integer from ${lo} to ${hi} (${datatype})`);
        out[i] = v as number;
      }
      return out;
    }
  }
}

/** Tensors from this size are read in place when their bytes are aligned: copying them costs more than it saves. */
export const READ_IN_PLACE_BYTES = 64 * 1024;

/**
 * Reads one binary tensor (little-endian). Small ones are copied (into a slab, see slab.ts) so that the typed array
 * is aligned and does not keep the request body alive; big ones whose bytes are aligned are viewed in place (the
 * typed array then shares the body's memory: callers must not change a decoded tensor's data).
 */
export function fromBinary(bytes: Uint8Array, datatype: Datatype, shape: number[], label: string): TensorData {
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
  const Ctor = ARRAY_TYPE[datatype];
  let data: TensorData;
  if (bytes.length >= READ_IN_PLACE_BYTES && LITTLE_ENDIAN && bytes.byteOffset % size === 0) {
    // A big tensor already aligned (the HTTP server places big bodies so, request-body.ts) is read where it is.
    data = new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
  } else if (LITTLE_ENDIAN) {
    data = slabCopy(Ctor, bytes, n);
  } else {
    const copy = slabArray(Uint8Array, bytes.length);
    copy.set(bytes);
    if (size > 1) swapBytes(copy, size);
    data = new Ctor(copy.buffer, copy.byteOffset, n);
  }
  if (datatype === 'BOOL') {
    for (let i = 0; i < n; i++) {
      if ((data as Uint8Array)[i] > 1) throw new InferenceError('INVALID_DATA', `${label}: BOOL element ${i} is ${(data as Uint8Array)[i]}, not 0 or 1`);
    }
  }
  return data;
}
