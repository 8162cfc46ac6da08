// The request JSON parser on its own: its numbers are JSON.parse's to the bit, it takes the common request shapes,
// ties "data" numbers to their inputs by position, and gives up (null) on everything it does not vouch for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NumberSpan, parseFastNumber, parseRequestJson } from './json-numbers.ts';
import { seeded as rng } from '../../bench/random.ts';

const enc = new TextEncoder();


function bits(x: number): string {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, x);
  return b.getBigUint64(0).toString(16);
}

/** parseFastNumber(token) must be JSON.parse(token) bit for bit whenever it answers at all. */
function checkToken(token: string): number | undefined {
  const v = parseFastNumber(token);
  if (v !== undefined) assert.equal(bits(v), bits(JSON.parse(token) as number), `token ${token}: ${v} vs JSON.parse ${JSON.parse(token)}`);
  return v;
}

test('numbers on the exact fast path are parsed, bit for bit as JSON.parse, and -0 stays -0', () => {
  const taken: [string, number][] = [
    ['0', 0],
    ['-0', -0],
    ['-0.0', -0],
    ['-0e5', -0],
    ['0.0', 0],
    ['1', 1],
    ['-1', -1],
    ['0.1', 0.1],
    ['0.3', 0.3],
    ['0.4375', 0.4375],
    ['-3.41', -3.41],
    ['1491.2', 1491.2],
    ['123456789', 123456789],
    ['1234567890', 1234567890],
    ['2147483648', 2147483648],
    ['9007199254740991', 9007199254740991],
    ['0.6274510025978088', 0.6274510025978088], // 16 digits, mantissa below 2^53
    ['1e22', 1e22],
    ['1E22', 1e22],
    ['1e-22', 1e-22],
    ['1.5e+3', 1500],
    ['25e-1', 2.5],
    ['0.0000000000000000000000001e25', 1], // 25 fraction digits, exponent brings it back into range
    ['123456789012345e7', 1.23456789012345e21],
    ['-98765.4321e-10', -98765.4321e-10],
  ];
  for (const [token, value] of taken) {
    const v = checkToken(token);
    assert.ok(v !== undefined, `${token} should be on the fast path`);
    assert.ok(Object.is(v, value), `${token} → ${v}`);
  }
});

test('numbers off the fast path and non-numbers are left to JSON.parse', () => {
  const refused = [
    '9007199254740993', // 2^53 + 1: not exact in a double
    '12345678901234567', // 17 digits
    '3.4028234663852886e38',
    '0.12345678901234568',
    '123456789012345678901',
    '1e23', // 10^23 is not exact
    '1e-23',
    '1e308',
    '5e-324',
    '1e400',
    '0e400',
    '-',
    '01',
    '1.',
    '.5',
    '1e',
    '1e+',
    '+1',
    'NaN',
    'Infinity',
    '1.5.2',
    '0x10',
    '',
  ];
  for (const token of refused) assert.equal(parseFastNumber(token), undefined, token);
});

test('random number tokens: whenever the fast path answers, it is JSON.parse to the bit', () => {
  const r = rng(1234);
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(r() * 10)).join('');
  let taken = 0;
  for (let i = 0; i < 20000; i++) {
    const kind = Math.floor(r() * 6);
    let token: string;
    if (kind === 0) {
      const x = (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20);
      token = JSON.stringify(x);
    } else if (kind === 1) {
      token = (r() * 1000).toFixed(Math.floor(r() * 12));
    } else if (kind === 2) {
      token = Math.fround(r()).toString();
    } else if (kind === 3) {
      token = (r() < 0.5 ? '-' : '') + (Math.floor(r() * 9) + 1) + digits(Math.floor(r() * 19)) + (r() < 0.5 ? '.' + digits(1 + Math.floor(r() * 19)) : '');
    } else if (kind === 4) {
      token = (r() < 0.3 ? '-' : '') + digits(1).replace(/^0/, '1') + '.' + digits(1 + Math.floor(r() * 6)) + (r() < 0.5 ? 'e' : 'E') + (r() < 0.5 ? '-' : r() < 0.5 ? '+' : '') + Math.floor(r() * 30);
    } else {
      token = (r() < 0.5 ? '-' : '') + '0.' + '0'.repeat(Math.floor(r() * 25)) + digits(1 + Math.floor(r() * 17));
    }
    if (checkToken(token) !== undefined) taken++;
  }
  assert.ok(taken > 8000, `the fast path took only ${taken} of 20000 tokens`);
});

function parse(text: string) {
  return parseRequestJson(enc.encode(text));
}

function spanValues(values: Float64Array, span: unknown): number[] {
  assert.ok(span instanceof NumberSpan, `expected a NumberSpan, got ${JSON.stringify(span)}`);
  return Array.from(values.subarray(span.offset, span.offset + span.count));
}

