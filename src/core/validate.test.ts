// validateRequest: each class of bad request refused with its code and a message naming the input or output, the
// same for a model with a few inputs (looked up by a scan) as for one with many (looked up in a Map).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InferenceError } from './errors.ts';
import type { InferenceRequest, ModelMetadata, TensorMetadata } from './protocol.ts';
import type { Tensor } from './tensor.ts';
import { validateRequest } from './validate.ts';

function model(inputs: number): ModelMetadata {
  const t = (name: string): TensorMetadata => ({ name, datatype: 'FP32', shape: [-1, 2] });
  return { name: 'm', platform: 'test', inputs: Array.from({ length: inputs }, (_, i) => t(`x${i}`)), outputs: Array.from({ length: inputs }, (_, i) => t(`y${i}`)) };
}
const tensor = (name: string, over: Partial<Tensor> = {}): Tensor => ({ name, datatype: 'FP32', shape: [1, 2], data: new Float32Array(2), ...over });
const all = (m: ModelMetadata): Tensor[] => m.inputs.map((t) => tensor(t.name));

function refused(request: InferenceRequest, m: ModelMetadata, code: string, pattern: RegExp): void {
  assert.throws(
    () => validateRequest(request, m),
    (e: unknown) => e instanceof InferenceError && e.code === code && pattern.test(e.message),
    `${code} (${m.inputs.length} inputs)`,
  );
}

for (const n of [1, 3, 16, 17, 40]) {
  test(`validateRequest, a model of ${n} input(s): a whole request passes; each kind of bad one is refused, naming what is wrong`, () => {
    const m = model(n);
    validateRequest({ inputs: all(m) }, m);
    validateRequest({ inputs: all(m).reverse(), outputs: [{ name: `y${n - 1}` }, { name: 'y0' }] }, m);
    refused({ inputs: [...all(m), tensor('nope')] }, m, 'UNKNOWN_INPUT', /input 'nope' is not an input of model 'm'; its inputs are: x0/);
    refused({ inputs: [...all(m), tensor('x0')] }, m, 'DUPLICATE_INPUT', /input 'x0' appears more than once/);
    refused({ inputs: [tensor('x0', { datatype: 'INT32' })] }, m, 'DATATYPE_MISMATCH', /input 'x0' has datatype INT32 but model 'm' expects FP32/);
    refused({ inputs: [tensor('x0', { shape: [1, 3] })] }, m, 'SHAPE_MISMATCH', /input 'x0' has shape \[1, 3\] but model 'm' expects \[-1, 2\]/);
    refused({ inputs: [tensor('x0', { shape: [0, 2] })] }, m, 'EMPTY_TENSOR', /input 'x0' has size 0 in dimension 0/);
    refused({ inputs: all(m), outputs: [{ name: 'y0' }, { name: 'nope' }] }, m, 'UNKNOWN_OUTPUT', /output 'nope' is not an output of model 'm'; its outputs are: y0/);
    if (n > 1) {
      const some = all(m).filter((t) => t.name !== 'x1' && t.name !== `x${n - 1}`);
      refused({ inputs: some }, m, 'MISSING_INPUT', new RegExp(`model 'm' needs input${n > 2 ? 's' : ''} 'x1'${n > 2 ? `, 'x${n - 1}'` : ''}, absent from the request`));
    } else refused({ inputs: [] }, m, 'MISSING_INPUT', /needs input 'x0'/);
  });
}
