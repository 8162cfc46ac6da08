// A model version's reference profile (profile.json beside its model file): one FeatureProfile per element of each
// input row and of each output row, the task the outputs answer, and the model's own score on the reference data.
// Also the one place that turns tensors into feature columns, so `dais profile` and the live windows agree.
import { readFileSync } from 'node:fs';
import { fromHalfBits, type Datatype, type Tensor, type TensorMetadata } from '../core/index.ts';
import { profileCategorical, profileNumeric, type FeatureProfile } from '../core/drift.ts';
import { UserError } from '../core/errors.ts';

export const PROFILE_FORMAT = 'dais-profile/1';
export { PROFILE_FILE } from '../layout/repository.ts';
/** Integer features with at most this many distinct reference values are profiled as categories. */
export const MAX_INTEGER_CATEGORIES = 50;
/** Per tensor; elements past it are left out of the profile (noted), which bounds the cost of every live check. */
export const DEFAULT_MAX_FEATURES = 1024;

export type Feature = FeatureProfile & { /** Position in the flattened row. */ index: number };

export interface TensorProfile {
  name: string;
  datatype: Datatype;
  rowShape: number[];
  features: Feature[];
  /** Set when the row has more elements than were profiled. */
  note?: string;
}

export type Task = 'classification' | 'regression';

/** How a prediction is read from the outputs, for feedback: a label output, the argmax of a score output, or a value. */
export interface PredictionSpec {
  task: Task;
  output: string;
  how: 'label' | 'argmax' | 'value';
}

export interface ModelProfile {
  format: typeof PROFILE_FORMAT;
  model: string;
  version: string;
  createdAt: string;
  source: { file: string; rows: number };
  inputs: TensorProfile[];
  outputs: TensorProfile[];
  prediction?: PredictionSpec;
  /** Ground truth in the reference data, and how the model scored on it. */
  label?: FeatureProfile;
  reference?: { rows: number; accuracy?: number; mae?: number };
}

export type Cell = number | string | null;

const INTEGER_TYPES = new Set<Datatype>(['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64']);
const decoder = new TextDecoder();

/** Rows (dimension 0) and elements per row of a tensor; a scalar is one row of one element. */
export function rowLayout(shape: readonly number[]): { rows: number; width: number; rowShape: number[] } {
  if (shape.length === 0) return { rows: 1, width: 1, rowShape: [] };
  const rowShape = shape.slice(1);
  return { rows: shape[0], width: rowShape.reduce((a, b) => a * b, 1), rowShape };
}

/** Element i of a tensor as a number (string for BYTES; FP16 decoded; BigInt converted). */
export function elementAt(t: Tensor, i: number): Cell {
  const d = t.data;
  if (t.datatype === 'BYTES') {
    const b = (d as Uint8Array[])[i];
    return b === undefined ? null : decoder.decode(b);
  }
  const v = (d as ArrayLike<number | bigint>)[i];
  if (v === undefined) return null;
  if (t.datatype === 'FP16') return fromHalfBits(v as number);
  return typeof v === 'bigint' ? Number(v) : v;
}

/** Columns of a tensor's rows: column j holds element j of every row. */
export function tensorColumns(t: Tensor, maxFeatures = DEFAULT_MAX_FEATURES): Cell[][] {
  const { rows, width } = rowLayout(t.shape);
  const cols: Cell[][] = [];
  for (let j = 0; j < Math.min(width, maxFeatures); j++) {
    const col: Cell[] = new Array(rows);
    for (let r = 0; r < rows; r++) col[r] = elementAt(t, r * width + j);
    cols.push(col);
  }
  return cols;
}

function featureName(tensor: string, rowShape: readonly number[], j: number, names?: readonly string[]): string {
  if (names && names[j]) return names[j];
  if (rowShape.length === 0 || (rowShape.length === 1 && rowShape[0] === 1)) return tensor;
  return `${tensor}[${j}]`;
}

