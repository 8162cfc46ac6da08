// Cheap checks that run before a request body is turned into tensors, so a small hostile body cannot make the
// decoder itself the attack: JSON nested deep enough to blow the stack or stall the event loop, and tensors whose
// decoded form is many times larger than their bytes (a BYTES tensor of millions of empty strings for a model that
// takes FP32, or a zero-size dimension that makes onnxruntime abort the process).
import { InferenceError } from './errors.ts';
import { isDatatype, type Datatype } from './datatypes.ts';
import type { ModelMetadata, TensorMetadata } from './protocol.ts';
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

const COLON = 0x3a;
const keyDecoder = new TextDecoder();
/** Keys and values longer than this are not read out of the text (no input name or datatype is that long). */
const MAX_READ = 256;

/**
 * Throws NESTING_TOO_DEEP when `text` nests arrays/objects deeper than `max`, before JSON.parse (whose recursion
 * over 33 million levels took 13–18 s and 3.4 GB) or any recursive walk sees it. Brackets inside strings do not
 * count. Malformed text is left for JSON.parse to describe.
 *
 * With `check.early`, the same pass reads each input's "name" and "datatype" (root → "inputs" → object, strings
 * without escapes) and calls it when the input's object closes, so a wrong datatype is refused before JSON.parse
 * builds an array of millions of elements (20 M empty strings blocked the event loop for seconds).
 */
export function checkJsonDepth(text: string | Uint8Array, max = MAX_JSON_DEPTH, check?: Pick<InputCheck, 'early'>): void {
  const onInput = check?.early === undefined ? undefined : check;
  // Bytes are scanned as they come (no UTF-8 decode of a 60 MB body first): every byte this looks for is ASCII, and
  // UTF-8 never uses ASCII values inside a multi-byte character.
  const bytes = typeof text === 'string' ? undefined : text;
  const str = typeof text === 'string' ? text : '';
  const at = bytes ? (i: number) => bytes[i] : (i: number) => str.charCodeAt(i);
  const slice = bytes ? (a: number, b: number) => keyDecoder.decode(bytes.subarray(a, b)) : (a: number, b: number) => str.slice(a, b);
  let depth = 0;
  const n = text.length;
  let told = false;
  let rootKey: string | undefined;
  let inputKey: string | undefined;
  let name: string | undefined;
  let datatype: string | undefined;
  let inInputs = false;
  for (let i = 0; i < n; i++) {
    const c = at(i);
    if (c === QUOTE) {
      const start = i + 1;
      let escaped = false;
      // Skip the string: to the next quote that no backslash escapes.
      for (i++; i < n; i++) {
        const d = at(i);
        if (d === BACKSLASH) {
          i++;
          escaped = true;
        } else if (d === QUOTE) break;
      }
      if (onInput === undefined || (depth !== 1 && !(depth === 3 && inInputs))) continue;
      const value = escaped || i - start > MAX_READ ? undefined : slice(start, i);
      let j = i + 1;
      while (j < n && at(j) <= 0x20) j++;
      const isKey = at(j) === COLON;
      if (depth === 1) {
        if (isKey) rootKey = value;
      } else if (isKey) inputKey = value;
      else if (inputKey === 'name') name = value;
      else if (inputKey === 'datatype') datatype = value;
      // As soon as both are known: "data" usually follows, and need not be scanned for this.
      if (!told && name !== undefined && datatype !== undefined) {
        told = true;
        onInput.early!(name, datatype);
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) {
        throw new InferenceError('NESTING_TOO_DEEP', `request body nests arrays/objects more than ${max} levels deep (at character ${i})`);
      }
      if (depth === 2) inInputs = c === OPEN_BRACKET && rootKey === 'inputs';
      else if (depth === 3 && inInputs) {
        name = datatype = inputKey = undefined;
        told = false;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 3 && inInputs && c === CLOSE_BRACE && !told) onInput?.early!(name, datatype);
      depth--;
    }
  }
}

