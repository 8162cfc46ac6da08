// `dais profile`: reads reference data, runs the model on it, and profiles every input feature and every output
// element — the reference the server's live drift windows are compared with.
import { writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { versionFolderOf } from '../layout/repository.ts';
import { allocate, InferenceError, type Datatype, type Tensor, type TensorData, type TensorMetadata } from '../core/index.ts';
import { profileCategorical, profileNumeric } from '../core/drift.ts';
import { loadModelFile } from '../formats/index.ts';
import { inspectOnnx } from '../formats/onnx/inspect.ts';
import { batchingObstacle, ServedModelVersion } from '../runtime/served-model.ts';
import { onnxruntimeNode } from '../runtime/onnxruntime-node.ts';
import { readDataFile, type Cell, type DataSet, DataFileError } from './data-file.ts';
import {
  DEFAULT_MAX_FEATURES,
  PROFILE_FILE,
  PROFILE_FORMAT,
  predictionSpecOf,
  predictionsOf,
  profileTensor,
  tensorColumns,
  rowLayout,
  type ModelProfile,
  type PredictionSpec,
  type Task,
} from './model-profile.ts';

export interface ProfileOptions {
  /** Model file (…/<model>/<version>/model.onnx); the name and version come from its folders unless given. */
  model: string;
  data: string;
  label?: string;
  /** Names of a one-input model's row elements when the data has none (.npy, bare JSONL arrays). Default: the model's
   * own 'features' metadata property (comma-separated), when it has one of the right length. */
  featureNames?: string[];
  /** Feature names to treat as categories whatever their datatype. */
  categorical?: string[];
  task?: Task;
  name?: string;
  version?: string;
  maxRows?: number;
  maxFeatures?: number;
  batchSize?: number;
}

/** Where a model file's profile lives: beside it (<repo>/<model>/<version>/profile.json). */
export function profilePathFor(modelFile: string): string {
  return join(dirname(modelFile), PROFILE_FILE);
}

/** Name and version from <repo>/<model>/<version>/model.onnx; a lone file is version 1 of its own name. */
export function identityOf(modelFile: string): { name: string; version: string } {
  const versioned = versionFolderOf(modelFile);
  if (versioned) return { name: versioned.name, version: versioned.version };
  return { name: basename(modelFile).replace(/\.[^.]+$/, ''), version: '1' };
}

function tensorOf(input: TensorMetadata, rowShape: number[], rows: Cell[][]): Tensor {
  const width = rowShape.reduce((a, b) => a * b, 1);
  const n = rows.length * width;
  const datatype: Datatype = input.datatype;
  let data: TensorData;
  if (datatype === 'BYTES') {
    const enc = new TextEncoder();
    data = rows.flatMap((r) => r.map((v) => enc.encode(v === null ? '' : String(v))));
  } else {
    data = allocate(datatype, n);
    const big = data instanceof BigInt64Array || data instanceof BigUint64Array;
    let k = 0;
    for (const r of rows) {
      for (const v of r) {
        if (typeof v === 'string') throw new DataFileError(`input '${input.name}' is ${datatype}, but the data holds the text '${v}'`);
        const x = v === null ? NaN : v;
        if (big) {
          if (!Number.isInteger(x)) throw new DataFileError(`input '${input.name}' is ${datatype}, but the data holds ${v === null ? 'a missing value' : x}`);
          (data as BigInt64Array)[k++] = BigInt(x);
        } else (data as Float32Array)[k++] = datatype === 'BOOL' ? Number(Boolean(x)) : x;
      }
    }
    if (datatype === 'FP16') throw new DataFileError(`input '${input.name}' is FP16: profile a float32 copy of the model (dais optimize writes one), or give JSON with the half bits`);
  }
  return { name: input.name, datatype, shape: [rows.length, ...rowShape], data };
}

function concatColumns(parts: Cell[][][]): Cell[][] {
  if (parts.length === 0) return [];
  return parts[0].map((_, j) => parts.flatMap((p) => p[j]));
}

/** Runs the model over the data in batches and returns per-output columns (and the output row shapes). */
async function runModel(model: ServedModelVersion, data: DataSet, batchSize: number, maxFeatures: number): Promise<{ outputs: Map<string, { meta: TensorMetadata; rowShape: number[]; columns: Cell[][]; width: number }>; predictions: Tensor[][] }> {
  const meta = model.metadata();
  const batchable = batchingObstacle(meta.inputs, meta.outputs) === undefined;
  const step = batchable ? batchSize : 1;
  const parts = new Map<string, { meta: TensorMetadata; rowShape: number[]; parts: Cell[][][]; width: number }>();
  const predictions: Tensor[][] = [];
  for (let start = 0; start < data.rows; start += step) {
    const end = Math.min(data.rows, start + step);
    const inputs = data.inputs.map((c) => tensorOf(meta.inputs.find((t) => t.name === c.name)!, c.rowShape, c.rows.slice(start, end)));
    let response;
    try {
      response = await model.infer({ inputs });
    } catch (e) {
      const msg = e instanceof InferenceError ? e.message : String(e);
      throw new DataFileError(`the model refused rows ${start + 1}–${end} of ${data.file}: ${msg}`);
    }
    predictions.push(response.outputs);
    for (const o of response.outputs) {
      const m = meta.outputs.find((t) => t.name === o.name) ?? { name: o.name, datatype: o.datatype, shape: o.shape };
      const { rowShape, width } = rowLayout(o.shape);
      let entry = parts.get(o.name);
      if (!entry) parts.set(o.name, (entry = { meta: m, rowShape, parts: [], width }));
      entry.parts.push(tensorColumns(o, maxFeatures));
    }
  }
  const outputs = new Map([...parts].map(([k, v]) => [k, { meta: v.meta, rowShape: v.rowShape, columns: concatColumns(v.parts), width: v.width }]));
  return { outputs, predictions };
}

function score(spec: PredictionSpec, predictions: Tensor[][], labels: Cell[]): { accuracy?: number; mae?: number; rows: number } {
  const predicted = predictions.flatMap((outs) => predictionsOf(spec, outs) ?? []);
  let n = 0;
  let sum = 0;
  for (let i = 0; i < Math.min(predicted.length, labels.length); i++) {
    const truth = labels[i];
    if (truth === null) continue;
    n++;
    if (spec.task === 'classification') sum += String(predicted[i]) === String(truth) ? 1 : 0;
    else sum += Math.abs(Number(predicted[i]) - Number(truth));
  }
  if (n === 0) return { rows: 0 };
  return spec.task === 'classification' ? { rows: n, accuracy: sum / n } : { rows: n, mae: sum / n };
}

export async function buildProfile(options: ProfileOptions): Promise<ModelProfile> {
  const id = identityOf(options.model);
  const file = await loadModelFile(options.model);
  const model = await ServedModelVersion.load(file.onnx, { name: options.name ?? id.name, version: options.version ?? id.version, backend: onnxruntimeNode });
  try {
    const meta = model.metadata();
    const data = await readDataFile(options.data, meta.inputs, { label: options.label });
    if (options.maxRows && data.rows > options.maxRows) {
      data.rows = options.maxRows;
      for (const c of data.inputs) c.rows = c.rows.slice(0, options.maxRows);
      if (data.labels) data.labels = data.labels.slice(0, options.maxRows);
    }
    if (data.rows < 2) throw new DataFileError(`${options.data}: a profile needs at least 2 rows (a few hundred make the drift tests meaningful)`);
    const maxFeatures = options.maxFeatures ?? DEFAULT_MAX_FEATURES;
    if (data.inputs.length === 1 && !data.inputs[0].featureNames) {
      const width = data.inputs[0].rowShape.reduce((a, b) => a * b, 1);
      const fromModel = (await inspectOnnx(file.onnx)).metadata.features?.split(',').map((s) => s.trim());
      const names = options.featureNames ?? fromModel;
      if (options.featureNames && options.featureNames.length !== width) throw new DataFileError(`--feature-names has ${options.featureNames.length} names; input '${data.inputs[0].name}' rows have ${width} elements`);
      if (names && names.length === width) data.inputs[0].featureNames = names;
    }
    const inputs = data.inputs.map((c) => {
      const m = meta.inputs.find((t) => t.name === c.name)!;
      const width = c.rowShape.reduce((a, b) => a * b, 1);
      // Profiled as the model (and the live window) sees them: 301.7 in a CSV is float32 301.70001 in a request,
      // and a reference in float64 would put every value that sits on a cut point in the wrong bin.
      const columns = tensorColumns(tensorOf(m, c.rowShape, c.rows), maxFeatures);
      return profileTensor(m, c.rowShape, columns, { featureNames: c.featureNames, categorical: options.categorical, width, maxFeatures });
    });
    const ran = await runModel(model, data, options.batchSize ?? 256, maxFeatures);
    const outputs = [...ran.outputs.values()].map((o) => profileTensor(o.meta, o.rowShape, o.columns, { categorical: options.categorical, width: o.width, maxFeatures }));
    let prediction = predictionSpecOf(meta.outputs);
    if (options.task && prediction && prediction.task !== options.task) {
      const value = meta.outputs.find((t) => t.datatype.startsWith('FP'));
      prediction = options.task === 'regression' && value ? { task: 'regression', output: value.name, how: 'value' } : prediction;
    }
    const profile: ModelProfile = {
      format: PROFILE_FORMAT,
      model: options.name ?? id.name,
      version: options.version ?? id.version,
      createdAt: new Date().toISOString(),
      source: { file: basename(options.data), rows: data.rows },
      inputs,
      outputs,
      ...(prediction ? { prediction } : {}),
    };
    if (data.labels) {
      const numeric = data.labels.every((v) => v === null || typeof v === 'number');
      const classification = (prediction?.task ?? 'classification') === 'classification';
      profile.label = classification || !numeric ? profileCategorical('label', data.labels) : profileNumeric('label', data.labels.map((v) => (v === null ? NaN : Number(v))));
      if (prediction) profile.reference = score(prediction, ran.predictions, data.labels);
    }
    return profile;
  } finally {
    await model.dispose();
  }
}

export async function writeProfile(profile: ModelProfile, out: string): Promise<void> {
  await writeFile(out, JSON.stringify(profile) + '\n');
}
