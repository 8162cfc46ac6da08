import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import {
  binaryOutputNames,
  decodeInferRequest,
  decodeInferRequestSlow,
  decodeInferResponse,
  encodeInferRequest,
  encodeInferResponse,
  toJsonData,
} from './index.ts';
import { DATATYPES, type Datatype } from '../datatypes.ts';
import { InferenceError, type ErrorCode } from '../errors.ts';
import { NumberSpan, parseRequestJson } from './json-numbers.ts';
import type { InferenceRequest, InferenceResponse } from '../protocol.ts';
import { fromHalfBits, toHalfBits, type Tensor } from '../tensor.ts';
import { seeded } from '../../bench/random.ts';

const enc = new TextEncoder();

/** Sample JSON values per datatype, including each type's extremes. */
const SAMPLES: Record<Datatype, unknown[]> = {
  BOOL: [true, false, true, true],
  UINT8: [0, 1, 128, 255],
  UINT16: [0, 1, 40000, 65535],
  UINT32: [0, 1, 3000000000, 4294967295],
  UINT64: [0, 1, 2 ** 53 - 1, 42],
  INT8: [-128, -1, 0, 127],
  INT16: [-32768, -1, 0, 32767],
  INT32: [-2147483648, -1, 0, 2147483647],
  INT64: [-(2 ** 53 - 1), -1, 0, 2 ** 53 - 1],
  FP16: [0, 1, -2, 65504],
  FP32: [0, 1.5, -2.25, 3.4028234663852886e38],
  FP64: [0, Math.PI, -1e300, 5e-324],
  BYTES: ['', 'hello', 'héllo wörld', '\u0000x'],
};

function requestJson(datatype: Datatype, data: unknown, shape = [2, 2]) {
  return enc.encode(JSON.stringify({ id: 'r1', inputs: [{ name: 'x', shape, datatype, data }] }));
}

function expectCode(fn: () => unknown, code: ErrorCode, pattern?: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InferenceError, `expected InferenceError, got ${e}`);
    assert.equal(e.code, code);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

test('FP16 conversion matches IEEE half precision', () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [0.1, 0x2e66],
    [2 ** -24, 0x0001],
    [1e-8, 0x0000],
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ];
  for (const [v, bits] of cases) assert.equal(toHalfBits(v), bits, `toHalfBits(${v})`);
  assert.ok(Number.isNaN(fromHalfBits(toHalfBits(NaN))));
  for (const [, bits] of cases) assert.equal(toHalfBits(fromHalfBits(bits)), bits);
  assert.equal(fromHalfBits(0x2e66), 0.0999755859375);
});

for (const datatype of DATATYPES) {
  test(`JSON round trip: ${datatype}`, () => {
    const req = decodeInferRequest(requestJson(datatype, SAMPLES[datatype]));
    assert.equal(req.id, 'r1');
    const t = req.inputs[0];
    assert.equal(t.datatype, datatype);
    assert.deepEqual(t.shape, [2, 2]);
    const back = toJsonData(t);
    const expected = datatype === 'FP32' ? SAMPLES.FP32.map((v) => Math.fround(v as number)) : SAMPLES[datatype];
    assert.deepEqual(back, expected);
  });

  test(`binary round trip: ${datatype}`, () => {
    const t = decodeInferRequest(requestJson(datatype, SAMPLES[datatype])).inputs[0];
    const encoded = encodeInferRequest({ inputs: [t] }, () => true);
    assert.equal(encoded.contentType, 'application/octet-stream');
    assert.ok(encoded.headerLength! > 0);
    const header = JSON.parse(new TextDecoder().decode((encoded.body as Uint8Array).subarray(0, encoded.headerLength)));
    assert.equal(header.inputs[0].data, undefined);
    const size = header.inputs[0].parameters.binary_data_size;
    if (datatype === 'BYTES') assert.equal(size, 4 * 4 + 0 + 5 + enc.encode('héllo wörld').length + 2);
    else if (datatype === 'BOOL') assert.equal(size, 4);
    const decoded = decodeInferRequest(encoded.body as Uint8Array, encoded.headerLength).inputs[0];
    assert.deepEqual(toJsonData(decoded), toJsonData(t));
  });
}

test('nested data is flattened row-major', () => {
  const req = decodeInferRequest(requestJson('INT32', [[1, 2, 3], [4, 5, 6]], [2, 3]));
  assert.deepEqual(Array.from(req.inputs[0].data as Int32Array), [1, 2, 3, 4, 5, 6]);
  const deep = decodeInferRequest(requestJson('FP64', [[[1], [2]], [[3], [4]]], [2, 2, 1]));
  assert.deepEqual(Array.from(deep.inputs[0].data as Float64Array), [1, 2, 3, 4]);
});

test('INT64 accepts exact decimal strings beyond 2^53', () => {
  const req = decodeInferRequest(requestJson('INT64', ['9223372036854775807', '-9223372036854775808'], [2]));
  assert.deepEqual(Array.from(req.inputs[0].data as BigInt64Array), [9223372036854775807n, -9223372036854775808n]);
});

