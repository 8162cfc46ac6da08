import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownedArray, slabArray, slabCopy } from './slab.ts';

test('slab arrays are zero-filled, aligned, never overlap, and ownedArray copies only views of a larger buffer', () => {
  const arrays = [];
  // Enough to span several 64 KiB slabs, in sizes that are carved (65 B … 16 KiB) and not (≤ 64 B, > 16 KiB).
  for (let i = 0; i < 400; i++) {
    const n = [3, 17, 100, 784, 1000, 4097, 5000][i % 7];
    const Ctor = [Float32Array, Float64Array, Uint8Array, Int16Array, BigInt64Array][i % 5] as Float32ArrayConstructor;
    const a = slabArray(Ctor, n);
    assert.equal(a.length, n);
    assert.ok(a.every((v) => v === 0 || (v as unknown) === 0n), 'zero-filled');
    assert.equal(a.byteOffset % 8, 0, 'aligned for every element type');
    arrays.push(a);
  }
  // Fill each with its own index; a shared byte would show up as another array's value.
  arrays.forEach((a, i) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength).fill(i % 251));
  arrays.forEach((a, i) => assert.ok(new Uint8Array(a.buffer, a.byteOffset, a.byteLength).every((b) => b === i % 251), `array ${i} overlaps another`));
  assert.ok(arrays.some((a) => a.buffer.byteLength > a.byteLength), 'some arrays are carved from a slab');

  const carved = arrays.find((a) => a.buffer.byteLength > a.byteLength)!;
  const own = ownedArray(carved);
  assert.notEqual(own, carved);
  assert.equal(own.buffer.byteLength, own.byteLength);
  assert.deepEqual(Array.from(own), Array.from(carved));
  const whole = new Float32Array(10);
  assert.equal(ownedArray(whole), whole);
});

test('slabCopy: the bytes as the typed array asked for, aligned, never overlapping slabArray views or each other', () => {
  const made: { a: Float32Array | Float64Array | Uint8Array | Int16Array; seed: number }[] = [];
  for (let i = 0; i < 400; i++) {
    const Ctor = [Float32Array, Float64Array, Uint8Array, Int16Array][i % 4] as Float32ArrayConstructor;
    const n = [1, 8, 16, 17, 100, 784, 2000, 4096, 5000][i % 9];
    const bytes = new Uint8Array(n * Ctor.BYTES_PER_ELEMENT + 3).subarray(3); // unaligned, as after a JSON header
    for (let k = 0; k < bytes.length; k++) bytes[k] = (k * 7 + i) % 256;
    const a = slabCopy(Ctor, bytes, n);
    assert.equal(a.length, n);
    assert.equal(a.byteOffset % 8, 0);
    assert.deepEqual(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), bytes);
    made.push({ a, seed: i });
    slabArray(Float32Array, 50).fill(-1); // interleaved carving: must not touch the copies
  }
  for (const { a, seed } of made) {
    const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    assert.ok(b.every((v, k) => v === (k * 7 + seed) % 256), `copy ${seed} was overwritten`);
  }
});
