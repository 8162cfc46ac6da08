// Cheap checks that run before a request body is turned into tensors, so a small hostile body cannot make the
// decoder itself the attack: JSON nested deep enough to blow the stack or stall the event loop, and tensors whose
// decoded form is many times larger than their bytes (a BYTES tensor of millions of empty strings for a model that
// takes FP32, or a zero-size dimension that makes onnxruntime abort the process).
import { InferenceError } from './errors.ts';
import type { Datatype } from './datatypes.ts';
import type { ModelMetadata } from './protocol.ts';
import { elementCount } from './tensor.ts';
import { checkNoEmptyDims, formatShape, shapeFits } from './validate.ts';

/** Deepest nesting of arrays and objects a JSON body may have. A rank-8 tensor in a request needs about 11. */
export const MAX_JSON_DEPTH = 64;

/**
 * Most BYTES elements one request may decode. Each becomes its own Uint8Array (about 100 bytes of heap however short
 * the string), so an unbounded count lets a 64 MiB body of empty strings ask for gigabytes.
 */
export const MAX_BYTES_ELEMENTS = 1 << 20;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Throws NESTING_TOO_DEEP when `text` nests arrays/objects deeper than `max`, before JSON.parse (whose recursion
 * over 33 million levels took 13–18 s and 3.4 GB) or any recursive walk sees it. Brackets inside strings do not
 * count. Malformed text is left for JSON.parse to describe.
 */
export function checkJsonDepth(text: string, max = MAX_JSON_DEPTH): void {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Skip the string: to the next quote that no backslash escapes.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) {
        throw new InferenceError('NESTING_TOO_DEEP', `request body nests arrays/objects more than ${max} levels deep (at character ${i})`);
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
}

/** Called by the decoder for each input once its name, datatype and shape are known, before its data is read. */
export type InputCheck = (name: string, datatype: Datatype, shape: readonly number[]) => void;

/**
 * An {@link InputCheck} that holds each input to the model's metadata before decoding (the same checks
 * validateRequest makes after, so the errors are the same), and bounds BYTES element counts across the request.
 */
export function inputCheckFor(model: ModelMetadata, maxBytesElements = MAX_BYTES_ELEMENTS): InputCheck {
  let bytesElements = 0;
  return (name, datatype, shape) => {
    const meta = model.inputs.find((t) => t.name === name);
    // Unknown inputs are refused after decoding (with the list of inputs); their data is still bounded below.
    if (meta) {
      if (datatype !== meta.datatype) {
        throw new InferenceError('DATATYPE_MISMATCH', `input '${name}' has datatype ${datatype} but model '${model.name}' expects ${meta.datatype}`);
      }
      checkNoEmptyDims(name, shape, meta.shape, model.name);
      if (meta.shape.length > 0 && !shapeFits(shape, meta.shape)) {
        throw new InferenceError('SHAPE_MISMATCH', `input '${name}' has shape ${formatShape(shape)} but model '${model.name}' expects ${formatShape(meta.shape)} (-1 = any size)`);
      }
    }
    if (datatype === 'BYTES') {
      bytesElements += elementCount(shape);
      if (!(bytesElements <= maxBytesElements)) {
        throw new InferenceError('TOO_MANY_ELEMENTS', `input '${name}': the request's BYTES tensors have more than ${maxBytesElements} elements, the most this server decodes for one request`);
      }
    }
  };
}
