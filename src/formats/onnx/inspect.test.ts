import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { inspectOnnx } from './inspect.ts';
import { createModel, onnx, writeOnnx } from './onnx.ts';
import { node, tensor, valueInfo } from './graph.ts';

const DT = onnx.TensorProto.DataType;

test('inspect reports inputs, outputs, opsets, ops (subgraphs included), parameters, size and sha256', async () => {
  const thenBranch = { name: 'then', output: [valueInfo('t_out', DT.FLOAT, null)], node: [node('Relu', ['h'], ['t_out'])] };
  const elseBranch = { name: 'else', output: [valueInfo('e_out', DT.FLOAT, null)], node: [node('Sigmoid', ['h'], ['e_out'])] };
  const model = createModel({
    irVersion: 3,
    producerName: 'unit',
    producerVersion: '9',
    modelVersion: 2,
    docString: 'doc',
    opsetImport: [{ domain: '', version: 11 }, { domain: 'com.microsoft', version: 1 }],
    metadataProps: [{ key: 'k', value: 'v' }],
    graph: {
      name: 'g',
      // IR 3 lists initializers among the inputs: they are weights, not inputs.
      input: [valueInfo('x', DT.FLOAT, ['batch', null, 4]), valueInfo('flag', DT.BOOL, []), valueInfo('w', DT.FLOAT, [4, 2]), valueInfo('ids', DT.INT64, null)],
      output: [valueInfo('y', DT.FLOAT16, ['batch', 2]), valueInfo('s', DT.STRING, [-1 as unknown as number])],
      initializer: [
        tensor('w', [4, 2], new Float32Array(8)),
        tensor('b', [2], new Float64Array(2)),
        { name: 'ext', dims: [1000, 10], dataType: DT.FLOAT, dataLocation: 1, externalData: [{ key: 'location', value: 'weights.bin' }, { key: 'length', value: '40000' }] } as onnx.ITensorProto,
      ] as onnx.TensorProto[],
      node: [
        node('MatMul', ['x', 'w'], ['h']),
        node('If', ['flag'], ['z'], { then_branch: thenBranch as unknown as onnx.IGraphProto, else_branch: elseBranch as unknown as onnx.IGraphProto }),
        node('FusedGemm', ['z', 'w'], ['y'], {}, { domain: 'com.microsoft' }),
        node('Cast', ['z'], ['s'], { to: DT.STRING }),
      ],
    },
  });
  const bytes = writeOnnx(model);
  const info = await inspectOnnx(bytes, 'm.onnx');
  assert.equal(info.fileName, 'm.onnx');
  assert.equal(info.fileSize, bytes.length);
  assert.equal(info.sha256, createHash('sha256').update(bytes).digest('hex'));
  assert.equal(info.irVersion, 3);
  assert.equal(info.modelVersion, 2);
  assert.deepEqual([info.producerName, info.producerVersion, info.docString, info.graphName], ['unit', '9', 'doc', 'g']);
  assert.deepEqual(info.metadata, { k: 'v' });
  assert.deepEqual(info.opsetImports, [{ domain: 'ai.onnx', version: 11 }, { domain: 'com.microsoft', version: 1 }]);
  assert.deepEqual(info.inputs, [
    { name: 'x', datatype: 'FP32', tensor: true, onnxType: 'tensor(float)', shape: ['batch', -1, 4] },
    { name: 'flag', datatype: 'BOOL', tensor: true, onnxType: 'tensor(bool)', shape: [] },
    { name: 'ids', datatype: 'INT64', tensor: true, onnxType: 'tensor(int64)', shape: [], rankUnknown: true },
  ]);
  assert.deepEqual(info.outputs.map((o) => [o.name, o.datatype, o.shape]), [['y', 'FP16', ['batch', 2]], ['s', 'BYTES', [-1]]]);
  assert.deepEqual(info.nodeCountByOp, { MatMul: 1, If: 1, Relu: 1, Sigmoid: 1, 'com.microsoft::FusedGemm': 1, Cast: 1 });
  assert.equal(info.nodeCount, 6);
  assert.equal(info.parameterCount, 8 + 2 + 10000);
  assert.equal(info.initializerBytes, 8 * 4 + 2 * 8 + 10000 * 4);
  assert.equal(info.initializerCount, 3);
  assert.deepEqual(info.externalData, [{ tensor: 'ext', location: 'weights.bin', bytes: 40000 }]);
});
