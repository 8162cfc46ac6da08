// Small builders and readers for graph rewrites (ZipMap removal, quantization) and for tests that make models.
import { message, onnx } from './onnx.ts';
import { elementCount, toNumber } from './inspect.ts';

const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

export type Dim = number | string | null;

export function valueInfo(name: string, elemType: number, shape: Dim[] | null): onnx.ValueInfoProto {
  const tensorType: onnx.TypeProto.ITensor = { elemType };
  if (shape) tensorType.shape = { dim: shape.map((d) => (d === null ? {} : typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  return message('ValueInfoProto', { name, type: { tensorType } });
}

export type AttrValue = number | string | number[] | string[] | onnx.ITensorProto | onnx.IGraphProto | { floats: number[] } | { ints: number[] } | { f: number };

/** An attribute from a JS value: integers become INT(S); use {f}/{floats} for floats that happen to be whole. */
export function attribute(name: string, v: AttrValue): onnx.AttributeProto {
  const enc = new TextEncoder();
  if (typeof v === 'number') return message('AttributeProto', Number.isInteger(v) ? { name, type: AT.INT, i: v } : { name, type: AT.FLOAT, f: v });
  if (typeof v === 'string') return message('AttributeProto', { name, type: AT.STRING, s: enc.encode(v) });
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) return message('AttributeProto', { name, type: AT.STRINGS, strings: (v as string[]).map((s) => enc.encode(s)) });
    const nums = v as number[];
    return nums.every(Number.isInteger) ? message('AttributeProto', { name, type: AT.INTS, ints: nums }) : message('AttributeProto', { name, type: AT.FLOATS, floats: nums });
  }
  if ('floats' in v) return message('AttributeProto', { name, type: AT.FLOATS, floats: v.floats });
  if ('ints' in v) return message('AttributeProto', { name, type: AT.INTS, ints: v.ints });
  if ('f' in v && typeof v.f === 'number') return message('AttributeProto', { name, type: AT.FLOAT, f: v.f });
  if ('node' in v) return message('AttributeProto', { name, type: AT.GRAPH, g: v as onnx.IGraphProto });
  return message('AttributeProto', { name, type: AT.TENSOR, t: v as onnx.ITensorProto });
}

export function node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, opts: { name?: string; domain?: string } = {}): onnx.NodeProto {
  const fields: onnx.INodeProto = { input: inputs, output: outputs, opType, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) };
  if (opts.name !== undefined) fields.name = opts.name;
  if (opts.domain !== undefined) fields.domain = opts.domain;
  return message('NodeProto', fields);
}

type Typed = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array | Uint16Array | Float64Array;

const TYPED_ELEMENT: [new (n: number) => Typed, number][] = [
  [Float32Array, DT.FLOAT],
  [Int8Array, DT.INT8],
  [Uint8Array, DT.UINT8],
  [Int32Array, DT.INT32],
  [BigInt64Array, DT.INT64],
  [Float64Array, DT.DOUBLE],
];

/** An initializer stored as raw little-endian bytes, the way exporters write them. Uint16Array means float16 bits. */
export function tensor(name: string, dims: number[], data: Typed, elemType?: number): onnx.TensorProto {
  const dataType = elemType ?? (data instanceof Uint16Array ? DT.FLOAT16 : TYPED_ELEMENT.find(([C]) => data instanceof C)![1]);
  const rawData = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return message('TensorProto', { name, dims, dataType, rawData });
}

function rawView(t: onnx.ITensorProto): DataView | undefined {
  const raw = t.rawData;
  // An absent bytes field reads as an empty array (protobufjs's default), not as undefined.
  if (!(raw instanceof Uint8Array) || (raw.length === 0 && elementCount(t) !== 0)) return undefined;
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** A float/double/float16 tensor's values as float32 (wherever ONNX stored them). Throws for external data. */
export function floatValues(t: onnx.ITensorProto): Float32Array {
  const n = elementCount(t);
  const out = new Float32Array(n);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) throw new Error(`tensor '${t.name}' keeps its data in an external file`);
  const view = rawView(t);
  switch (t.dataType) {
    case DT.FLOAT:
      if (view) for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      else out.set(t.floatData ?? []);
      return out;
    case DT.DOUBLE:
      if (view) for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      else out.set(t.doubleData ?? []);
      return out;
    case DT.FLOAT16:
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view ? view.getUint16(i * 2, true) : (t.int32Data?.[i] ?? 0));
      return out;
    default:
      throw new Error(`tensor '${t.name}' is not a float tensor (ONNX type ${t.dataType})`);
  }
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE float32 → float16 bits, rounding to nearest even; overflow becomes ±Infinity. */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}