test('outputs and parameters are carried through', () => {
  const body = enc.encode(
    JSON.stringify({
      parameters: { binary_data_output: true, priority: 1 },
      inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1], parameters: { note: 'a' } }],
      outputs: [{ name: 'y', parameters: { binary_data: false } }, { name: 'z' }],
    }),
  );
  const req = decodeInferRequest(body);
  assert.deepEqual(req.parameters, { binary_data_output: true, priority: 1 });
  assert.deepEqual(req.inputs[0].parameters, { note: 'a' });
  const isBinary = binaryOutputNames(req);
  assert.equal(isBinary('y'), false);
  assert.equal(isBinary('z'), true);
});

test('response encoding: JSON and binary outputs mixed, decodable by a client', () => {
  const outputs: Tensor[] = [
    { name: 'p', datatype: 'FP32', shape: [1, 3], data: new Float32Array([0.25, 0.5, 0.25]) },
    { name: 'label', datatype: 'INT64', shape: [1], data: new BigInt64Array([7n]) },
  ];
  const json = encodeInferResponse({ model_name: 'm', model_version: '1', id: 'abc', outputs });
  assert.equal(json.contentType, 'application/json');
  assert.deepEqual(JSON.parse(json.body as string), {
    model_name: 'm',
    model_version: '1',
    id: 'abc',
    outputs: [
      { name: 'p', datatype: 'FP32', shape: [1, 3], data: [0.25, 0.5, 0.25] },
      { name: 'label', datatype: 'INT64', shape: [1], data: [7] },
    ],
  });
  const bin = encodeInferResponse({ model_name: 'm', outputs }, (n) => n === 'p');
  assert.equal(bin.contentType, 'application/octet-stream');
  const body = bin.body as Uint8Array;
  const head = JSON.parse(new TextDecoder().decode(body.subarray(0, bin.headerLength)));
  assert.deepEqual(head.outputs[0], { name: 'p', datatype: 'FP32', shape: [1, 3], parameters: { binary_data_size: 12 } });
  assert.equal(body.length, bin.headerLength! + 12);
  const decoded = decodeInferResponse(body, bin.headerLength);
  assert.deepEqual(Array.from(decoded.outputs[0].data as Float32Array), [0.25, 0.5, 0.25]);
  assert.deepEqual(Array.from(decoded.outputs[1].data as BigInt64Array), [7n]);
});

// --- one test per class of bad input --------------------------------------------------------------------------

test('malformed JSON → INVALID_JSON', () => {
  expectCode(() => decodeInferRequest(enc.encode('{"inputs": [')), 'INVALID_JSON', /not valid JSON/);
});

test('request without inputs → INVALID_REQUEST', () => {
  expectCode(() => decodeInferRequest(enc.encode('{}')), 'INVALID_REQUEST', /inputs/);
  expectCode(() => decodeInferRequest(enc.encode('[1,2]')), 'INVALID_REQUEST');
  expectCode(() => decodeInferRequest(enc.encode('{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}')), 'INVALID_REQUEST', /name/);
  expectCode(() => decodeInferRequest(requestJson('FP32', [1], [-1])), 'INVALID_REQUEST', /shape/);
  expectCode(() => decodeInferRequest(enc.encode('{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}')), 'INVALID_REQUEST', /no "data"/);
  expectCode(() => decodeInferRequest(enc.encode('{"id": 5, "inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}')), 'INVALID_REQUEST', /id/);
});

test('unknown datatype → UNSUPPORTED_DATATYPE naming the tensor', () => {
  expectCode(() => decodeInferRequest(requestJson('FLOAT' as Datatype, [1], [1])), 'UNSUPPORTED_DATATYPE', /input 'x'.*FLOAT/);
});

test('data length that does not match the shape → DATA_LENGTH_MISMATCH', () => {
  expectCode(() => decodeInferRequest(requestJson('FP32', [1, 2, 3], [2, 2])), 'DATA_LENGTH_MISMATCH', /input 'x'.*needs 4 elements.*has 3/);
});

test('values outside the datatype → INVALID_DATA', () => {
  expectCode(() => decodeInferRequest(requestJson('INT8', [1, 2, 3, 200])), 'INVALID_DATA', /data\[3\] = 200/);
  expectCode(() => decodeInferRequest(requestJson('FP32', [1, 'a', 3, 4])), 'INVALID_DATA', /data\[1\]/);
  expectCode(() => decodeInferRequest(requestJson('UINT32', [1, 2, 3, -1])), 'INVALID_DATA');
  expectCode(() => decodeInferRequest(requestJson('INT32', [1, 2, 3, 1.5])), 'INVALID_DATA');
  expectCode(() => decodeInferRequest(requestJson('BOOL', [1, 0, 1, 0])), 'INVALID_DATA', /true or false/);
  expectCode(() => decodeInferRequest(requestJson('BYTES', [1, 2, 3, 4])), 'INVALID_DATA', /string/);
  expectCode(() => decodeInferRequest(requestJson('INT64', ['1', '2', '3', '9223372036854775808'])), 'INVALID_DATA');
  expectCode(() => decodeInferRequest(requestJson('FP32', [[1, 2], 3, 4])), 'INVALID_DATA', /mixes/);
});

