// Tensors as the protocol sees them: a name, a v2 datatype, a shape and typed storage.
import type { Datatype, TensorData } from './datatypes.ts';

export type Parameters = Record<string, string | number | boolean>;

export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
  parameters?: Parameters;
}

/**
 * The tensors with their typed-array data copied (BYTES items are shared: they are never moved). For a second reader
 * of tensors a worker session may move to its thread meanwhile (runtime/session-host.ts).
 */
export function withOwnData(tensors: readonly Tensor[]): Tensor[] {
  return tensors.map((t) => (ArrayBuffer.isView(t.data) ? { ...t, data: t.data.slice() as Tensor['data'] } : t));
}

/** Whether two shapes have the same rank and the same dimensions from `from` on (1: all but the batch dimension). */
export function sameDims(a: readonly number[], b: readonly number[], from = 0): boolean {
  if (a.length !== b.length) return false;
  for (let d = from; d < a.length; d++) if (a[d] !== b[d]) return false;
  return true;
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// IEEE 754 half precision <-> number. Written out because Float16Array is not in Node 20.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // round to nearest even; may carry into the exponent
  return half;
}

export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
