import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  binaryOutputNames,
  decodeInferRequest,
  decodeInferResponse,
  encodeInferRequest,
  encodeInferResponse,
  toJsonData,
} from './codec.ts';
import { DATATYPES, type Datatype } from './datatypes.ts';
import { InferenceError, type ErrorCode } from './errors.ts';
import { fromHalfBits, toHalfBits, type Tensor } from './tensor.ts';

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
