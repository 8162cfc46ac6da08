// The Open Inference Protocol's tensor datatypes and how each is stored in memory.
// Runtime-agnostic: no node:* imports, so the same code runs in a server, a Lambda and a browser.
import type { TypedArray, TypedArrayConstructor } from './slab.ts';

export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;

export type Datatype = (typeof DATATYPES)[number];

const DATATYPE_SET: ReadonlySet<unknown> = new Set(DATATYPES);

export function isDatatype(x: unknown): x is Datatype {
  return DATATYPE_SET.has(x);
}

/** Typed storage for a tensor's elements. FP16 is kept as raw IEEE half bits in a Uint16Array. */
export type TensorData =
  | Uint8Array // BOOL (0/1), UINT8
  | Int8Array
  | Uint16Array // UINT16, FP16 (bits)
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array
  | Uint8Array[]; // BYTES: one byte string per element

/** Bytes per element in the binary tensor extension; BYTES is variable (4-byte length prefix per element). */
export const ELEMENT_SIZE: Record<Exclude<Datatype, 'BYTES'>, number> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  FP16: 2,
  UINT32: 4,
  INT32: 4,
  FP32: 4,
  UINT64: 8,
  INT64: 8,
  FP64: 8,
};

/**
 * ONNX TensorProto.DataType number → v2 datatype. Types the protocol has no name for (complex, bfloat16 in the
 * REST spec, float8) are absent: callers report them as unsupported.
 */
export const ONNX_ELEMENT_TYPE_TO_DATATYPE: Record<number, Datatype> = {
  1: 'FP32',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'BYTES', // ONNX string
  9: 'BOOL',
  10: 'FP16',
  11: 'FP64',
  12: 'UINT32',
  13: 'UINT64',
};

/** onnxruntime's JS tensor type names ↔ v2 datatypes. */
export const ORT_TYPE_TO_DATATYPE: Record<string, Datatype> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  int8: 'INT8',
  uint16: 'UINT16',
  int16: 'INT16',
  float16: 'FP16',
  uint32: 'UINT32',
  int32: 'INT32',
  float32: 'FP32',
  uint64: 'UINT64',
  int64: 'INT64',
  float64: 'FP64',
  string: 'BYTES',
};

export const DATATYPE_TO_ORT_TYPE: Record<Datatype, string> = Object.fromEntries(
  Object.entries(ORT_TYPE_TO_DATATYPE).map(([k, v]) => [v, k]),
) as Record<Datatype, string>;

/** The typed array each fixed-size datatype is held in (BOOL as bytes, FP16 as its raw bits). */
export const ARRAY_TYPE: Record<Exclude<Datatype, 'BYTES'>, TypedArrayConstructor<TypedArray>> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  INT8: Int8Array,
  UINT16: Uint16Array,
  FP16: Uint16Array,
  INT16: Int16Array,
  UINT32: Uint32Array,
  INT32: Int32Array,
  UINT64: BigUint64Array,
  INT64: BigInt64Array,
  FP32: Float32Array,
  FP64: Float64Array,
} as Record<Exclude<Datatype, 'BYTES'>, TypedArrayConstructor<TypedArray>>;

/** Allocates typed storage for n elements of a datatype. */
export function allocate(datatype: Datatype, n: number): TensorData {
  if (datatype === 'BYTES') return new Array<Uint8Array>(n).fill(new Uint8Array(0));
  return new ARRAY_TYPE[datatype](n) as TensorData;
}
