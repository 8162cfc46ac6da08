import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFileError } from '../errors.ts';
import { createModel, onnx, readOnnx, writeOnnx } from './onnx.ts';
import { node, tensor, valueInfo } from './graph.ts';
import { EXAMPLES_DIR } from '../../../test/support/env.ts';

const DT = onnx.TensorProto.DataType;

/** A model with everything a round trip must keep: metadata, several opsets, doc strings, a node of an unknown domain. */
function sampleModel(): onnx.ModelProto {
  return createModel({
    irVersion: 8,
    producerName: 'dais-test',
    producerVersion: '0.1',
    domain: 'org.example',
    modelVersion: 3,
    docString: 'a model for round trips',
    opsetImport: [{ domain: '', version: 13 }, { domain: 'com.example', version: 2 }],
    metadataProps: [{ key: 'classes', value: 'a,b' }, { key: 'author', value: 'tests' }],
    graph: {
      name: 'g',
      docString: 'graph doc',
      input: [valueInfo('x', DT.FLOAT, ['N', 3])],
      output: [valueInfo('y', DT.FLOAT, ['N', 2])],
      initializer: [tensor('w', [3, 2], new Float32Array([1, 2, 3, 4, 5, 6])), tensor('shape', [2], new BigInt64Array([-1n, 2n]))],
      node: [
        node('MatMul', ['x', 'w'], ['h'], {}, { name: 'mm' }),
        node('Mystery', ['h'], ['y'], { alpha: 0.5, modes: [1, 2, 3], tag: 'keep me' }, { name: 'custom', domain: 'com.example' }),
      ],
    },
  });
}

test('parse → write gives the same bytes for a model built in TypeScript', () => {
  const bytes = writeOnnx(sampleModel());
  const again = writeOnnx(readOnnx(bytes));
  assert.deepEqual(Buffer.from(again), Buffer.from(bytes));
  const m = readOnnx(again);
  assert.equal(m.producerName, 'dais-test');
  assert.equal(Number(m.modelVersion), 3);
  assert.deepEqual(m.metadataProps.map((p) => [p.key, p.value]), [['classes', 'a,b'], ['author', 'tests']]);
  assert.deepEqual(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 13], ['com.example', 2]]);
  const custom = m.graph!.node![1];
  assert.equal(custom.domain, 'com.example');
  assert.deepEqual(custom.attribute!.find((a) => a.name === 'modes')!.ints!.map(Number), [1, 2, 3]);
  assert.equal(new TextDecoder().decode(custom.attribute!.find((a) => a.name === 'tag')!.s!), 'keep me');
});

test('dims and int attributes are written unpacked, as the proto2 schema and C++ protobuf write them', () => {
  const t = writeOnnx(createModel({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], graph: { initializer: [tensor('w', [2, 3], new Float32Array(6))] } }));
  // TensorProto field 1 (dims) as two varint entries 0x08 0x02, 0x08 0x03 rather than one packed 0x0a 0x02 0x02 0x03.
  assert.ok(Buffer.from(t).includes(Buffer.from([0x08, 0x02, 0x08, 0x03])));
});

test('parse → write gives the same bytes on every example model', (t) => {
  const files = existsSync(EXAMPLES_DIR)
    ? readdirSync(EXAMPLES_DIR).flatMap((m) => (existsSync(join(EXAMPLES_DIR, m, '1', 'model.onnx')) ? [join(EXAMPLES_DIR, m, '1', 'model.onnx')] : []))
    : [];
  if (!files.length) return t.skip('no examples/<model>/1/model.onnx yet');
  for (const f of files) {
    const bytes = new Uint8Array(readFileSync(f));
    assert.ok(Buffer.from(writeOnnx(readOnnx(bytes, f))).equals(Buffer.from(bytes)), `${f} changed in a round trip`);
  }
});

test('bytes that are not ONNX get a ModelFileError naming the file, the byte and the fix', () => {
  assert.throws(() => readOnnx(new Uint8Array(0), 'empty.onnx'), (e: Error) => e instanceof ModelFileError && /empty\.onnx is empty/.test(e.message));
  // 0x7f: field 15 with wire type 7, which protobuf does not have.
  assert.throws(
    () => readOnnx(new Uint8Array([0x08, 0x07, 0x7f, 0x01]), 'x.onnx'),
    (e: Error) => e instanceof ModelFileError && /x\.onnx is not an ONNX model \(protobuf parse failed at byte \d+ of 4/.test(e.message) && /torch\.onnx\.export/.test(e.message),
  );
  // A length that runs past the end.
  assert.throws(() => readOnnx(new Uint8Array([0x3a, 0x7f, 0x00]), 'cut.onnx'), /cut\.onnx is not an ONNX model \(protobuf parse failed/);
  // Valid protobuf, but no graph: a model header alone.
  const headerOnly = writeOnnx(createModel({ irVersion: 8, producerName: 'p' }));
  assert.throws(() => readOnnx(headerOnly, 'h.onnx'), /h\.onnx is not an ONNX model \(it parses as protobuf but has no graph\)/);
  assert.throws(() => readOnnx(new TextEncoder().encode('{"this": "is json"}'), 'j.onnx'), ModelFileError);
});
