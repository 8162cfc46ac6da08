// Runs an original and an optimized model on the same rows and compares them: accuracy against labels when the
// data has them, agreement of the top class and output error always.
import { UserError } from '../core/errors.ts';
import { DATATYPE_TO_ORT_TYPE, type Tensor } from '../core/index.ts';
import type { Backend } from '../runtime/backend.ts';
import { onnxruntimeNode } from '../runtime/onnxruntime-node.ts';
import { onnxruntimeWeb } from '../runtime/onnxruntime-web.ts';

export type RuntimeName = 'onnxruntime-node' | 'onnxruntime-web';

type EvalDatatype = 'FP32' | 'FP64' | 'INT64' | 'INT32';

/** One more per-row input of a model with several (BERT's attention_mask beside input_ids): row i goes with x[i]. */
export interface EvalInput {
  input: string;
  rowShape: number[];
  datatype: EvalDatatype;
  x: number[][];
}

/** An input sent unchanged with every row (Silero's sample rate `sr`, its initial state); rows then run one at a time. */
export interface FixedInput {
  name: string;
  datatype: EvalDatatype;
  shape: number[];
  data: number[];
}

/**
 * Held-out data as the examples store it (examples/<m>/heldout.json). `y` is optional: without it only errors are
 * reported. A model with several inputs is given them as {"inputs": [{"name", "rowShape", "datatype", "x"}, …],
 * "fixed"?: [{"name", "datatype", "shape", "data"}]}; the first of "inputs" fills input/rowShape/datatype/x.
 */
export interface EvalData extends EvalInput {
  y?: (number | string)[];
  classes?: string[];
  extra?: EvalInput[];
  fixed?: FixedInput[];
  /** Rows per run when the model takes a fixed batch (default: up to 256). */
  batchSize?: number;
}

export class EvalDataError extends UserError {}

const DATATYPES = ['FP32', 'FP64', 'INT64', 'INT32'];

