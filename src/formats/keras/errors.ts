// Why a Keras file could not be converted. Every refusal is a ModelFileError (so `dais serve`, `inspect` and
// `convert` report it as one line), with a finer `reason` and, for layer problems, the layer's name and class.
import { ModelFileError } from '../errors.ts';

export type KerasErrorReason =
  /** A layer class (or one of its options) that the converter does not translate. */
  | 'UNSUPPORTED_LAYER'
  /** A file from a Keras version or saving format the converter does not read (Keras 1, weights-only files). */
  | 'UNSUPPORTED_FORMAT'
  /** The config names a layer whose weights are absent or have another shape than the config implies. */
  | 'MISSING_WEIGHTS'
  /** The bytes are not an HDF5 file / zip archive, or the model config is not valid JSON of the expected shape. */
  | 'CORRUPT_FILE';

export class KerasImportError extends ModelFileError {
  readonly reason: KerasErrorReason;
  readonly layer?: { name: string; className: string };
  constructor(reason: KerasErrorReason, message: string, layer?: { name: string; className: string }) {
    super(message);
    this.name = 'KerasImportError';
    this.reason = reason;
    if (layer) this.layer = { name: layer.name, className: layer.className };
  }
}

/** A refusal for one layer: names the layer and its class, then says why and what to do. */
export function unsupported(layer: { name: string; className: string }, why: string): KerasImportError {
  return new KerasImportError('UNSUPPORTED_LAYER', `layer '${layer.name}' (${layer.className}): ${why}`, layer);
}
