// Reading an HTTP request body: Content-Encoding gzip/deflate decompressed (tritonclient compresses with
// request_compression_algorithm), the size limit applied to what the body decompresses to (a small gzip bomb gets
// 413, never the memory), and a body over the limit read to its end and thrown away before the 413 is sent.
//
// Why drain: Python's http.client (tritonclient, requests) writes the whole body before it reads a byte of the
// answer, and never sends Expect: 100-continue. A server that answers 413 and closes at once leaves it writing into a
// reset connection: it sees a broken pipe, never the 413. So the rest is read and discarded, up to DRAIN_BYTES and
// DRAIN_MS; past either the connection is cut (the bound keeps a hostile client from holding it).
//
// Why a big body is copied chunk by chunk: joining a 60 MB body's chunks at its end (Buffer.concat) was one
// synchronous copy that blocked the event loop for 180-220 ms (measured with --cpu-prof, issue 22); copying each
// ~64 KiB chunk into one buffer as it arrives spreads that over the reads. Small bodies keep the cheaper join.
import type { IncomingMessage } from 'node:http';
import { createGunzip, createInflate, createInflateRaw, type Gunzip, type Inflate, type InflateRaw } from 'node:zlib';
import { InferenceError, UserError } from '../core/index.ts';

/** Most bytes read and discarded after the limit before the connection is cut. */
export const DRAIN_BYTES = 64 * 1024 * 1024;
/** Longest wait for the discarded rest of an oversized body. */
export const DRAIN_MS = 10_000;

type Decompressor = Gunzip | Inflate | InflateRaw;

/** Bodies up to this size are joined once at their end; past it, see the top of the file. */
export const JOIN_AT_END_BYTES = 1024 * 1024;

/** Bodies from this size are joined into a buffer of their own placed so that their binary tensors are aligned. */
export const ALIGN_FROM_BYTES = 64 * 1024;

/**
 * A body's bytes as they come. `capacity` is the most it can hold (the declared length, or the limit when none is
 * declared or the body is decompressed): the buffer is allocated at that size without being filled, so the pages
 * a shorter body never writes are never touched.
 *
 * `pad` bytes are left before a big body, so that the binary tensors after its JSON header (whose length the
 * Inference-Header-Content-Length header gives) start on an 8-byte boundary: the decoder can then read them where
 * they are (tensor-read.ts) instead of copying each into a fresh buffer. Fresh big buffers that live through a run
 * are what kept V8 marking the old generation every few requests (MobileNetV2 at one connection, issue 16).
 */
class BodyBytes {
  private chunks: Buffer[] = [];
  private whole: Buffer | undefined;
  size = 0;
  constructor(
    private readonly capacity: number,
    private readonly pad: number,
  ) {}

  add(c: Buffer): void {
    if (this.whole) {
      c.copy(this.whole, this.pad + this.size);
      this.size += c.length;
      return;
    }
    this.chunks.push(c);
    this.size += c.length;
    if (this.size > JOIN_AT_END_BYTES && this.size <= this.capacity) {
      this.whole = Buffer.allocUnsafeSlow(this.pad + this.capacity);
      let at = this.pad;
      for (const k of this.chunks) at += k.copy(this.whole, at);
      this.chunks = [];
    }
  }

  drop(): void {
    this.chunks = [];
    this.whole = undefined;
  }

  bytes(): Uint8Array {
    let b: Buffer;
    if (this.whole) b = this.whole.subarray(this.pad, this.pad + this.size);
    else if (this.size >= ALIGN_FROM_BYTES) {
      const joined = Buffer.allocUnsafeSlow(this.pad + this.size);
      let at = this.pad;
      for (const k of this.chunks) at += k.copy(joined, at);
      b = joined.subarray(this.pad);
    } else b = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
}

/** Bytes before a body whose binary part starts `headerLength` bytes in, so that part is 8-byte aligned. */
export function alignmentPad(headerLength: string | string[] | undefined): number {
  const n = typeof headerLength === 'string' ? Number(headerLength) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? (8 - (n % 8)) % 8 : 0;
}

function tooLarge(limit: number, declared?: number, compressed = false): InferenceError {
  const what = declared !== undefined ? `request body of ${declared} bytes` : compressed ? 'request body, decompressed,' : 'request body';
  return new InferenceError('PAYLOAD_TOO_LARGE', `${what} is over the server's limit of ${limit} bytes (--max-body-mb)`);
}

/** The decompressor for a Content-Encoding; undefined for none/identity; throws for any other. */
function decompressorFor(encoding: string | undefined, first: number): Decompressor | undefined {
  const e = (encoding ?? '').trim().toLowerCase();
  if (e === '' || e === 'identity') return undefined;
  if (e === 'gzip' || e === 'x-gzip') return createGunzip();
  // HTTP's deflate is the zlib format, but some clients send raw deflate: a zlib stream's first byte says method 8.
  if (e === 'deflate') return (first & 0x0f) === 8 ? createInflate() : createInflateRaw();
  throw new InferenceError('UNSUPPORTED_CONTENT_ENCODING', `Content-Encoding ${JSON.stringify(encoding)} is not supported: send the body uncompressed, gzip or deflate`);
}

/**
 * The request's body, decompressed. Rejects with PAYLOAD_TOO_LARGE (after draining, see the top of the file) when
 * it is, or decompresses to, more than `limit` bytes; with UNSUPPORTED_CONTENT_ENCODING or INVALID_REQUEST (corrupt
 * compressed data) otherwise.
 */
/** The client closed the connection before its request was whole: nobody to answer, and not a server error. */
export class ClientAborted extends UserError {
  constructor() {
    super('the client closed the connection before the request body was complete');
  }
}

export function readRequestBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const encoding = req.headers['content-encoding'];
    const declared = Number(req.headers['content-length']);
    let settled = false;
    const fail = (e: InferenceError | ClientAborted) => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    const done = () => {
      if (settled) return;
      settled = true;
      resolve(body.bytes());
    };