/** Validates parsed JSON as EvalData; every problem names the field. */
export function parseEvalData(json: unknown, source = 'eval data'): EvalData {
  const usage = '{"input": name, "rowShape": [..], "datatype": "FP32", "x": [[..], ..], "y"?: [..]}, or {"inputs": [{"name", "rowShape", "datatype", "x"}, ..], "fixed"?: [{"name", "datatype", "shape", "data"}], "y"?: [..]}';
  const fail = (m: string): never => {
    throw new EvalDataError(`${source}: ${m} (expected ${usage})`);
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('not a JSON object');
  const d = json as Record<string, unknown>;
  const one = (e: Record<string, unknown>, where: string, nameKey: string): EvalInput => {
    if (typeof e[nameKey] !== 'string' || !e[nameKey]) fail(`${where}"${nameKey}" must be the model input's name`);
    if (!Array.isArray(e.rowShape) || !e.rowShape.every((n) => Number.isInteger(n) && n > 0)) fail(`${where}"rowShape" must be a list of positive integers`);
    const datatype = (e.datatype ?? 'FP32') as string;
    if (!DATATYPES.includes(datatype)) fail(`${where}"datatype" ${JSON.stringify(e.datatype)} is not one of ${DATATYPES.join(', ')}`);
    if (!Array.isArray(e.x) || e.x.length === 0) fail(`${where}"x" must be a non-empty list of rows`);
    const rowSize = (e.rowShape as number[]).reduce((a, b) => a * b, 1);
    (e.x as unknown[]).forEach((row, i) => {
      if (!Array.isArray(row) || row.length !== rowSize) fail(`${where}"x"[${i}] must hold ${rowSize} numbers (rowShape ${JSON.stringify(e.rowShape)}), got ${Array.isArray(row) ? row.length : typeof row}`);
      if (!(row as unknown[]).every((v) => typeof v === 'number')) fail(`${where}"x"[${i}] holds a value that is not a number`);
    });
    return { input: e[nameKey] as string, rowShape: e.rowShape as number[], datatype: datatype as EvalDatatype, x: e.x as number[][] };
  };
  let inputs: EvalInput[];
  if (d.inputs !== undefined) {
    if (!Array.isArray(d.inputs) || d.inputs.length === 0 || !d.inputs.every((e) => e && typeof e === 'object')) fail('"inputs" must be a non-empty list of {"name", "rowShape", "datatype", "x"}');
    inputs = (d.inputs as Record<string, unknown>[]).map((e, i) => one(e, `"inputs"[${i}].`, 'name'));
    inputs.forEach((e, i) => {
      if (e.x.length !== inputs[0].x.length) fail(`"inputs"[${i}]."x" has ${e.x.length} rows, "inputs"[0] has ${inputs[0].x.length}: row i of every input goes together`);
    });
  } else inputs = [one(d, '', 'input')];
  let fixed: FixedInput[] | undefined;
  if (d.fixed !== undefined) {
    if (!Array.isArray(d.fixed)) fail('"fixed" must be a list of {"name", "datatype", "shape", "data"}');
    fixed = (d.fixed as Record<string, unknown>[]).map((f, i) => {
      const where = `"fixed"[${i}].`;
      if (!f || typeof f.name !== 'string') fail(`${where}"name" must be the model input's name`);
      if (!DATATYPES.includes(String(f.datatype ?? 'FP32'))) fail(`${where}"datatype" is not one of ${DATATYPES.join(', ')}`);
      if (!Array.isArray(f.shape) || !f.shape.every((n) => Number.isInteger(n) && n >= 0)) fail(`${where}"shape" must be a list of sizes ([] for a scalar)`);
      const n = (f.shape as number[]).reduce((a, b) => a * b, 1);
      if (!Array.isArray(f.data) || f.data.length !== n || !f.data.every((v) => typeof v === 'number')) fail(`${where}"data" must hold ${n} numbers (shape ${JSON.stringify(f.shape)})`);
      return { name: f.name as string, datatype: String(f.datatype ?? 'FP32') as EvalDatatype, shape: f.shape as number[], data: f.data as number[] };
    });
  }
  const [first, ...extra] = inputs;
  if (d.y !== undefined) {
    if (!Array.isArray(d.y) || d.y.length !== first.x.length) fail(`"y" must have one label per row of "x" (${first.x.length})`);
  }
  return { ...first, y: d.y as EvalData['y'], classes: d.classes as string[] | undefined, ...(extra.length ? { extra } : {}), ...(fixed ? { fixed } : {}) };
}

export interface OutputValues {
  name: string;
  dims: number[];
  type: string;
  data: Float64Array;
}

function backendOf(runtime: RuntimeName): Backend {
  return runtime === 'onnxruntime-web' ? onnxruntimeWeb : onnxruntimeNode;
}

/** Rows of one input as a dais tensor (shape [rows, ...rowShape] unless given). */
function feedTensor(name: string, data: Pick<EvalInput, 'rowShape' | 'datatype'>, rows: number[][], shape?: number[]): Tensor {
  const n = rows.length;
  const rowSize = data.rowShape.reduce((a, b) => a * b, 1);
  const dims = shape ?? [n, ...data.rowShape];
  const tensor = (t: Tensor['data']): Tensor => ({ name, datatype: data.datatype, shape: dims, data: t });
  switch (data.datatype) {
    case 'FP64': {
      const a = new Float64Array(n * rowSize);
      rows.forEach((r, i) => a.set(r, i * rowSize));
      return tensor(a);
    }
    case 'INT64': {
      const a = new BigInt64Array(n * rowSize);
      rows.forEach((r, i) => r.forEach((v, j) => (a[i * rowSize + j] = BigInt(Math.round(v)))));
      return tensor(a);
    }
    case 'INT32': {
      const a = new Int32Array(n * rowSize);
      rows.forEach((r, i) => a.set(r, i * rowSize));
      return tensor(a);
    }
    default: {
      const a = new Float32Array(n * rowSize);
      rows.forEach((r, i) => a.set(r, i * rowSize));
      return tensor(a);
    }
  }
}

/** Runs the model on all rows of the data (in batches) and returns every numeric output, rows concatenated. */
export async function runOnData(model: Uint8Array, data: EvalData, runtime: RuntimeName = 'onnxruntime-node', batchSize = data.batchSize ?? 256): Promise<OutputValues[]> {
  const session = await backendOf(runtime).createSession(model, runtime === 'onnxruntime-node' ? { intraOpThreads: 1 } : {});
  try {
    const inputNames = session.inputs.map((i) => i.name);
    const outputNames = session.outputs.map((o) => o.name);
    const given = [data.input, ...(data.extra ?? []).map((e) => e.input), ...(data.fixed ?? []).map((f) => f.name)];
    for (const name of given) {
      if (!inputNames.includes(name)) throw new EvalDataError(`eval data names input '${name}', but the model's inputs are ${inputNames.map((n) => `'${n}'`).join(', ')}`);
    }
    const missing = inputNames.filter((n) => !given.includes(n));
    if (missing.length) throw new EvalDataError(`the model also needs ${missing.map((n) => `'${n}'`).join(', ')}: give every input in the eval data ("inputs", or "fixed" for one sent with every row)`);
    const fixed = (data.fixed ?? []).map((f) => feedTensor(f.name, { rowShape: [f.data.length], datatype: f.datatype }, [f.data], f.shape));
    // Fixed inputs (a state shaped for one row) mean one row per run.
    const step = data.fixed?.length ? 1 : batchSize;
    const parts = new Map<string, { dims: number[]; type: string; chunks: Float64Array[] }>();
    for (let start = 0; start < data.x.length; start += step) {
      const feeds = [...fixed, ...[data, ...(data.extra ?? [])].map((e) => feedTensor(e.input, e, e.x.slice(start, start + step)))];
      const out = await session.run(feeds, outputNames);
      for (const t of out) {
        if (t.datatype === 'BYTES') continue;
        const values = Float64Array.from(t.data as ArrayLike<number | bigint>, Number);
        // The type is kept in onnxruntime's words ('float32', 'int64'): compareOutputs reads floats by its prefix.
        const p = parts.get(t.name) ?? { dims: [...t.shape], type: DATATYPE_TO_ORT_TYPE[t.datatype], chunks: [] };
        p.chunks.push(values);
        parts.set(t.name, p);
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
    await session.dispose();
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
  return syntheticInputs([{ input, rowShape, datatype: 'FP32' }], rows, seed);
}

/**
 * Random rows for every input: FP32 uniform in [0, 1); integer inputs (token ids, masks) 1, valid for any
 * vocabulary and never an all-masked row.
 */
export function syntheticInputs(inputs: Omit<EvalInput, 'x'>[], rows = 32, seed = 1): EvalData {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const [first, ...extra] = inputs.map((i) => {
    const size = i.rowShape.reduce((a, b) => a * b, 1);
    const value = i.datatype === 'FP32' || i.datatype === 'FP64' ? rand : () => 1;
    return { ...i, x: Array.from({ length: rows }, () => Array.from({ length: size }, value)) };
  });
  return { ...first, ...(extra.length ? { extra } : {}) };
}
