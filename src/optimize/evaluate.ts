// Runs an original and an optimized model on the same rows and compares them: accuracy against labels when the
// data has them, agreement of the top class and output error always.
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { UserError } from '../core/errors.ts';

export type RuntimeName = 'onnxruntime-node' | 'onnxruntime-web';

/** Held-out data as the examples store it (examples/<m>/heldout.json). `y` is optional: without it only errors are reported. */
export interface EvalData {
  input: string;
  rowShape: number[];
  datatype: 'FP32' | 'FP64' | 'INT64' | 'INT32';
  x: number[][];
  y?: (number | string)[];
  classes?: string[];
}

export class EvalDataError extends UserError {}

/** Validates parsed JSON as EvalData; every problem names the field. */
export function parseEvalData(json: unknown, source = 'eval data'): EvalData {
  const fail = (m: string): never => {
    throw new EvalDataError(`${source}: ${m} (expected {"input": name, "rowShape": [..], "datatype": "FP32", "x": [[..], ..], "y"?: [..]})`);
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('not a JSON object');
  const d = json as Record<string, unknown>;
  if (typeof d.input !== 'string' || !d.input) fail('"input" must be the model input\'s name');
  if (!Array.isArray(d.rowShape) || !d.rowShape.every((n) => Number.isInteger(n) && n > 0)) fail('"rowShape" must be a list of positive integers');
  const datatype = (d.datatype ?? 'FP32') as string;
  if (!['FP32', 'FP64', 'INT64', 'INT32'].includes(datatype)) fail(`"datatype" ${JSON.stringify(d.datatype)} is not one of FP32, FP64, INT64, INT32`);
  if (!Array.isArray(d.x) || d.x.length === 0) fail('"x" must be a non-empty list of rows');
  const rowSize = (d.rowShape as number[]).reduce((a, b) => a * b, 1);
  (d.x as unknown[]).forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== rowSize) fail(`"x"[${i}] must hold ${rowSize} numbers (rowShape ${JSON.stringify(d.rowShape)}), got ${Array.isArray(row) ? row.length : typeof row}`);
    if (!(row as unknown[]).every((v) => typeof v === 'number')) fail(`"x"[${i}] holds a value that is not a number`);
  });
  if (d.y !== undefined) {
    if (!Array.isArray(d.y) || d.y.length !== (d.x as unknown[]).length) fail(`"y" must have one label per row of "x" (${(d.x as unknown[]).length})`);
  }
  return { input: d.input as string, rowShape: d.rowShape as number[], datatype: datatype as EvalData['datatype'], x: d.x as number[][], y: d.y as EvalData['y'], classes: d.classes as string[] | undefined };
}

export interface OutputValues {
  name: string;
  dims: number[];
  type: string;
  data: Float64Array;
}

type Ort = typeof ortNode | typeof ortWeb;

function ortOf(runtime: RuntimeName): Ort {
  return runtime === 'onnxruntime-web' ? ortWeb : ortNode;
}

function feedTensor(ort: Ort, data: EvalData, rows: number[][]) {
  const n = rows.length;
  const rowSize = data.rowShape.reduce((a, b) => a * b, 1);
  const dims = [n, ...data.rowShape];
  switch (data.datatype) {
    case 'FP64': {
      const a = new Float64Array(n * rowSize);
      rows.forEach((r, i) => a.set(r, i * rowSize));
      return new ort.Tensor('float64', a, dims);
    }
    case 'INT64': {
      const a = new BigInt64Array(n * rowSize);
      rows.forEach((r, i) => r.forEach((v, j) => (a[i * rowSize + j] = BigInt(Math.round(v)))));
      return new ort.Tensor('int64', a, dims);
    }
    case 'INT32': {
      const a = new Int32Array(n * rowSize);
      rows.forEach((r, i) => a.set(r, i * rowSize));
      return new ort.Tensor('int32', a, dims);
    }
    default: {
      const a = new Float32Array(n * rowSize);
      rows.forEach((r, i) => a.set(r, i * rowSize));
      return new ort.Tensor('float32', a, dims);
    }
  }
}