/** Profiles columns of one tensor; `categorical` forces those feature names to categories. */
export function profileTensor(
  meta: { name: string; datatype: Datatype },
  rowShape: number[],
  columns: Cell[][],
  options: { featureNames?: readonly string[]; categorical?: readonly string[]; width?: number; maxFeatures?: number } = {},
): TensorProfile {
  const width = options.width ?? columns.length;
  const max = options.maxFeatures ?? DEFAULT_MAX_FEATURES;
  const features: Feature[] = [];
  for (let j = 0; j < Math.min(columns.length, max); j++) {
    const name = featureName(meta.name, rowShape, j, options.featureNames);
    const col = columns[j];
    let categorical = meta.datatype === 'BYTES' || (options.categorical?.includes(name) ?? false) || col.some((v) => typeof v === 'string');
    if (!categorical && INTEGER_TYPES.has(meta.datatype)) {
      const distinct = new Set<Cell>();
      for (const v of col) if (v !== null && distinct.size <= MAX_INTEGER_CATEGORIES) distinct.add(v);
      categorical = distinct.size <= MAX_INTEGER_CATEGORIES;
    }
    const profile = categorical ? profileCategorical(name, col) : profileNumeric(name, col.map((v) => (typeof v === 'number' ? v : NaN)));
    features.push({ ...profile, index: j });
  }
  const out: TensorProfile = { name: meta.name, datatype: meta.datatype, rowShape, features };
  if (width > max) out.note = `only the first ${max} of ${width} elements per row are profiled`;
  return out;
}

/** Reads a prediction from the outputs: a label output, else argmax of a score output, else a single value (regression). */
export function predictionSpecOf(outputs: readonly TensorMetadata[]): PredictionSpec | undefined {
  const widthOf = (t: TensorMetadata) => t.shape.slice(1).reduce((a, b) => a * (b < 0 ? 0 : b), 1);
  const label = outputs.find((t) => (INTEGER_TYPES.has(t.datatype) || t.datatype === 'BYTES') && t.shape.length >= 1 && widthOf(t) === 1);
  if (label) return { task: 'classification', output: label.name, how: 'label' };
  const scores = outputs.find((t) => t.shape.length >= 2 && widthOf(t) > 1);
  if (scores) return { task: 'classification', output: scores.name, how: 'argmax' };
  const value = outputs.find((t) => t.shape.length >= 1 && widthOf(t) === 1);
  if (value) return { task: 'regression', output: value.name, how: 'value' };
  return undefined;
}

/** The index of the largest of `width` elements from `start` (read from `floats` when the data is float). */
function argmaxOf(t: Tensor, floats: Float32Array | Float64Array | undefined, start: number, width: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let j = 0; j < width; j++) {
    const v = floats ? floats[start + j] : Number(elementAt(t, start + j));
    if (v > bestValue) {
      bestValue = v;
      best = j;
    }
  }
  return best;
}

/** The prediction for each row of a response, per the spec (undefined when the output is absent). */
export function predictionsOf(spec: PredictionSpec, outputs: readonly Tensor[]): Cell[] | undefined {
  const t = outputs.find((o) => o.name === spec.output);
  if (!t) return undefined;
  const { rows, width } = rowLayout(t.shape);
  const out: Cell[] = [];
  // A classifier's float scores (the common case; every request comes here, monitor.ts) are read directly.
  const floats = t.data instanceof Float32Array || t.data instanceof Float64Array ? t.data : undefined;
  for (let r = 0; r < rows; r++) {
    if (spec.how === 'argmax') out.push(argmaxOf(t, floats, r * width, width));
    else out.push(elementAt(t, r * width));
  }
  return out;
}

/**
 * The prediction of an answer whose output has one row, where it is a number (a class index, a value), read without
 * an array or a layout object: every request of a monitored server comes here (monitor.ts). Undefined otherwise
 * (use predictionsOf).
 */
export function onePrediction(spec: PredictionSpec, outputs: readonly Tensor[]): number | undefined {
  let t: Tensor | undefined;
  for (let i = 0; i < outputs.length; i++) if (outputs[i].name === spec.output) t = outputs[i];
  if (!t || (t.shape.length > 0 && t.shape[0] !== 1)) return undefined;
  const d = t.data;
  if (spec.how !== 'argmax') {
    const v = elementAt(t, 0);
    return typeof v === 'number' ? v : undefined;
  }
  return d instanceof Float32Array || d instanceof Float64Array ? argmaxOf(t, d, 0, d.length) : undefined;
}

export class ProfileError extends UserError {}

/** Reads and checks a profile.json; throws ProfileError naming the file and the problem. */
export function readProfile(file: string): ModelProfile {
  const text = readFileSync(file, 'utf8');
  let p: ModelProfile;
  try {
    p = JSON.parse(text) as ModelProfile;
  } catch (e) {
    throw new ProfileError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (p?.format !== PROFILE_FORMAT) throw new ProfileError(`${file}: not a dais profile (format '${String(p?.format)}', expected '${PROFILE_FORMAT}'); make one with 'dais profile'`);
  if (!Array.isArray(p.inputs) || !Array.isArray(p.outputs)) throw new ProfileError(`${file}: 'inputs' and 'outputs' must be lists of tensor profiles`);
  return p;
}