/**
 * Every form an input may take, by name: the served one from the metadata first, then — for a model with declared
 * preprocessing, which serves a file or text input as BYTES — the model's own tensor form, which clients may still
 * send (`parameters.processing.tensor_inputs`, runtime/processing.ts).
 */
function inputForms(model: ModelMetadata): Map<string, TensorMetadata[]> {
  // Built once per model version: its metadata's inputs array is the same object on every request.
  const cached = formsByInputs.get(model.inputs);
  if (cached) return cached;
  const forms = new Map<string, TensorMetadata[]>();
  const add = (t: TensorMetadata) => forms.set(t.name, [...(forms.get(t.name) ?? []), t]);
  for (const t of model.inputs) add(t);
  const processing = model.parameters?.processing as { tensor_inputs?: TensorMetadata[] } | undefined;
  for (const t of processing?.tensor_inputs ?? []) add(t);
  formsByInputs.set(model.inputs, forms);
  return forms;
}
const formsByInputs = new WeakMap<readonly TensorMetadata[], Map<string, TensorMetadata[]>>();

/**
 * Asked by the decoder about each input: `input` once its name, datatype and shape are known, before its data is
 * read; `early`, where given, before the body is parsed at all, with what a byte scan could read (checkJsonDepth).
 */
export interface InputCheck {
  input(name: string, datatype: Datatype, shape: readonly number[]): void;
  early?(name: string | undefined, datatype: string | undefined): void;
}

/**
 * An {@link InputCheck} that holds each input to the model's metadata before decoding (the same checks
 * validateRequest makes after, so the errors are the same), and bounds BYTES element counts across the request.
 * One per request (it counts that request's BYTES elements); a class, so that making one creates no closures.
 */
class ModelInputCheck implements InputCheck {
  private bytesElements = 0;
  private readonly forms: Map<string, TensorMetadata[]>;

  constructor(
    private readonly model: ModelMetadata,
    private readonly maxBytesElements: number,
  ) {
    this.forms = inputForms(model);
  }

  input(name: string, datatype: Datatype, shape: readonly number[]): void {
    const accepted = this.forms.get(name);
    // Unknown inputs are refused after decoding (with the list of inputs); their data is still bounded below.
    if (accepted) {
      let meta: TensorMetadata | undefined;
      for (const t of accepted) if (t.datatype === datatype) meta = meta ?? t;
      if (!meta) {
        throw new InferenceError('DATATYPE_MISMATCH', `input '${name}' has datatype ${datatype} but model '${this.model.name}' expects ${accepted[0].datatype}`);
      }
      checkNoEmptyDims(name, shape, meta.shape, this.model.name);
      if (meta.shape.length > 0 && !shapeFits(shape, meta.shape)) {
        throw new InferenceError('SHAPE_MISMATCH', `input '${name}' has shape ${formatShape(shape)} but model '${this.model.name}' expects ${formatShape(meta.shape)} (-1 = any size)`);
      }
    }
    if (datatype === 'BYTES') {
      this.bytesElements += elementCount(shape);
      if (!(this.bytesElements <= this.maxBytesElements)) {
        throw new InferenceError('TOO_MANY_ELEMENTS', `input '${name}': the request's BYTES tensors have more than ${this.maxBytesElements} elements, the most this server decodes for one request`);
      }
    }
  }

  early(name: string | undefined, datatype: string | undefined): void {
    const accepted = name === undefined ? undefined : this.forms.get(name);
    if (accepted && datatype !== undefined && isDatatype(datatype) && !accepted.some((t) => t.datatype === datatype)) {
      throw new InferenceError('DATATYPE_MISMATCH', `input '${name}' has datatype ${datatype} but model '${this.model.name}' expects ${accepted[0].datatype}`);
    }
  }
}

/** The {@link InputCheck} for one request to `model`. */
export function inputCheckFor(model: ModelMetadata, maxBytesElements = MAX_BYTES_ELEMENTS): InputCheck {
  return new ModelInputCheck(model, maxBytesElements);
}
