import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExactInteger, numbersJson, parseJsonExact } from './json-exact.ts';
import { decodeInferRequest, decodeInferRequestSlow } from './codec/index.ts';
import { parseRequestJson } from './codec/json-numbers.ts';

const enc = new TextEncoder();

test('parseJsonExact: what JSON.parse gives, with long integers in tensor data kept exact and NaN/Infinity read', () => {
  // Texts that need neither are JSON.parse's own result.
  for (const t of ['{"a":[1,2.5,"x"],"b":{"c":null}}', '[1e400]', '"\\u00e9"']) assert.deepEqual(parseJsonExact(t), JSON.parse(t));
  const v = parseJsonExact(
    '{"id":"12345678901234567890","parameters":{"seed":12345678901234567890,"__proto__":1},"inputs":[{"name":"x","data":[[9223372036854775807],[-9223372036854775808]]}],"outputs":[{"data":[NaN,-Infinity,Infinity]}]}',
  ) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  // Only inside a tensor's "data": elsewhere a long integer is the double JSON.parse gives; strings stay strings.
  assert.equal(v.id, '12345678901234567890');
  assert.equal(v.parameters.seed, 12345678901234567890);
  assert.ok(Object.hasOwn(v.parameters, '__proto__'));
  assert.ok(v.inputs[0].data[0][0] instanceof ExactInteger);
  assert.equal(v.inputs[0].data[0][0].value, 2n ** 63n - 1n);
  assert.equal(v.inputs[0].data[1][0].value, -(2n ** 63n));
  assert.equal(v.inputs[0].data[1][0].number, -(2 ** 63));
  assert.deepEqual(v.outputs[0].data, [NaN, -Infinity, Infinity]);
  for (const bad of ['{"a":NaN', '{"a":nan}', '{"a":1}x Infinity', '[Infinity,]', '{"a" 1, "b": NaN}']) assert.throws(() => parseJsonExact(bad), SyntaxError, bad);
});

test('numbersJson writes exact digits and the non-finite literals, and finite numbers as JSON.stringify does', () => {
  assert.equal(numbersJson(BigInt64Array.of(2n ** 63n - 1n, -1n)), '[9223372036854775807,-1]');
  const xs = [0.1, -0, 1e21, 5e-324, 123456789.125, -1.5e-7];
  assert.equal(numbersJson(xs), JSON.stringify(xs));
  assert.equal(numbersJson(Float32Array.of(NaN, Infinity, -Infinity)), '[NaN,Infinity,-Infinity]');
});

test('the fast decoder keeps INT64/UINT64 beyond 2^53 exact, on its own path and as the reference does', () => {
  const body = enc.encode(
    '{"inputs":[{"name":"a","shape":[3],"datatype":"INT64","data":[9223372036854775807,-9223372036854775808,9007199254740993]},{"name":"b","shape":[2],"datatype":"UINT64","data":[18446744073709551615,1]},{"name":"c","shape":[2],"datatype":"FP64","data":[12345678901234567890,1]}]}',
  );
  assert.ok(parseRequestJson(body)?.exact, 'the fast reader takes this body and records the digits');
  for (const decode of [decodeInferRequest, decodeInferRequestSlow]) {
    const r = decode(body);
    assert.deepEqual(Array.from(r.inputs[0].data as BigInt64Array), [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n]);
    assert.deepEqual(Array.from(r.inputs[1].data as BigUint64Array), [2n ** 64n - 1n, 1n]);
    // A float tensor gets the double JSON.parse gives for the same token.
    assert.equal((r.inputs[2].data as Float64Array)[0], 12345678901234567890);
  }
});

test('long integers are found however they are spaced, and fractions of 16+ digits are not taken for them', () => {
  const body = enc.encode(
    '{"inputs":[{"name":"a","shape":[4],"datatype":"INT64","data":[ 1,\n\t-9223372036854775808 , 9007199254740993,2]},{"name":"f","shape":[3],"datatype":"FP64","data":[0.12345678901234568,-0.7321405694633722,1234567890123456.5]}]}',
  );
  for (const decode of [decodeInferRequest, decodeInferRequestSlow]) {
    const r = decode(body);
    assert.deepEqual(Array.from(r.inputs[0].data as BigInt64Array), [1n, -(2n ** 63n), 2n ** 53n + 1n, 2n]);
    assert.deepEqual(Array.from(r.inputs[1].data as Float64Array), [0.12345678901234568, -0.7321405694633722, 1234567890123456.5]);
  }
  const fractions = parseRequestJson(enc.encode('{"inputs":[{"name":"f","data":[0.12345678901234568,-0.7321405694633722]}]}'));
  assert.ok(fractions);
  assert.ok(!fractions.exact, 'no integer token to keep the digits of');
});