/** Runs the model on all rows of the data (in batches) and returns every numeric output, rows concatenated. */
export async function runOnData(model: Uint8Array, data: EvalData, runtime: RuntimeName = 'onnxruntime-node', batchSize = 256): Promise<OutputValues[]> {
  const ort = ortOf(runtime);
  const session = await ort.InferenceSession.create(model, runtime === 'onnxruntime-node' ? { intraOpNumThreads: 1 } : {});
  try {
    if (!session.inputNames.includes(data.input)) {
      throw new EvalDataError(`eval data "input" is '${data.input}', but the model's inputs are ${session.inputNames.map((n) => `'${n}'`).join(', ')}`);
    }
    const parts = new Map<string, { dims: number[]; type: string; chunks: Float64Array[] }>();
    for (let start = 0; start < data.x.length; start += batchSize) {
      const rows = data.x.slice(start, start + batchSize);
      const out = await session.run({ [data.input]: feedTensor(ort, data, rows) });
      for (const name of session.outputNames) {
        const t = out[name];
        if (!t || t.type === 'string') continue;
        const values = Float64Array.from(t.data as ArrayLike<number | bigint>, Number);
        const p = parts.get(name) ?? { dims: [...t.dims], type: t.type, chunks: [] };
        p.chunks.push(values);
        parts.set(name, p);
      }
    }
    return [...parts].map(([name, p]) => {
      const total = p.chunks.reduce((n, c) => n + c.length, 0);
      const data64 = new Float64Array(total);
      let o = 0;
      for (const c of p.chunks) {
        data64.set(c, o);
        o += c.length;
      }
      return { name, type: p.type, dims: [data.x.length, ...p.dims.slice(1)], data: data64 };
    });
  } finally {
    await session.release();
  }
}

export interface Comparison {
  /** The output used for classes: a float [N, C] output, or an integer label output [N]. */
  scoredOutput: string | null;
  rows: number;
  accuracyBefore: number | null;
  accuracyAfter: number | null;
  /** Fraction of rows whose predicted class changed. */
  disagreement: number | null;
  /** Over float outputs. */
  maxAbsError: number;
  meanAbsError: number;
}

function classesOf(o: OutputValues): number[] | null {
  if (o.dims.length === 2 && o.type.startsWith('float') && o.dims[1] > 1) {
    const [n, c] = o.dims;
    return Array.from({ length: n }, (_, i) => {
      let best = 0;
      for (let k = 1; k < c; k++) if (o.data[i * c + k] > o.data[i * c + best]) best = k;
      return best;
    });
  }
  if (o.dims.length === 1 && !o.type.startsWith('float')) return [...o.data];
  if (o.dims.length === 2 && o.dims[1] === 1 && !o.type.startsWith('float')) return [...o.data];
  return null;
}

function labelIndex(y: number | string, classes: string[] | undefined): number {
  if (typeof y === 'number') return y;
  const i = classes?.indexOf(y) ?? -1;
  return i >= 0 ? i : Number(y);
}

export function compareOutputs(before: OutputValues[], after: OutputValues[], data: EvalData): Comparison {
  let maxAbs = 0;
  let sumAbs = 0;
  let count = 0;
  for (const b of before) {
    const a = after.find((o) => o.name === b.name);
    if (!a || a.data.length !== b.data.length) throw new Error(`output '${b.name}' is missing or has another shape in the optimized model`);
    // Label outputs differ by whole classes; their change is counted as disagreement, not as output error.
    if (!b.type.startsWith('float')) continue;
    for (let i = 0; i < b.data.length; i++) {
      const e = Math.abs(a.data[i] - b.data[i]);
      if (e > maxAbs || Number.isNaN(e)) maxAbs = Number.isNaN(e) ? Infinity : e;
      sumAbs += e;
      count++;
    }
  }
  // Probabilities ([N, C] float) say more than labels: prefer them for the class decision.
  const scored = before.find((o) => o.dims.length === 2 && o.type.startsWith('float') && o.dims[1] > 1) ?? before.find((o) => classesOf(o));
  const result: Comparison = { scoredOutput: scored?.name ?? null, rows: data.x.length, accuracyBefore: null, accuracyAfter: null, disagreement: null, maxAbsError: maxAbs, meanAbsError: count ? sumAbs / count : 0 };
  if (!scored) return result;
  const cb = classesOf(scored)!;
  const ca = classesOf(after.find((o) => o.name === scored.name)!)!;
  result.disagreement = cb.filter((c, i) => c !== ca[i]).length / cb.length;
  if (data.y) {
    const y = data.y.map((v) => labelIndex(v, data.classes));
    result.accuracyBefore = cb.filter((c, i) => c === y[i]).length / y.length;
    result.accuracyAfter = ca.filter((c, i) => c === y[i]).length / y.length;
  }
  return result;
}

/** Random rows for models given without eval data: enough to check that the optimized model runs and agrees. */
export function syntheticData(input: string, rowShape: number[], rows = 32, seed = 1): EvalData {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const size = rowShape.reduce((a, b) => a * b, 1);
  return { input, rowShape, datatype: 'FP32', x: Array.from({ length: rows }, () => Array.from({ length: size }, rand)) };
}