test('bad binary sizes → BINARY_SIZE_MISMATCH', () => {
  const t: Tensor = { name: 'x', datatype: 'FP32', shape: [2], data: new Float32Array([1, 2]) };
  const good = encodeInferRequest({ inputs: [t] }, () => true);
  const body = good.body as Uint8Array;
  // header length past the body
  expectCode(() => decodeInferRequest(body, body.length + 1), 'BINARY_SIZE_MISMATCH', /Inference-Header-Content-Length/);
  // body shorter than the declared sizes
  expectCode(() => decodeInferRequest(body.subarray(0, body.length - 1), good.headerLength), 'BINARY_SIZE_MISMATCH', /runs past the end/);
  // extra trailing bytes
  const longer = new Uint8Array(body.length + 4);
  longer.set(body);
  expectCode(() => decodeInferRequest(longer, good.headerLength), 'BINARY_SIZE_MISMATCH', /add up to/);
  // size that does not fit shape × datatype
  const head = enc.encode(JSON.stringify({ inputs: [{ name: 'x', shape: [3], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }));
  const wrong = new Uint8Array(head.length + 8);
  wrong.set(head);
  expectCode(() => decodeInferRequest(wrong, head.length), 'BINARY_SIZE_MISMATCH', /input 'x'.*needs 12/);
  // binary_data_size without the header
  expectCode(() => decodeInferRequest(head), 'BINARY_SIZE_MISMATCH', /no Inference-Header-Content-Length/);
  // BYTES with a length prefix that runs past the data
  const bh = enc.encode(JSON.stringify({ inputs: [{ name: 's', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 6 } }] }));
  const bb = new Uint8Array(bh.length + 6);
  bb.set(bh);
  new DataView(bb.buffer).setUint32(bh.length, 100, true);
  expectCode(() => decodeInferRequest(bb, bh.length), 'BINARY_SIZE_MISMATCH', /claims 100 bytes/);
  // BOOL bytes other than 0/1
  const boolHead = enc.encode(JSON.stringify({ inputs: [{ name: 'b', shape: [1], datatype: 'BOOL', parameters: { binary_data_size: 1 } }] }));
  const boolBody = new Uint8Array(boolHead.length + 1);
  boolBody.set(boolHead);
  boolBody[boolHead.length] = 7;
  expectCode(() => decodeInferRequest(boolBody, boolHead.length), 'INVALID_DATA', /BOOL/);
});

// --- the fast JSON decoder against the reference one (JSON.parse on the whole body) -----------------------------

/**
 * A value in comparable form: typed arrays as their type and bytes (so -0, NaN and rounding count). Not their
 * layout: the fast decoder carves its arrays out of shared slabs (slab.ts), the reference one allocates each.
 */
function canon(x: unknown): unknown {
  if (ArrayBuffer.isView(x)) {
    const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    return { typed: x.constructor.name, hex: Buffer.from(bytes).toString('hex') };
  }
  if (Array.isArray(x)) return x.map(canon);
  if (typeof x === 'object' && x !== null) {
    assert.equal(Object.getPrototypeOf(x), Object.prototype);
    return Object.entries(x).map(([k, v]) => [k, canon(v)]); // pairs: the key order counts too
  }
  return x;
}

type Outcome = { ok: unknown } | { threw: Record<string, unknown> };

function outcome(decode: (body: Uint8Array, headerLength?: number) => InferenceRequest, body: Uint8Array, headerLength?: number): Outcome {
  try {
    return { ok: canon(decode(body, headerLength)) };
  } catch (e) {
    if (e instanceof InferenceError) return { threw: { kind: 'InferenceError', code: e.code, status: e.status, message: e.message } };
    return { threw: { kind: (e as Error)?.constructor?.name, message: String((e as Error)?.message ?? e) } };
  }
}

/** Both decoders give the same request, bit for bit, or throw the same error. Returns that outcome. */
function assertSameDecode(body: Uint8Array, headerLength?: number, what?: string): Outcome {
  const fast = outcome(decodeInferRequest, body, headerLength);
  const slow = outcome(decodeInferRequestSlow, body, headerLength);
  assert.deepStrictEqual(fast, slow, what ?? new TextDecoder().decode(body.subarray(0, 3000)));
  return fast;
}


/** Writes random request bodies as text, spelling every number and gap itself. */
class BodyGen {
  readonly r: () => number;
  constructor(seed: number) {
    this.r = seeded(seed);
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += this.int(10);
    return s;
  }
  ws(): string {
    return this.chance(0.6) ? '' : this.pick([' ', ' ', '  ', '\n', '\n  ', '\t', '\r\n', ' \n\t ']);
  }
  /** A JSON number token of any shape (and, now and then, one JSON does not allow). */
  number(): string {
    const sign = this.chance(0.3) ? '-' : '';
    if (this.chance(0.004)) return this.pick(['1.', '01', '-', '.5', '1e', '1e+', '+1', '1.e5', '--1', 'NaN', 'Infinity', '0x1', '1_0', '00']);
    switch (this.int(14)) {
      case 0:
        return sign + '0';
      case 1:
        return sign + this.int(300);
      case 2:
        return sign + this.digits(1) + '.' + this.digits(1 + this.int(4));
      case 3:
        return JSON.stringify(Math.fround((this.r() - 0.5) * 10 ** this.int(6)));
      case 4:
        return JSON.stringify((this.r() - 0.5) * 10 ** (this.int(40) - 20));
      case 5:
        return sign + (1 + this.int(9)) + this.digits(15 + this.int(5)); // 16–20 significant digits
      case 6:
        return sign + '0.' + this.digits(15 + this.int(6));
      case 7:
        return sign + (1 + this.int(9)) + (this.chance(0.5) ? '.' + this.digits(1 + this.int(3)) : '') + this.pick(['e', 'E']) + this.pick(['', '+', '-']) + this.int(30);
      case 8:
        return this.pick(['1e308', '-1e308', '5e-324', '1e400', '-1e400', '1e-400', '2.2250738585072014e-308', '1.7976931348623157e308']);
      case 9:
        return this.pick(['-0', '-0.0', '-0e0', '0e5', '0.000', '-0.0e-3']);
      case 10:
        return sign + this.pick(['127', '128', '255', '256', '32767', '32768', '65535', '65536', '2147483647', '2147483648', '4294967295', '4294967296', '9007199254740991', '9007199254740993', '9223372036854775807', '18446744073709551616']);
      case 11:
        return sign + this.pick(['1.0', '2.50', '1e2', '1E+2', '100e-2', '0.1e1', '12345678.9', '0.30000000000000004']);
      case 12:
        return sign + (1 + this.int(9)) + this.digits(this.int(12));
      default:
        return sign + this.digits(1) + '.' + this.digits(5 + this.int(8));
    }
  }
  /** A JSON string token, sometimes with escapes, non-ASCII, or text that looks like structure. */
  string(): string {
    if (this.chance(0.005)) return this.pick(['"a\tb"', '"a\u0001b"', '"a\nb"', '"\\x"', '"\\u12"', '"a\\"', '"\u007f\u0080"']); // raw control characters, bad escapes
    switch (this.int(11)) {
      case 9:
        return JSON.stringify('ünï ' + 'y'.repeat(this.int(50)) + ' ✓');
      case 10:
        return '"' + 'z'.repeat(20 + this.int(40)) + '\\"q"';
      case 0:
        return '""';
      case 1:
        return JSON.stringify('"data":[1,2]');
      case 2:
        return '"a\\"b\\\\c\\"}]"';
      case 3:
        return JSON.stringify(this.pick(['héllo', 'ünïcødé ✓', '名前', '😀 emoji', 'tab\there', 'line\nbreak']));
      case 4:
        return '"\\u0064ata \\ud83d\\ude00 \\/ \\b\\f\\n\\r\\t"';
      case 5:
        return '"' + 'x'.repeat(this.int(60)) + '"';
      case 6:
        return '"{\\"inputs\\":[{\\"data\\":[3]}]}"';
      default:
        return JSON.stringify(this.pick(['x', 'input', 'image', 'FP32', 'data', 'inputs', 'name', 'k' + this.int(100)]));
    }
  }
  /** Any JSON value; objects may hold "data", "inputs" and other request-like keys. */
  value(depth: number): string {
    const kind = depth > 3 ? this.int(5) : this.int(8);
    switch (kind) {
      case 0:
        return this.number();
      case 1:
        return this.string();
      case 2:
        return this.pick(['true', 'false', 'null']);
      case 3:
        return this.number();
      case 4:
        return this.string();
      case 5:
      case 6: {
        const n = this.int(5);
        return '[' + this.ws() + Array.from({ length: n }, () => this.value(depth + 1)).join(this.ws() + ',' + this.ws()) + this.ws() + ']';
      }
      default: {
        const keys = ['"data"', '"inputs"', '"name"', '"shape"', '"k"', '"parameters"', '"binary_data_size"', '"d\\u0061ta"'];
        const rare = ['"__proto__"', '"toString"', '"constructor"', '"0"', '""'];
        const entries: [string, string][] = [];
        const n = this.int(4);
        for (let i = 0; i < n; i++) {
          // Keys may repeat (JSON.parse keeps the last value) or name things on Object.prototype.
          const k = this.chance(0.05) ? this.pick(rare) : this.pick(keys);
          entries.push([k, k.includes('data') && this.chance(0.6) ? this.numberArray(this.int(6), () => this.number()) : this.value(depth + 1)]);
        }
        return this.object(entries);
      }
    }
  }
  object(entries: [string, string][]): string {
    if (entries.length === 0) return '{' + this.ws() + '}';
    return '{' + this.ws() + entries.map(([k, v]) => k + this.ws() + ':' + this.ws() + v).join(this.ws() + ',' + this.ws()) + this.ws() + '}';
  }
  numberArray(n: number, element: () => string): string {
    return '[' + this.ws() + Array.from({ length: n }, element).join(this.ws() + ',' + this.ws()) + this.ws() + ']';
  }
  /** `shape`'s elements nested around `flat` (row-major), as clients send tensors. */
  nest(flat: string[], shape: number[]): string {
    if (shape.length <= 1) return '[' + flat.join(',' + this.ws()) + ']';
    const inner = shape.slice(1).reduce((a, b) => a * b, 1);
    const parts: string[] = [];
    for (let i = 0; i < shape[0]; i++) parts.push(this.nest(flat.slice(i * inner, (i + 1) * inner), shape.slice(1)));
    return '[' + this.ws() + parts.join(',' + this.ws()) + this.ws() + ']';
  }
  /** An element for `datatype`: mostly valid, sometimes not. */
  element(datatype: string): string {
    if (this.chance(0.004)) return this.value(3);
    if (this.chance(0.003)) return this.pick(['1.', '1e', '1e+', '1E-', '-', '.5', '01', '-01', '1.e5', '+1', '0.5.5', '1e5e5']); // not JSON
    switch (datatype) {
      case 'BOOL':
        return this.chance(0.98) ? this.pick(['true', 'false']) : this.number();
      case 'BYTES':
        return this.chance(0.98) ? this.string() : this.number();
      case 'INT64':
      case 'UINT64':
        return this.chance(0.05) ? JSON.stringify(this.pick(['9223372036854775807', '-9223372036854775808', '18446744073709551615', '12', '-3', '1.5'])) : this.intToken();
      case 'FP16':
      case 'FP32':
      case 'FP64':
        return this.chance(0.85) ? this.pick([this.floatToken(), this.floatToken(), this.number()]) : this.intToken();
      default: {
        // In the datatype's range, mostly.
        const [lo, hi] = ({ UINT8: [0, 255], INT8: [-128, 127], UINT16: [0, 65535], INT16: [-32768, 32767], UINT32: [0, 4294967295], INT32: [-2147483648, 2147483647] } as Record<string, [number, number]>)[datatype] ?? [0, 9];
        if (this.chance(0.97)) return String(this.chance(0.2) ? this.pick([lo, hi]) : lo + this.int(Math.min(hi - lo + 1, 1000)));
        return this.chance(0.5) ? this.intToken() : this.number();
      }
    }
  }
  intToken(): string {
    return this.chance(0.93) ? (this.chance(0.3) ? '-' : '') + this.int(this.pick([2, 128, 256, 40000, 3e9])) : this.number();
  }
  floatToken(): string {
    // What clients send: short decimals, or float32 values printed as doubles.
    return this.chance(0.6) ? (this.chance(0.2) ? '-' : '') + this.int(10) + '.' + this.digits(1 + this.int(4)) : JSON.stringify(Math.fround(this.r() * 4 - 2));
  }
  input(i: number, binaryParts: Uint8Array[] | undefined): string {
    const datatype = this.chance(0.03) ? this.pick(['"FLOAT"', '5', 'null', '"fp32"']) : JSON.stringify(this.pick([...DATATYPES, 'FP32', 'FP32', 'FP32', 'INT32', 'INT64', 'FP64']));
    const dt = datatype.startsWith('"') ? (JSON.parse(datatype) as string) : '';
    const dims = this.int(4);
    const shape = Array.from({ length: dims }, () => this.int(5));
    let count = shape.reduce((a, b) => a * b, 1);
    let shapeText = '[' + shape.join(',' + this.ws()) + ']';
    if (this.chance(0.04)) shapeText = this.pick(['[-1]', '[1.5]', '["2"]', '[-0]', '2', '[2,]', '[1e0]', '[2.0]', '[null]']);
    const entries: [string, string][] = [];
    entries.push(['"name"', this.chance(0.95) ? JSON.stringify('x' + i) : this.pick(['""', '5', this.string()])]);
    entries.push(['"shape"', shapeText]);
    entries.push(['"datatype"', datatype]);
    if (binaryParts && this.chance(0.5)) {
      const size = this.chance(0.9) ? count * ({ BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8 }[dt] ?? 1) : this.int(20);
      const part = new Uint8Array(size);
      for (let j = 0; j < size; j++) part[j] = dt === 'BOOL' ? this.int(2) : this.int(256);
      binaryParts.push(part);
      entries.push(['"parameters"', this.object([['"binary_data_size"', String(size)], ...(this.chance(0.3) ? [['"note"', this.string()] as [string, string]] : [])])]);
    } else {
      if (this.chance(0.05)) count += this.pick([-1, 1]);
      const flat = Array.from({ length: Math.max(0, count) }, () => this.element(dt));
      let data = this.chance(0.25) && count === shape.reduce((a, b) => a * b, 1) && shape.length > 1 ? this.nest(flat, shape) : this.numberArray(flat.length, () => flat.shift()!);
      if (this.chance(0.03)) data = this.pick(['5', '"x"', 'null', '[[1],2]', '[1,[2]]', '{"data":[1]}']);
      // Usually "data"; sometimes a key that only looks like it, or the same key spelled with an escape.
      const dataKey = this.chance(0.95) ? '"data"' : this.pick(['"Data"', '"DATA"', '"data "', '"dat"', '"datas"', '"d\\u0061ta"', '"\\u0064\\u0061\\u0074\\u0061"']);
      if (!this.chance(0.02)) entries.push([dataKey, data]);
      if (this.chance(0.15)) entries.push(['"parameters"', this.object([['"data"', this.numberArray(3, () => this.number())], ['"note"', this.string()]])]);
    }
    if (this.chance(0.1)) entries.push([this.pick(['"extra"', '"data_type"', '"\\u0064ata"', '"Data"']), this.value(2)]);
    if (this.chance(0.02)) entries.push(['"data"', '[1]']); // a second "data": JSON.parse keeps the last
    return this.object(this.shuffle(entries));
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
  /** A request body (bytes) and, for some, a header length with binary tensors after it. */
  request(): { body: Uint8Array; headerLength?: number } {
    const binaryParts: Uint8Array[] | undefined = this.chance(0.1) ? [] : undefined;
    const entries: [string, string][] = [];
    const n = this.chance(0.03) ? 0 : 1 + this.int(3);
    entries.push(['"inputs"', '[' + this.ws() + Array.from({ length: n }, (_, i) => (this.chance(0.02) ? this.value(2) : this.input(i, binaryParts))).join(this.ws() + ',' + this.ws()) + this.ws() + ']']);
    if (this.chance(0.5)) entries.push(['"id"', this.chance(0.95) ? this.string() : this.number()]);
    if (this.chance(0.2)) entries.push(['"parameters"', this.chance(0.9) ? this.object([['"data"', this.numberArray(2, () => this.number())], ['"binary_data_output"', this.pick(['true', 'false'])]]) : '[1]']);
    if (this.chance(0.15)) entries.push(['"outputs"', this.pick(['[{"name":"y"}]', '[{"name":"y","parameters":{"binary_data":true}}]', '[{"nom":"y"}]', '{}'])]);
    if (this.chance(0.15)) entries.push([this.pick(['"data"', '"model_name"', '"\\u0069nputs_x"', '"Inputs"', '"input"', '"__proto__"', '"toString"']), this.value(1)]);
    if (this.chance(0.01)) entries.push(['"inputs"', '[]']);
    let text = this.ws() + this.object(this.shuffle(entries)) + this.ws();
    const mutation = this.int(100);
    if (mutation < 6) text = text.slice(0, this.int(text.length));
    else if (mutation < 10) {
      const at = this.int(text.length);
      text = text.slice(0, at) + this.pick(['{', '}', '[', ']', ',', ':', '"', '\\', '0', '-', 'a', 'é', ' ', '\u0001']) + text.slice(at + (this.chance(0.5) ? 1 : 0));
    } else if (mutation < 12) text = '\ufeff' + text;
    else if (mutation < 14) text += this.pick(['x', '}', '{}', ',', '0', '\u0000']);
    else if (mutation < 15) text = '[' + text + ']';
    let body = new TextEncoder().encode(text);
    if (mutation === 15) body = body.map((b) => (b === 0xc3 ? 0xff : b)); // invalid UTF-8 in strings
    if (!binaryParts) return { body };
    const total = binaryParts.reduce((a, p) => a + p.length, 0) + (this.chance(0.1) ? this.int(3) : 0);
    const out = new Uint8Array(body.length + total);
    out.set(body);
    let p = body.length;
    for (const part of binaryParts) {
      out.set(part.subarray(0, Math.min(part.length, out.length - p)), p);
      p += part.length;
    }
    return { body: out, headerLength: body.length };
  }
}

test('fuzz: random request bodies decode to the same request, bit for bit, or fail with the same error', () => {
  const seed = Number(process.env.DAIS_CODEC_FUZZ_SEED ?? 20240611);
  const count = Number(process.env.DAIS_CODEC_FUZZ_CASES ?? 6000);
  const gen = new BodyGen(seed);
  const tally = { ok: 0, threw: 0, fast: 0, codes: new Map<string, number>() };
  for (let i = 0; i < count; i++) {
    const { body, headerLength } = gen.request();
    const what = `case ${i} (seed ${seed}), header ${headerLength}: ${new TextDecoder().decode(body.subarray(0, headerLength ?? body.length))}`;
    const result = assertSameDecode(body, headerLength, what);
    if ('ok' in result) tally.ok++;
    else {
      tally.threw++;
      const code = String(result.threw.code ?? result.threw.kind);
      tally.codes.set(code, (tally.codes.get(code) ?? 0) + 1);
    }
    if (parseRequestJson(body.subarray(0, headerLength ?? body.length)) !== null) tally.fast++;
  }
  if (process.env.DAIS_CODEC_FUZZ_VERBOSE) console.log({ ...tally, codes: Object.fromEntries(tally.codes) });
  // The mix must exercise both outcomes, the fast parser, and the errors that matter.
  assert.ok(tally.ok > count * 0.15, `only ${tally.ok} of ${count} bodies decoded`);
  assert.ok(tally.fast > count * 0.4, `the fast parser took only ${tally.fast} of ${count} bodies`);
  for (const code of ['INVALID_JSON', 'INVALID_REQUEST', 'INVALID_DATA', 'DATA_LENGTH_MISMATCH', 'UNSUPPORTED_DATATYPE', 'BINARY_SIZE_MISMATCH']) {
    assert.ok((tally.codes.get(code) ?? 0) > 0, `no ${code} among ${[...tally.codes]}`);
  }
});

test('the fast decoder matches the reference on hand-picked edge cases', () => {
  const body = (data: string, datatype = 'FP32', shape = '[2]', extra = '') =>
    enc.encode(`{"inputs":[{"name":"x","shape":${shape},"datatype":"${datatype}","data":${data}${extra}}]}`);
  const same = (b: Uint8Array) => assertSameDecode(b);
  const ok = (b: Uint8Array) => {
    const r = same(b);
    assert.ok('ok' in r, JSON.stringify(r));
    return decodeInferRequest(b);
  };
  // -0 survives into FP64 and FP32, and rounding to float32 is the one each value gets when stored.
  const f64 = ok(body('[-0, 0.1]', 'FP64')).inputs[0].data as Float64Array;
  assert.ok(Object.is(f64[0], -0));
  assert.equal(f64[1], 0.1);
  const f32 = ok(body('[-0.0, 0.1]')).inputs[0].data as Float32Array;
  assert.ok(Object.is(f32[0], -0));
  assert.equal(f32[1], Math.fround(0.1));
  // Values off the fast path, mixed in.
  ok(body('[0.12345678901234568, 1e308]', 'FP64'));
  ok(body('[5e-324, 1e400]', 'FP32'));
  ok(body('[12345678901, 1.5]', 'FP64'));
  // Integer datatypes: the same values, and the same INVALID_DATA messages naming index and value.
  assert.deepEqual(Array.from(ok(body('[-2147483648, 2147483647]', 'INT32')).inputs[0].data as Int32Array), [-2147483648, 2147483647]);
  for (const [data, datatype, message] of [
    ['[1, 1.5]', 'INT32', /data\[1\] = 1.5 is not an integer/],
    ['[1, -0.5]', 'UINT8', /data\[1\] = -0.5/],
    ['[1, 2147483648]', 'INT32', /data\[1\] = 2147483648/],
    ['[1, 1e400]', 'INT32', /data\[1\] = Infinity/],
    // The digits as sent (they are read exactly), not the double they round to.
    ['[1, 9223372036854775808]', 'INT64', /data\[1\] = 9223372036854775808 /],
    ['[1, 0]', 'BOOL', /data\[0\] = 1 is not true or false/],
    ['[1, 2]', 'BYTES', /data\[0\] = 1 is not a string/],
    ['[1, 2, 3]', 'FP32', /needs 2 elements but "data" has 3/],
    ['[[1], [2, 3]]', 'FP32', /needs 2 elements but "data" has 3/],
  ] as const) {
    const r = same(body(data, datatype));
    assert.ok('threw' in r && message.test(String(r.threw.message)), `${data} ${datatype}: ${JSON.stringify(r)}`);
  }
  // -0 as an integer is 0; a -0 dimension is allowed as today.
  assert.ok(Object.is((ok(body('[-0, 1]', 'INT32')).inputs[0].data as Int32Array)[0], 0));
  ok(body('[]', 'FP32', '[-0]'));
  // Empty data for types that never take numbers.
  ok(body('[]', 'BOOL', '[0]'));
  ok(body('[]', 'BYTES', '[0]'));
  // "data" elsewhere stays a plain array; look-alike text in strings changes nothing.
  const params = ok(enc.encode('{"id":"\\"data\\":[1,2]","parameters":{"data":[1,2]},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[3],"parameters":{"data":[4]}}]}'));
  assert.deepEqual(params.parameters, { data: [1, 2] });
  assert.deepEqual(params.inputs[0].parameters, { data: [4] });
  assert.equal(params.id, '"data":[1,2]');
  // A repeated key: JSON.parse keeps the last one; so do we (by leaving it to JSON.parse).
  assert.deepEqual(Array.from(ok(body('[1, 2]', 'FP32', '[2]', ',"data":[3, 4]')).inputs[0].data as Float32Array), [3, 4]);
  // Keys that only look like "data" or "inputs" are not them; escaped spellings are.
  for (const key of ['Data', 'DATA', 'data ', 'dat', 'datas']) {
    const r = same(enc.encode(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","${key}":[1]}]}`));
    assert.ok('threw' in r && /no "data"/.test(String(r.threw.message)), key);
  }
  assert.deepEqual(Array.from(ok(enc.encode('{"\\u0069nputs":[{"name":"x","shape":[1],"datatype":"FP32","d\\u0061ta":[7]}]}')).inputs[0].data as Float32Array), [7]);
  const notInputs = same(enc.encode('{"Inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}'));
  assert.ok('threw' in notInputs && notInputs.threw.code === 'INVALID_REQUEST');
  // __proto__ among parameters is an own property, as with JSON.parse.
  const proto = ok(enc.encode('{"parameters":{"__proto__":{"x":1}},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}'));
  assert.ok(Object.hasOwn(proto.parameters!, '__proto__'));
  // Malformed numbers anywhere: JSON.parse's own message.
  for (const bad of ['1.', '1e', '1e+', '1E-', '-', '.5', '01', '-01', '1.e5', '+1', '0.5.5', '1e5e5', '1,', '[1]]']) {
    for (const text of [
      `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[0.5, ${bad}]}]}`,
      `{"inputs":[{"name":"x","shape":[${bad}],"datatype":"FP32","data":[0.5]}]}`,
      `{"parameters":{"p":${bad}},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[0.5]}]}`,
    ]) {
      const r = same(enc.encode(text));
      assert.ok('threw' in r && r.threw.code === 'INVALID_JSON', `${text}: ${JSON.stringify(r)}`);
    }
  }
  // Truncated and malformed JSON: JSON.parse's own message.
  for (const text of ['{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2', '{"inputs":[{"data":[1,2,]}]}', '{"inputs":[{"data":[01]}]}', '\ufeff{"inputs":[]}']) {
    same(enc.encode(text));
  }
  const truncated = same(enc.encode('{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2'));
  assert.ok('threw' in truncated && truncated.threw.code === 'INVALID_JSON');
});

test('every example request decodes the same, bit for bit, and through the fast parser', () => {
  const examples = new URL('../../../examples/', import.meta.url);
  let n = 0;
  for (const model of readdirSync(examples)) {
    let files: string[];
    try {
      files = readdirSync(new URL(`${model}/requests/`, examples)).filter((f) => f.endsWith('.json'));
    } catch {
      continue;
    }
    for (const f of files) {
      const body = new Uint8Array(readFileSync(new URL(`${model}/requests/${f}`, examples)));
      const r = assertSameDecode(body, undefined, `${model}/requests/${f}`);
      assert.ok('ok' in r, `${model}/requests/${f} does not decode: ${JSON.stringify(r)}`);
      const parsed = parseRequestJson(body);
      assert.ok(parsed, `${model}/requests/${f} is not taken by the fast parser`);
      for (const input of parsed.value.inputs as Record<string, unknown>[]) assert.ok(input.data instanceof NumberSpan, `${model}/requests/${f}`);
      n++;
    }
  }
  assert.ok(n >= 9, `only ${n} example requests found`);
});

test('a big aligned binary tensor is read where it is; a small or misaligned one is copied', () => {
  const bodyAt = (n: number, pad: number) => {
    const header = enc.encode(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, n], parameters: { binary_data_size: n * 4 } }] }));
    // The body starts `pad` bytes into its buffer, as the HTTP server places a big one (request-body.ts).
    const buffer = new ArrayBuffer(pad + header.length + n * 4);
    const body = new Uint8Array(buffer, pad);
    body.set(header);
    const values = new Float32Array(n).map((_, i) => i * 0.5);
    body.set(new Uint8Array(values.buffer), header.length);
    const data = decodeInferRequest(body, header.length).inputs[0].data as Float32Array;
    assert.deepEqual(data, values);
    return { shared: data.buffer === buffer, aligned: (pad + header.length) % 4 === 0 };
  };
  let inPlace = 0;
  for (let pad = 0; pad < 8; pad++) {
    const big = bodyAt(150_528, pad); // a 224×224 RGB image in FP32: 602,112 bytes
    assert.equal(big.shared, big.aligned, `pad ${pad}: read in place exactly when aligned`);
    if (big.shared) inPlace++;
    // A small tensor is copied even when aligned: it must not keep a whole body alive.
    assert.equal(bodyAt(64, pad).shared, false, `pad ${pad}: a small tensor is copied`);
  }
  assert.equal(inPlace, 2, 'two of eight placements align FP32 data');
});

