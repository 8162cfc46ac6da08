// Typed arrays for the short-lived tensors of one request (decoded inputs, encoded response bodies), carved from
// shared 64 KiB ArrayBuffers. Every `new Float32Array(784)` would allocate an ArrayBuffer of its own outside the V8
// heap, which measured about 2 µs on the serving machines: three of them per binary request was a tenth of dais's
// own work per request. Carving a view out of a shared buffer costs a tenth of that.
//
// Regions are never handed out twice: a slab is only dropped (and garbage-collected once no view is left) when the
// next one is started, so a carved array is as private and as zero-filled as a new one. What is shared is its
// `.buffer`, which is larger than the view: code that sends tensors elsewhere must not transfer that buffer, and
// should pass `ownedArray(view)` to postMessage (structured clone copies a view's whole buffer).

export type TypedArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

export interface TypedArrayConstructor<T extends TypedArray> {
  new (length: number): T;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

const SLAB_BYTES = 64 * 1024;
/** Larger arrays get a buffer of their own: the per-allocation cost is small next to filling them. */
const MAX_CARVED_BYTES = 16 * 1024;
/** V8 keeps typed arrays up to this size inside its heap, where allocation is already cheap. */
const ON_HEAP_BYTES = 64;

let slab = new ArrayBuffer(0);
/** The slab as bytes, for slabCopy. */
let slabBytes = new Uint8Array(slab);
let used = 0;

/** A zero-filled typed array of `length` elements, usually a view into a shared slab (see the file comment). */
export function slabArray<T extends TypedArray>(Ctor: TypedArrayConstructor<T>, length: number): T {
  const bytes = length * Ctor.BYTES_PER_ELEMENT;
  if (bytes <= ON_HEAP_BYTES || bytes > MAX_CARVED_BYTES) return new Ctor(length);
  const at = carve(bytes); // before reading `slab`: carving may start a new one
  return new Ctor(slab, at, length);
}

/** Reserves `bytes` of the current slab (a fresh one when it is full); returns where they start, 8-byte aligned. */
function carve(bytes: number): number {
  if (used + bytes > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabBytes = new Uint8Array(slab);
    used = 0;
  }
  const at = used;
  used += (bytes + 7) & ~7; // 8-byte alignment for every element type
  return at;
}

/**
 * A copy of `bytes` as a `Ctor` array of `length` elements (`bytes` holds exactly that many, little-endian as the
 * machine is), carved from the slab like {@link slabArray}'s, in one step: no zero-filled array first, no byte view
 * of it to copy through (one typed array made per tensor, not three). Sizes slabArray does not carve are copied
 * into an array of their own.
 */
export function slabCopy<T extends TypedArray>(Ctor: TypedArrayConstructor<T>, bytes: Uint8Array, length: number): T {
  const n = bytes.byteLength;
  if (n <= ON_HEAP_BYTES || n > MAX_CARVED_BYTES) {
    const out = new Ctor(length);
    new Uint8Array(out.buffer, out.byteOffset, n).set(bytes);
    return out;
  }
  const at = carve(n);
  slabBytes.set(bytes, at);
  return new Ctor(slab, at, length);
}

/** The array itself when it spans its whole buffer, else a copy that does (for postMessage and transfers). */
export function ownedArray<T extends TypedArray>(a: T): T {
  if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) return a;
  return a.slice() as T;
}
