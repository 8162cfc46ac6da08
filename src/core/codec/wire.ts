// What both directions of the v2 wire format share: the binary extension's header name, UTF-8, byte order.
export const BINARY_HEADER = 'inference-header-content-length';

export const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
export const utf8Encoder = new TextEncoder();
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses each `size`-byte element in place (the wire is little-endian). */
export function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
}
