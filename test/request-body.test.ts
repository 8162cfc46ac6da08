// Reading request bodies (src/node/request-body.ts): a body over JOIN_AT_END_BYTES is copied into one buffer as it
// arrives rather than joined at its end (that one copy of a 60 MB body blocked the event loop ~200 ms, issue 22).
// These check that every way a body can come — declared length, chunked, gzip — still gives the exact bytes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { V2Request } from '../src/core/index.ts';
import { startHttpServer } from '../src/node/http-server.ts';
import { Readable } from 'node:stream';
import { giveBack, giveBackOutputs, GIVE_BACK_FROM_BYTES } from '../src/runtime/give-back.ts';
import { ALIGN_FROM_BYTES, JOIN_AT_END_BYTES, readRequestBody } from '../src/node/request-body.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function post(port: number, body: Buffer, headers: Record<string, string>, pieces: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: '/echo', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    // In several writes, so the server sees many chunks (and, chunked, many chunk frames).
    const step = Math.ceil(body.length / pieces);
    for (let at = 0; at < body.length; at += step) req.write(body.subarray(at, at + step));
    req.end();
  });
}

describe('request bodies', () => {
  it('gives the exact bytes of small and big bodies, with Content-Length, chunked and gzip', async () => {
    const seen: { hash: string; length: number; backing: number }[] = [];
    const server = await startHttpServer({
      port: 0,
      maxBodyBytes: 16 * 1024 * 1024,
      handler: async (r: V2Request) => {
        const b = r.body!;
        seen.push({ hash: sha(b), length: b.length, backing: b.buffer.byteLength });
        return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' };
      },
    });
    try {
      for (const size of [0, 1000, JOIN_AT_END_BYTES, JOIN_AT_END_BYTES + 1, 5 * 1024 * 1024 + 7]) {
        const body = randomBytes(size);
        for (const how of ['length', 'chunked', 'gzip'] as const) {
          seen.length = 0;
          const sent = how === 'gzip' ? gzipSync(body) : body;
          const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
          if (how === 'length') headers['content-length'] = String(sent.length);
          if (how === 'gzip') headers['content-encoding'] = 'gzip';
          const r = await post(server.port, sent, headers, 37);
          assert.equal(r.status, 200, `${size} bytes, ${how}: ${r.text}`);
          assert.equal(seen[0].length, size, `${size} bytes, ${how}`);
          assert.equal(seen[0].hash, sha(body), `${size} bytes, ${how}`);
          // With a declared length, a big body lives in one buffer of exactly that size (no join at the end).
          if (how === 'length' && size > JOIN_AT_END_BYTES) assert.equal(seen[0].backing, size);
        }
      }
      // Over the limit, declared or not: 413 all the same.
      const over = randomBytes(16 * 1024 * 1024 + 1);
      assert.equal((await post(server.port, over, { 'content-type': 'application/octet-stream' }, 64)).status, 413);
      assert.equal((await post(server.port, gzipSync(over), { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' }, 64)).status, 413);
    } finally {
      await server.close({ timeoutMs: 1000 });
    }
  });

  it('places a big binary body so that its tensors, after the JSON header, start on an 8-byte boundary', async () => {
    const seen: { offset: number; hash: string }[] = [];
    const server = await startHttpServer({
      port: 0,
      handler: async (r: V2Request) => {
        const b = r.body!;
        const headerLength = Number(r.headers['inference-header-content-length'] ?? 0);
        seen.push({ offset: (b.byteOffset + headerLength) % 8, hash: sha(b) });
        return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' };
      },
    });
    try {
      // Below the threshold, at it, and past the one-buffer size; header lengths with every remainder mod 8.
      for (const size of [ALIGN_FROM_BYTES, 600_000, JOIN_AT_END_BYTES + 4097]) {
        for (const headerLength of [161, 162, 163, 164, 165, 166, 167, 168]) {
          seen.length = 0;
          const body = randomBytes(size);
          const headers = { 'content-type': 'application/octet-stream', 'content-length': String(size), 'inference-header-content-length': String(headerLength) };
          const r = await post(server.port, body, headers, 23);
          assert.equal(r.status, 200, r.text);
          assert.equal(seen[0].hash, sha(body), `${size} bytes, header ${headerLength}`);
          assert.equal(seen[0].offset, 0, `${size} bytes, header ${headerLength}: the binary part is aligned`);
        }
      }
    } finally {
      await server.close({ timeoutMs: 1000 });
    }
  });
});

/** A request as readRequestBody reads it, fed the given chunks (each kept by the caller, to look at afterwards). */
function fakeRequest(chunks: Buffer[], headers: Record<string, string>): import('node:http').IncomingMessage {
  const r = new Readable({ read() {} }) as Readable & { headers: Record<string, string>; complete: boolean; socket: unknown };
  r.headers = headers;
  r.complete = false;
  r.socket = { destroy() {} };
  setImmediate(() => {
    for (const c of chunks) r.push(c);
    r.complete = true;
    r.push(null);
  });
  return r as unknown as import('node:http').IncomingMessage;
}

const ownChunks = (n: number, size: number) => Array.from({ length: n }, () => randomBytes(size)).map((b) => {
  const own = Buffer.allocUnsafeSlow(size); // a buffer of its own, as node:http's copies of the socket's bytes are
  b.copy(own);
  return own;
});

describe('giving memory back (src/runtime/give-back.ts)', () => {
  it('frees a buffer a view spans whole, and nothing else', () => {
    const big = new Uint8Array(GIVE_BACK_FROM_BYTES);
    assert.equal(giveBack(big), true);
    assert.equal(big.byteLength, 0, 'detached: its memory is gone');
    const whole = new Uint8Array(2 * GIVE_BACK_FROM_BYTES);
    assert.equal(giveBack(whole.subarray(1)), false, 'a view of part of a buffer');
    assert.equal(whole.byteLength, 2 * GIVE_BACK_FROM_BYTES);
    assert.equal(giveBack(new Uint8Array(GIVE_BACK_FROM_BYTES - 1)), false, 'too small to be worth it');
    const pooled = Buffer.from('from the shared pool');
    assert.equal(giveBack(pooled), false);
    assert.equal(pooled.toString(), 'from the shared pool');
    assert.equal(giveBack(new Uint8Array(new SharedArrayBuffer(GIVE_BACK_FROM_BYTES))), false);
    assert.equal(giveBack(big), false, 'already given back');
  });

  it("frees a timing run's outputs, not an input handed back as an output, not a view of a shared buffer", () => {
    const input = { data: new Float32Array(GIVE_BACK_FROM_BYTES) };
    const own = { data: new Float32Array(GIVE_BACK_FROM_BYTES) };
    const shared = new Float32Array(2 * GIVE_BACK_FROM_BYTES);
    const row = { data: shared.subarray(GIVE_BACK_FROM_BYTES) };
    giveBackOutputs([own, { data: input.data }, row, { data: ['a string tensor'] }], [input]);
    assert.equal(own.data.length, 0, 'the output of its own is freed');
    assert.equal(input.data.length, GIVE_BACK_FROM_BYTES, 'the input is run again: kept');
    assert.equal(shared.length, 2 * GIVE_BACK_FROM_BYTES, 'a row of a bigger buffer is left to the collector');
  });

  it("gives back node:http's chunks once copied into a big body, never a compressed body's or a small one's", async () => {
    const chunks = ownChunks(5, 40_000); // 200 KB: copied into a body buffer of its own
    const expected = Buffer.concat(chunks);
    const body = await readRequestBody(fakeRequest(chunks, { 'content-length': String(expected.length) }), 1 << 24);
    assert.equal(sha(body), sha(expected));
    assert.deepEqual(chunks.map((c) => c.length), [0, 0, 0, 0, 0], 'each chunk freed');
    const many = ownChunks(30, 40_000); // 1.2 MB: over JOIN_AT_END_BYTES, copied chunk by chunk as it comes
    const manyExpected = Buffer.concat(many);
    const manyBody = await readRequestBody(fakeRequest(many, { 'content-length': String(manyExpected.length) }), 1 << 24);
    assert.ok(manyExpected.length > JOIN_AT_END_BYTES);
    assert.equal(sha(manyBody), sha(manyExpected));
    assert.ok(many.every((c) => c.length === 0), 'each chunk freed');

    const plain = ownChunks(2, 20_000); // 40 KB: joined at its end, chunks left to the collector
    const plainBody = await readRequestBody(fakeRequest(plain, { 'content-length': '40000' }), 1 << 24);
    assert.equal(plainBody.length, 40_000);
    assert.deepEqual(plain.map((c) => c.length), [20_000, 20_000]);

    const raw = randomBytes(300_000);
    const zipped = gzipSync(raw);
    const zchunks = [zipped.subarray(0, 1000), zipped.subarray(1000)].map((p) => {
      const own = Buffer.allocUnsafeSlow(p.length);
      p.copy(own);
      return own;
    });
    const unzipped = await readRequestBody(fakeRequest(zchunks, { 'content-encoding': 'gzip' }), 1 << 24);
    assert.equal(sha(unzipped), sha(raw));
    assert.deepEqual(zchunks.map((c) => c.length), [1000, zipped.length - 1000], 'the decompressor owns what it was given');
  });
});
