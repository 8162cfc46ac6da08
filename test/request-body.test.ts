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
import { ALIGN_FROM_BYTES, JOIN_AT_END_BYTES } from '../src/node/request-body.ts';

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