test("an input's numeric data comes as a NumberSpan; everything else as JSON.parse gives it", () => {
  const text = `{
    "id": "a \\"data\\":[1,2] b", "extra": {"data": [9, 9]}, "data": [7],
    "parameters": {"data": [1.5, -0], "inputs": [{"data": [3]}]},
    "inputs": [
      {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[0.5, -0], [1e3, 2]], "parameters": {"data": [4, 5]}},
      {"data": [1, 2, 3], "name": "y", "shape": [3], "datatype": "INT32", "other": [true, null, "s"]},
      {"name": "z", "shape": [1], "datatype": "BYTES", "data": "hello"},
      [1, 2]
    ],
    "outputs": [{"name": "o", "parameters": {"binary_data": true}}]
  }`;
  const parsed = parse(text);
  assert.ok(parsed);
  const v = parsed.value;
  const reference = JSON.parse(text);
  assert.equal(v.id, reference.id);
  assert.deepEqual(v.parameters, reference.parameters);
  assert.ok(Object.is((v.parameters as { data: number[] }).data[1], -0));
  assert.deepEqual(v.outputs, reference.outputs);
  const inputs = v.inputs as Record<string, unknown>[];
  assert.equal(inputs.length, 4);
  assert.deepEqual(spanValues(parsed.values, inputs[0].data), [0.5, -0, 1000, 2]);
  assert.ok(Object.is(spanValues(parsed.values, inputs[0].data)[1], -0));
  assert.deepEqual(inputs[0].parameters, { data: [4, 5] });
  assert.deepEqual(inputs[0].shape, [2, 2]);
  assert.deepEqual(spanValues(parsed.values, inputs[1].data), [1, 2, 3]);
  assert.equal(inputs[1].name, 'y');
  assert.equal(inputs[2].data, 'hello');
  assert.deepEqual(inputs[3], [1, 2]);
});

test('data that is not an array is parsed generically; an array of anything but numbers is left to JSON.parse', () => {
  for (const data of ['1', '"x"', 'true', 'null', '{"data": [1]}']) {
    const parsed = parse(`{"inputs": [{"name": "x", "data": ${data}}]}`);
    assert.ok(parsed, data);
    assert.deepEqual((parsed.value.inputs as Record<string, unknown>[])[0].data, JSON.parse(data), data);
  }
  for (const data of ['[1, [2]]', '[[1], 2]', '[1, true]', '[true, false]', '["a", "b"]', '[1, "2"]', '[1, null]', '[1e400, true]', '[0.5, 1e400, "a]b"]', '[[1e23], [2, "x"]]']) {
    assert.equal(parse(`{"inputs": [{"name": "x", "data": ${data}}]}`), null, data);
  }
  // Numbers off the exact path: JSON.parse reads the rest of that flat array in one call; still a NumberSpan.
  for (const data of ['[1, 12345678901234567]', '[0.5, 0.12345678901234568, 3, -0]', '[1e400, -1e400, 5e-324]', '[[1e23, 2], [3, 0.30000000000000004], [-0.0]]']) {
    const parsed = parse(`{"inputs": [{"name": "x", "data": ${data}}]}`)!;
    const values = spanValues(parsed.values, (parsed.value.inputs as Record<string, unknown>[])[0].data);
    const reference = (JSON.parse(data) as unknown[]).flat() as number[];
    assert.deepEqual(values.map(bits), reference.map(bits), data);
  }
  // Unevenly deep but each level of one kind: as flatten() reads it.
  const parsed = parse('{"inputs": [{"data": [[], [[1], [2, 3]], [4]]}]}')!;
  assert.deepEqual(spanValues(parsed.values, (parsed.value.inputs as Record<string, unknown>[])[0].data), [1, 2, 3, 4]);
});

test('keys spelled with escapes are read as what they spell', () => {
  const parsed = parse('{"\\u0069nputs": [{"d\\u0061ta": [1, 2], "n\\u0061me": "x\\u00e9"}]}')!;
  const input = (parsed.value.inputs as Record<string, unknown>[])[0];
  assert.deepEqual(spanValues(parsed.values, input.data), [1, 2]);
  assert.equal(input.name, 'xé');
});

test('non-ASCII strings before and after the data keep the text aligned', () => {
  const long = 'a long plain string, longer than the cached ones: ' + 'x'.repeat(40);
  const text = `{"id": "ünïcødé ✓ 😀", "inputs": [{"name": "名前", "datatype": "FP32", "data": [1.25], "shape": [1]}], "parameters": {"k": "ö\\n😀", "m": "plain", "long": "${long}", "esc": "q\\"uote\\u00e9", "n": 0.12345678901234568, "é": "${long}é"}}`;
  const parsed = parse(text)!;
  const reference = JSON.parse(text);
  assert.equal(parsed.value.id, reference.id);
  const input = (parsed.value.inputs as Record<string, unknown>[])[0];
  assert.equal(input.name, '名前');
  assert.equal(input.datatype, 'FP32');
  assert.deepEqual(parsed.value.parameters, reference.parameters);
  assert.equal((parsed.value.parameters as Record<string, unknown>).long, long);
});

