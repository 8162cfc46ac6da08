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
import { InferenceError, READ_IN_PLACE_BYTES, UserError } from '../core/index.ts';
import { giveBack } from '../runtime/give-back.ts';

/** Most bytes read and discarded after the limit before the connection is cut. */
export const DRAIN_BYTES = 64 * 1024 * 1024;
/** Longest wait for the discarded rest of an oversized body. */
export const DRAIN_MS = 10_000;

type Decompressor = Gunzip | Inflate | InflateRaw;

/** Bodies up to this size are joined once at their end; past it, see the top of the file. */
export const JOIN_AT_END_BYTES = 1024 * 1024;

/**
 * Bodies from this size are joined into a buffer of their own placed so that their binary tensors are aligned: the
 * size from which the decoder reads a tensor in place.
 */
export const ALIGN_FROM_BYTES = READ_IN_PLACE_BYTES;

/**
 * A body's bytes as they come. `capacity` is the most it can hold (the declared length, or the limit when none is
 * declared or the body is decompressed): the buffer is allocated at that size without being filled, so the pages
 * a shorter body never writes are never touched.
 *
 * `pad` bytes are left before a big body, so that the binary tensors after its JSON header (whose length the
 * Inference-Header-Content-Length header gives) start on an 8-byte boundary: the decoder can then read them where
 * they are (tensor-read.ts) instead of copying each into a fresh buffer. Fresh big buffers that live through a run
 * are what kept V8 marking the old generation every few requests (MobileNetV2 at one connection, issue 16).
 *
 * When the chunks are node:http's own copies of the socket's bytes (`own`: no decompressor holds them), each one
 * copied into a big body's buffer is given back at once (give-back.ts): nothing else has seen it.
 */
class BodyBytes {
  private chunks: Buffer[] = [];
  private whole: Buffer | undefined;
  size = 0;
  constructor(
    private readonly capacity: number,
    private readonly pad: number,
    private readonly own: boolean,
  ) {}

  add(c: Buffer): void {
    if (this.whole) {
      c.copy(this.whole, this.pad + this.size);
      this.size += c.length;
      if (this.own) giveBack(c);
      return;
    }
    this.chunks.push(c);
    this.size += c.length;
    if (this.size > JOIN_AT_END_BYTES && this.size <= this.capacity) {
      this.whole = Buffer.allocUnsafeSlow(this.pad + this.capacity);
      this.copyChunks(this.whole);
      this.chunks = [];
    }
  }

  private copyChunks(into: Buffer): void {
    let at = this.pad;
    for (const k of this.chunks) {
      at += k.copy(into, at);
      if (this.own) giveBack(k);
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
      this.copyChunks(joined);
      this.chunks = [];
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
  return new Promise((resolve, reject) => new BodyReader(req, limit, resolve, reject).start());
}

/**
 * One request's body being read. A class rather than a nest of closures: the listeners below are anonymous arrows
 * that call its methods, so reading a body creates no named function (under tsx every named closure made per
 * request costs a property definition).
 */
class BodyReader {
  private settled = false;
  /** Set while the rest of a refused body is being discarded: the error the request gets. */
  private refused: InferenceError | undefined;
  private drainTimer: ReturnType<typeof setTimeout> | undefined;
  private inflater: Decompressor | undefined;
  private received = 0;
  private readonly encoding: string | undefined;
  private readonly declared: number;
  private readonly compressed: boolean;
  private readonly body: BodyBytes;
  /** Bytes read and thrown away after a refusal. */
  private discarded = 0;

  constructor(
    private readonly req: IncomingMessage,
    private readonly limit: number,
    private readonly resolve: (b: Uint8Array) => void,
    private readonly reject: (e: InferenceError | ClientAborted) => void,
  ) {
    this.encoding = req.headers['content-encoding'];
    this.declared = Number(req.headers['content-length']);
    this.compressed = this.encoding !== undefined && this.encoding !== '' && this.encoding !== 'identity';
    const declared = this.declared;
    this.body = new BodyBytes(Number.isFinite(declared) && declared >= 0 && !this.compressed ? declared : limit, alignmentPad(req.headers['inference-header-content-length']), !this.compressed);
  }

  start(): void {
    const { req, declared, limit } = this;
    if (Number.isFinite(declared) && declared > limit && declared - limit > DRAIN_BYTES) {
      // Too much to read and discard: refused at once, nothing read (the answer closes the connection).
      this.fail(tooLarge(limit, declared));
      return;
    }
    // A client that goes away mid-body: no 'end' will come, and nobody is left to answer.
    req.on('close', () => {
      if (!req.complete && this.refused === undefined) {
        clearTimeout(this.drainTimer);
        this.fail(new ClientAborted());
      }
    });
    // The error it gets (nobody reads it) and no unhandled 'error' event.
    req.on('error', () => {
      clearTimeout(this.drainTimer);
      this.fail(this.refused ?? new InferenceError('INVALID_REQUEST', 'the request body was cut off before its end'));
    });
    req.on('data', (c: Buffer) => this.data(c));
    req.on('end', () => this.end());
    if (Number.isFinite(declared) && declared > limit) this.drainThen(tooLarge(limit, declared));
  }

  private fail(e: InferenceError | ClientAborted): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(e);
  }

  private done(): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(this.body.bytes());
  }

