// Checks a decoded request against the model's metadata before anything reaches a runtime.
import { InferenceError } from './errors.ts';
import type { InferenceRequest, ModelMetadata, TensorMetadata } from './protocol.ts';

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** True when `shape` fits `expected` (-1 matches any size). */
export function shapeFits(shape: readonly number[], expected: readonly number[]): boolean {
  if (shape.length !== expected.length) return false;
  for (let i = 0; i < shape.length; i++) if (expected[i] !== -1 && expected[i] !== shape[i]) return false;
  return true;
}

/**
 * Refuses a zero-size dimension unless the model declares that dimension fixed at 0. An empty tensor is never a
 * useful request, and onnxruntime aborts the whole process on some of them (a GRU fed [0, 50, 40] calls
 * std::terminate), which no try/catch in JavaScript can survive.
 */
export function checkNoEmptyDims(name: string, shape: readonly number[], declared: readonly number[], model: string): void {
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 0 && declared[i] !== 0) {
      throw new InferenceError('EMPTY_TENSOR', `input '${name}' has size 0 in dimension ${i} (shape ${formatShape(shape)}); model '${model}' needs at least one element there`);
    }
  }
}

/** Up to this many names, lookups are a scan (no Map or Set built per request); past it, a Map and a Set. */
const SCAN_MAX = 16;

export function validateRequest(request: InferenceRequest, model: ModelMetadata): void {
  const given = request.inputs;
  const scan = model.inputs.length <= SCAN_MAX;
  const byName = scan ? undefined : new Map<string, TensorMetadata>(model.inputs.map((t) => [t.name, t]));
  const seen = scan ? undefined : new Set<string>();
  for (let k = 0; k < given.length; k++) {
    const input = given[k];
    const meta = byName ? byName.get(input.name) : model.inputs.find((t) => t.name === input.name);
    if (!meta) {
      throw new InferenceError(
        'UNKNOWN_INPUT',
        `input '${input.name}' is not an input of model '${model.name}'; its inputs are: ${model.inputs.map((t) => t.name).join(', ')}`,
      );
    }
    // Every input before this one is a known, distinct one (else it would have thrown): at most SCAN_MAX of them.
    if (seen ? seen.has(input.name) : given.findIndex((t) => t.name === input.name) < k) throw new InferenceError('DUPLICATE_INPUT', `input '${input.name}' appears more than once`);
    seen?.add(input.name);
    if (input.datatype !== meta.datatype) {
      throw new InferenceError('DATATYPE_MISMATCH', `input '${input.name}' has datatype ${input.datatype} but model '${model.name}' expects ${meta.datatype}`);
    }
    checkNoEmptyDims(input.name, input.shape, meta.shape, model.name);
    // A model without shape information (empty metadata shape with unknown rank) accepts any shape.
    if (meta.shape.length > 0 && !shapeFits(input.shape, meta.shape)) {
      throw new InferenceError(
        'SHAPE_MISMATCH',
        `input '${input.name}' has shape ${formatShape(input.shape)} but model '${model.name}' expects ${formatShape(meta.shape)} (-1 = any size)`,
      );
    }
  }
  // Known and distinct, as many as the model's: none is missing.
  if (given.length !== model.inputs.length) {
    const missing = model.inputs.filter((t) => !(seen ? seen.has(t.name) : given.some((g) => g.name === t.name))).map((t) => t.name);
    if (missing.length) {
      throw new InferenceError('MISSING_INPUT', `model '${model.name}' needs input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}, absent from the request`);
    }
  }
  if (request.outputs?.length) {
    const outs = model.outputs.length <= SCAN_MAX ? undefined : new Set(model.outputs.map((t) => t.name));
    for (const o of request.outputs) {
      if (!(outs ? outs.has(o.name) : model.outputs.some((t) => t.name === o.name))) {
        throw new InferenceError('UNKNOWN_OUTPUT', `output '${o.name}' is not an output of model '${model.name}'; its outputs are: ${model.outputs.map((t) => t.name).join(', ')}`);
      }
    }
  }
}
