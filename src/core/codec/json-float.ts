// FP32 tensor data as JSON text, written straight into bytes: each value as the shortest decimal that reads back as
// the same float32 (what numpy prints for a float32), not the ~17 digits of the float64 it widens to. The text is
// about half as long, and writing it skips the array of numbers, JSON.stringify and the flattening of the big
// string it returns (BERT-mini's 32,768-float answer, 2026-12-06: those took ~17 ms of the main thread a request).

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
const POW10: number[] = [];
const INV10: number[] = [];
for (let i = 0; i <= 60; i++) {
  POW10.push(Number(`1e${i}`));
  INV10.push(Number(`1e-${i}`));
}
const DIGITS = new Uint8Array(10);

/** Most bytes one float32 takes in {@link writeFloat32}: a sign and 21 digits (just under 1e21, written plain). */
export const FLOAT32_JSON_MAX_BYTES = 22;

/** `x` scaled by 10^k (k may be negative). */
function scaled(x: number, k: number): number {
  return k >= 0 ? x * POW10[k] : x / POW10[-k];
}

/**
 * Writes the float32 value `v` (a number that is exactly a float32, as read from a Float32Array) at `pos` as JSON
 * text; returns the position after it. NaN and ±Infinity are written as those literals (as Triton's clients read
 * them). Zero (either sign) is "0", as JSON.stringify writes it.
 */
export function writeFloat32(v: number, out: Uint8Array, pos: number): number {
  if (v === 0) {
    out[pos] = 48;
    return pos + 1;
  }
  if (v !== v) return writeAscii('NaN', out, pos);
  if (v < 0) {
    out[pos++] = 45;
    v = -v;
  }
  if (v === Infinity) return writeAscii('Infinity', out, pos);
  // The interval of decimals that read back as v: halfway to each float32 neighbour (exact in a double).
  F32[0] = v;
  const bits = U32[0];
  U32[0] = bits + 1;
  const next = F32[0];
  U32[0] = bits - 1;
  const prev = F32[0];
  const hi = next === Infinity ? v + (v - prev) / 2 : (v + next) / 2;
  const lo = (v + prev) / 2;
  // Scale so that v has nine digits before the point.
  // log10(v) from the binary exponent (off by at most one, corrected below).
  let e = Math.floor((((bits >>> 23) & 0xff) - 127) * 0.3010299956639812);
  let k = 8 - e;
  let vs = scaled(v, k);
  while (vs >= 1e9) {
    e++;
    k--;
    vs = scaled(v, k);
  }
  while (vs < 1e8) {
    e--;
    k++;
    vs = scaled(v, k);
  }
  const his = scaled(hi, k);
  const los = scaled(lo, k);
  // A candidate must lie strictly inside, with room for the scaling's rounding (~1e-16 relative, where the interval
  // is at least ~3 units wide at this scale): a tie on the boundary could read back as the neighbour.
  const slack = vs * 1e-14;
  // Nine digits always fit (|round(vs) - vs| <= 0.5, the interval's half-width >= 1.5); try fewer while they do.
  let digits = Math.round(vs);
  let count = 9;
  for (let n = 8; n >= 1; n--) {
    const c = Math.round(vs * INV10[9 - n]);
    const x = c * POW10[9 - n];
    if (x <= los + slack || x >= his - slack) break;
    digits = c;
    count = n;
  }
  // Rounding up may have carried into one more digit (9.9999 -> 10): one digit less, one decade more.
  if (digits >= POW10[count]) {
    digits /= 10;
    e++;
  }
  while (count > 1 && digits % 10 === 0) {
    digits /= 10;
    count--;
  }
  for (let i = count - 1; i >= 0; i--) {
    const q = (digits / 10) | 0;
    DIGITS[i] = 48 + (digits - q * 10);
    digits = q;
  }
  // Number.prototype.toString's layout: plain from 1e-6 to below 1e21, an exponent outside.
  if (e >= 21 || e < -6) {
    out[pos++] = DIGITS[0];
    if (count > 1) {
      out[pos++] = 46;
      for (let i = 1; i < count; i++) out[pos++] = DIGITS[i];
    }
    out[pos++] = 101;
    out[pos++] = e < 0 ? 45 : 43;
    return writeAscii(String(e < 0 ? -e : e), out, pos);
  }
  if (e < 0) {
    out[pos++] = 48;
    out[pos++] = 46;
    for (let i = -1; i > e; i--) out[pos++] = 48;
    for (let i = 0; i < count; i++) out[pos++] = DIGITS[i];
    return pos;
  }
  for (let i = 0; i < count; i++) {
    if (i === e + 1) out[pos++] = 46;
    out[pos++] = DIGITS[i];
  }
  for (let i = count; i <= e; i++) out[pos++] = 48;
  return pos;
}

/** Writes an ASCII string; returns the position after it. */
export function writeAscii(s: string, out: Uint8Array, pos: number): number {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}

/** Writes `[v0,v1,…]` for float32 data; `out` must have room for 2 + length × (FLOAT32_JSON_MAX_BYTES + 1) bytes. */
export function writeFloat32Array(d: Float32Array, out: Uint8Array, pos: number): number {
  out[pos++] = 91;
  for (let i = 0; i < d.length; i++) {
    if (i > 0) out[pos++] = 44;
    pos = writeFloat32(d[i], out, pos);
  }
  out[pos++] = 93;
  return pos;
}