test('gives up on what it does not vouch for, and on every malformed body', () => {
  const good = '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}';
  assert.ok(parse(good));
  const refused = [
    '[' + good + ']', // root is not an object
    '\ufeff' + good, // a BOM (TextDecoder drops it; left to the reference path)
    good + 'x',
    good + '}',
    good.slice(0, -1),
    '{"inputs": [{"data": [1], "data": [2]}]}', // a duplicate known member
    '{"inputs": [], "inputs": [{"data": [1]}]}',
    '{"parameters": {"a": 1, "a": 2}, "inputs": []}', // a duplicate generic key
    '{"parameters": {"__proto__": {"x": 1}}, "inputs": []}',
    '{"parameters": {"toString": 1}, "inputs": []}',
    '{"inputs": [{"data": [1,]}]}',
    '{"inputs": [{"data": [01]}]}',
    '{"inputs": [{"data": [1 2]}]}',
    '{"inputs": [{"data": [-]}]}',
    '{"inputs": [{"data": [1.]}]}',
    '{"inputs": [{"data": [1]]}]}',
    '{"inputs": [{"name": "a\tb"}]}', // a raw control character in a string
    '{"inputs": [{"name": "\\x"}]}', // a bad escape
    '{"inputs": [{"name": tru}]}',
    '{"inputs": [{"shape": [1, 2,]}]}',
    '{"inputs": [{"shape": [01]}]}',
    '{"inputs" [1]}',
    '{"inputs": [1] "id": "x"}',
    `{"parameters": ${'['.repeat(100)}${']'.repeat(100)}, "inputs": []}`, // nesting deeper than the parser goes
  ];
  for (const text of refused) assert.equal(parse(text), null, text);
});

test('a large body grows the values buffer and still ties each span to its input', () => {
  const a = Array.from({ length: 100_000 }, (_, i) => (i % 1000) / 8);
  const b = [0, -1.5, -2];
  const parsed = parse(JSON.stringify({ inputs: [{ name: 'a', data: a }, { name: 'b', data: b }] }))!;
  const inputs = parsed.value.inputs as Record<string, unknown>[];
  assert.deepEqual(spanValues(parsed.values, inputs[0].data), a);
  assert.deepEqual(spanValues(parsed.values, inputs[1].data), b);
  // The next parse starts afresh.
  const again = parse('{"inputs": [{"data": [5]}]}')!;
  assert.deepEqual(spanValues(again.values, (again.value.inputs as Record<string, unknown>[])[0].data), [5]);
});

test('random "data" arrays: the numbers in the span are JSON.parse of the array, bit for bit, in order', () => {
  const r = rng(99);
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(r() * 10)).join('');
  const token = (): string => {
    const sign = r() < 0.3 ? '-' : '';
    switch (Math.floor(r() * 7)) {
      case 0:
        return sign + '0';
      case 1:
        return sign + (Math.floor(r() * 9) + 1) + digits(Math.floor(r() * 12)); // integers up to 13 digits
      case 2:
        return sign + digits(1) + '.' + digits(1 + Math.floor(r() * 10)); // up to 11 digits in all
      case 3:
        return sign + (Math.floor(r() * 9) + 1) + digits(Math.floor(r() * 8)) + '.' + digits(1 + Math.floor(r() * 9));
      case 4:
        return sign + (Math.floor(r() * 9) + 1) + '.' + digits(Math.floor(r() * 4) + 1) + 'e' + (r() < 0.5 ? '-' : '') + Math.floor(r() * 25);
      case 5:
        return JSON.stringify(Math.fround((r() - 0.5) * 100));
      default:
        return sign + '0.' + digits(Math.floor(r() * 16) + 1);
    }
  };
  const ws = () => [' ', '', '', '\n', '\t', '\r\n  '][Math.floor(r() * 6)];
  let spans = 0;
  for (let i = 0; i < 3000; i++) {
    const n = Math.floor(r() * 40);
    const tokens = Array.from({ length: n }, token);
    const array = '[' + ws() + tokens.map((t) => t + ws()).join(',' + ws()) + ']';
    const parsed = parse(`{"inputs":[{"name":"x","data":${ws()}${array}${ws()}}]}`);
    assert.ok(parsed, array);
    const data = (parsed.value.inputs as Record<string, unknown>[])[0].data;
    const reference = JSON.parse(array) as number[];
    if (data instanceof NumberSpan) {
      spans++;
      const got = spanValues(parsed.values, data);
      assert.equal(got.length, reference.length, array);
      for (let j = 0; j < got.length; j++) assert.equal(bits(got[j]), bits(reference[j]), `${tokens[j]} in ${array}`);
    } else {
      assert.deepEqual(data, reference, array);
      assert.ok(tokens.some((t) => parseFastNumber(t) === undefined), `gave up on ${array}`);
    }
  }
  assert.ok(spans > 500, `only ${spans} arrays were parsed here`);
});
