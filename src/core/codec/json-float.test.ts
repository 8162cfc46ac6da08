import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeInferResponse } from './encode-response.ts';
import { FLOAT32_JSON_MAX_BYTES, writeFloat32, writeFloat32Array } from './json-float.ts';

const text = (v: number) => {
  const out = new Uint8Array(64);
  return new TextDecoder().decode(out.subarray(0, writeFloat32(v, out, 0)));
};

/** Fewest significant digits that read back as the float32 `v`, found by trying each precision. */
function shortestDigits(v: number): number {
  for (let p = 1; p <= 9; p++) if (Math.fround(Number(v.toPrecision(p))) === v) return p;
  return Infinity;
}

function significantDigits(s: string): number {
  const mantissa = s.replace('-', '').split('e')[0].replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.max(1, mantissa.length);
}

describe('FP32 as JSON text', () => {
  it('every value reads back as the same float32, as valid JSON, within the byte bound', () => {
    const f = new Float32Array(1);
    const bits = new Uint32Array(f.buffer);
    let seed = 12345;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    let longer = 0;
    const n = 300_000;
    for (let i = 0; i < n; i++) {
      bits[0] = next() ^ (next() << 16);
      const v = f[0];
      const s = text(v);
      assert.ok(s.length <= FLOAT32_JSON_MAX_BYTES, `${s} is longer than the bound`);
      if (!Number.isFinite(v)) continue; // the NaN and Infinity literals (not JSON.parse's) are checked below
      const back = JSON.parse(s) as number;
      assert.equal(Math.fround(back), v, `${v} was written as ${s}`);
      if (v !== 0 && Number.isFinite(v) && significantDigits(s) > shortestDigits(v)) longer++;
    }
    // Exact ties with a neighbour's halfway point are left out (a conservative choice): one more digit, still exact.
    assert.ok(longer < n * 0.005, `${longer} of ${n} values took more digits than the shortest`);
  });

  it('writes the shortest digits where a float64 would print ~17, in Number#toString\'s layout', () => {
    const cases: [number, string][] = [
      [0.1, '0.1'],
      [2 / 3, '0.6666667'],
      [-1234.5, '-1234.5'],
      [100, '100'],
      [1e20, '100000000000000000000'],
      [1e21, '1e+21'],
      [0.000001, '0.000001'],
      [1.5e-7, '1.5e-7'],
      [123456789, '123456790'],
      [3.4028234663852886e38, '3.4028235e+38'],
      [1.401298464324817e-45, '1e-45'],
      [-0, '0'],
      [0, '0'],
      [Infinity, 'Infinity'],
      [-Infinity, '-Infinity'],
      [NaN, 'NaN'],
    ];
    for (const [v, want] of cases) assert.equal(text(Math.fround(v)), want, String(v));
  });

  it('writes arrays with commas and brackets', () => {
    const d = Float32Array.of(1, -0.5, 0.1);
    const out = new Uint8Array(2 + d.length * (FLOAT32_JSON_MAX_BYTES + 1));
    assert.equal(new TextDecoder().decode(out.subarray(0, writeFloat32Array(d, out, 0))), '[1,-0.5,0.1]');
    assert.equal(new TextDecoder().decode(out.subarray(0, writeFloat32Array(new Float32Array(0), out, 0))), '[]');
  });

  it('a JSON response: the protocol\'s members in order, as a string or as bytes, each FP32 value exact', () => {
    const data = Float32Array.from({ length: 3000 }, (_, i) => Math.sin(i) * 10 ** ((i % 13) - 6));
    const response = {
      model_name: 'm',
      model_version: '1',
      id: 'r1',
      parameters: { note: 'é' },
      outputs: [
        { name: 'y', datatype: 'FP32' as const, shape: [1, 3000], data },
        { name: 'label', datatype: 'BYTES' as const, shape: [1], data: [new TextEncoder().encode('a "cat"')], parameters: { classification: true } },
        { name: 'n', datatype: 'INT64' as const, shape: [2], data: BigInt64Array.of(2n ** 60n, -3n) },
      ],
    };
    const asString = encodeInferResponse(response);
    const asBytes = encodeInferResponse(response, () => false, { bytes: true });
    assert.equal(asString.contentType, 'application/json');
    assert.ok(asBytes.body instanceof Uint8Array);
    assert.equal(new TextDecoder().decode(asBytes.body), asString.body);
    const text = asString.body as string;
    assert.ok(text.startsWith('{"model_name":"m","model_version":"1","id":"r1","parameters":{"note":"é"},"outputs":[{"name":"y","datatype":"FP32","shape":[1,3000],"data":['), text.slice(0, 160));
    assert.ok(text.endsWith(',{"name":"label","datatype":"BYTES","shape":[1],"parameters":{"classification":true},"data":["a \\"cat\\""]},{"name":"n","datatype":"INT64","shape":[2],"data":[1152921504606846976,-3]}]}'), text.slice(-200));
    const parsed = JSON.parse(text.replace(/1152921504606846976/, '0')) as { outputs: { data: number[] }[] };
    assert.deepEqual(Float32Array.from(parsed.outputs[0].data), data);
  });
});