test('the binary answer header written directly is the text the general encoder gives', () => {
  const t = (name: string, shape: number[]): Tensor => ({ name, datatype: 'FP32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.25) });
  const cases: InferenceResponse[] = [
    { model_name: 'mlp', model_version: '1', outputs: [t('probabilities', [1, 10])] },
    { model_name: 'm "quoted" \u00e9', id: 'r-1\n', outputs: [t('a', [2, 3]), t('b\u2028', [0])] },
    { model_name: 'n', model_version: '12', id: '', outputs: [] },
  ];
  for (const r of cases) {
    const fast = encodeInferResponse(r, () => true);
    // The general path: the same response with an output parameter set (it then cannot take the direct header),
    // and that parameter taken out of the JSON again.
    const general = encodeInferResponse({ ...r, outputs: r.outputs.map((o) => ({ ...o, parameters: { x: 1 } })) }, () => true);
    const text = (e: typeof fast) => (typeof e.body === 'string' ? e.body : new TextDecoder().decode(e.body.subarray(0, e.headerLength)));
    assert.equal(text(fast), text(general).replaceAll('"parameters":{"x":1,', '"parameters":{'));
    assert.deepEqual(fast.body.slice(fast.headerLength ?? 0), general.body.slice(general.headerLength ?? 0), 'the same binary part');
  }
});

test('a binary answer header reused from the previous answer is never stale', () => {
  const t = (name: string, shape: number[]): Tensor => ({ name, datatype: 'FP32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  const base: InferenceResponse = { model_name: 'm', model_version: '1', id: 'a', outputs: [t('y', [1, 10])] };
  // Each differs from the one before it in one thing the header says.
  const sequence: InferenceResponse[] = [
    base,
    base,
    { ...base, id: 'b' },
    { ...base, id: undefined },
    { ...base, model_version: '2' },
    { ...base, model_name: 'n' },
    { ...base, outputs: [t('y', [2, 10])] },
    { ...base, outputs: [t('y', [10, 2])] },
    { ...base, outputs: [t('z', [1, 10])] },
    { ...base, outputs: [{ name: 'y', datatype: 'INT32', shape: [1, 10], data: new Int32Array(10) }] },
    { ...base, outputs: [t('y', [1, 10]), t('w', [1])] },
    base,
  ];
  for (const [i, r] of sequence.entries()) {
    const e = encodeInferResponse(r, () => true);
    const head = JSON.parse(new TextDecoder().decode((e.body as Uint8Array).subarray(0, e.headerLength))) as Record<string, unknown>;
    const want: Record<string, unknown> = { model_name: r.model_name, model_version: r.model_version };
    if (r.id !== undefined) want.id = r.id;
    want.outputs = r.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape, parameters: { binary_data_size: (o.data as Float32Array).byteLength } }));
    assert.deepEqual(head, want, `answer ${i}`);
  }
});