  /** Stops using the body: the rest is read and discarded, then `e` is reported (see the top of the file). */
  private drainThen(e: InferenceError): void {
    this.refused = e;
    if (this.req.complete) {
      this.fail(e);
      return;
    }
    this.drainTimer = setTimeout(() => this.cut(), DRAIN_MS);
    this.req.resume();
  }

  /** Past the bound: the response still goes out (the listener sends it with connection: close), then the socket is cut. */
  private cut(): void {
    clearTimeout(this.drainTimer);
    this.fail(this.refused!);
    // Node would otherwise keep reading.
    setImmediate(() => this.req.socket.destroy());
  }

  private keep(c: Buffer): boolean {
    if (this.body.size + c.length > this.limit) {
      this.body.drop();
      this.inflater?.destroy();
      this.drainThen(tooLarge(this.limit, undefined, this.inflater !== undefined));
      return false;
    }
    this.body.add(c);
    return true;
  }

  private data(c: Buffer): void {
    if (this.refused !== undefined) {
      this.discarded += c.length;
      if (this.discarded > DRAIN_BYTES) {
        this.req.pause();
        this.cut();
      }
      return;
    }
    if (this.received === 0 && this.inflater === undefined) {
      let inflater: Decompressor | undefined;
      try {
        inflater = decompressorFor(this.encoding, c[0]);
      } catch (e) {
        this.drainThen(e as InferenceError);
        return;
      }
      if (inflater) {
        this.inflater = inflater;
        inflater.on('data', (d: Buffer) => this.keep(d));
        inflater.on('end', () => this.done());
        inflater.on('error', (err) => {
          if (!this.settled) this.drainThen(new InferenceError('INVALID_REQUEST', `the ${this.encoding} request body does not decompress: ${err.message}`));
        });
      }
    }
    this.received += c.length;
    // The compressed bytes count against the limit too.
    if (this.received > this.limit) {
      this.inflater?.destroy();
      this.drainThen(tooLarge(this.limit));
      return;
    }
    const inflater = this.inflater;
    if (inflater) {
      // Backpressure from the decompressor: a body that inflates a lot is not read faster than it is counted.
      if (!inflater.write(c)) {
        this.req.pause();
        inflater.once('drain', () => this.req.resume());
      }
    } else this.keep(c);
  }

  private end(): void {
    if (this.refused !== undefined) {
      clearTimeout(this.drainTimer);
      this.fail(this.refused);
      return;
    }
    if (this.settled) return;
    if (this.received === 0) {
      // An empty body: nothing to decompress (an unknown encoding is still refused).
      try {
        decompressorFor(this.encoding, 0x78);
      } catch (e) {
        this.fail(e as InferenceError);
        return;
      }
      this.done();
    } else if (this.inflater) this.inflater.end();
    else this.done();
  }
}