    /** Set while the rest of a refused body is being discarded: the error the request gets. */
    let refused: InferenceError | undefined;
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    // A client that goes away mid-body: no 'end' will come, and nobody is left to answer.
    req.on('close', () => {
      if (!req.complete && refused === undefined) {
        clearTimeout(drainTimer);
        fail(new ClientAborted());
      }
    });
    // The error it gets (nobody reads it) and no unhandled 'error' event.
    req.on('error', () => {
      clearTimeout(drainTimer);
      fail(refused ?? new InferenceError('INVALID_REQUEST', 'the request body was cut off before its end'));
    });

    /** Stops using the body: the rest is read and discarded, then `e` is reported (see the top of the file). */
    const drainThen = (e: InferenceError) => {
      req.off('data', onData);
      req.off('end', onEnd);
      refused = e;
      if (req.complete) {
        fail(e);
        return;
      }
      let discarded = 0;
      const cut = () => {
        clearTimeout(drainTimer);
        fail(e);
        // Past the bound: the response still goes out (the listener sends it with connection: close), then the
        // socket is cut; Node would otherwise keep reading.
        setImmediate(() => req.socket.destroy());
      };
      drainTimer = setTimeout(cut, DRAIN_MS);
      req.on('data', (c: Buffer) => {
        discarded += c.length;
        if (discarded > DRAIN_BYTES) {
          req.pause();
          cut();
        }
      });
      req.on('end', () => {
        clearTimeout(drainTimer);
        fail(e);
      });
      req.resume();
    };


    let inflater: Decompressor | undefined;
    let received = 0;
    const compressed = encoding !== undefined && encoding !== '' && encoding !== 'identity';
    const body = new BodyBytes(Number.isFinite(declared) && declared >= 0 && !compressed ? declared : limit, alignmentPad(req.headers['inference-header-content-length']));
    const keep = (c: Buffer) => {
      if (body.size + c.length > limit) {
        body.drop();
        inflater?.destroy();
        drainThen(tooLarge(limit, undefined, inflater !== undefined));
        return false;
      }
      body.add(c);
      return true;
    };
    const onData = (c: Buffer) => {
      if (received === 0 && inflater === undefined) {
        try {
          inflater = decompressorFor(encoding, c[0]);
        } catch (e) {
          drainThen(e as InferenceError);
          return;
        }
        inflater?.on('data', keep);
        inflater?.on('end', done);
        inflater?.on('error', (err) => {
          if (!settled) drainThen(new InferenceError('INVALID_REQUEST', `the ${encoding} request body does not decompress: ${err.message}`));
        });
      }
      received += c.length;
      // The compressed bytes count against the limit too.
      if (received > limit) {
        inflater?.destroy();
        drainThen(tooLarge(limit));
        return;
      }
      if (inflater) {
        // Backpressure from the decompressor: a body that inflates a lot is not read faster than it is counted.
        if (!inflater.write(c)) {
          req.pause();
          inflater.once('drain', () => req.resume());
        }
      } else keep(c);
    };
    const onEnd = () => {
      if (settled) return;
      if (received === 0) {
        // An empty body: nothing to decompress (an unknown encoding is still refused).
        try {
          decompressorFor(encoding, 0x78);
        } catch (e) {
          fail(e as InferenceError);
          return;
        }
        done();
      } else if (inflater) inflater.end();
      else done();
    };
    if (Number.isFinite(declared) && declared > limit) {
      if (declared - limit > DRAIN_BYTES) fail(tooLarge(limit, declared));
      else drainThen(tooLarge(limit, declared));
      return;
    }
    req.on('data', onData);
    req.on('end', onEnd);
  });
}
