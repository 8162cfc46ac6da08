// Reference data for `dais profile`: a CSV table (header row), JSON Lines, or a NumPy .npy array, read into rows
// per model input. Every refusal names the file, the line or column, and what would be accepted.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { TensorMetadata } from '../core/index.ts';
import { UserError } from '../core/errors.ts';

export type Cell = number | string | null;

export interface InputColumns {
  name: string;
  /** Shape of one row (the input's shape without dimension 0). */
  rowShape: number[];
  /** Names of the flattened row's elements, when the data names them (CSV header, JSONL keys). */
  featureNames?: string[];
  /** One flattened row per sample. */
  rows: Cell[][];
}

export interface DataSet {
  file: string;
  rows: number;
  inputs: InputColumns[];
  /** Ground truth per row, when the data has a label column/key. */
  labels?: Cell[];
}

export class DataFileError extends UserError {}

export const LABEL_NAMES = ['label', 'target', 'y'];

const product = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines. */
export function parseCsv(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (!(row.length === 1 && row[0] === '')) out.push(row);
      row = [];
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    out.push(row);
  }
  return out;
}

function cellOf(s: string, numeric: boolean): Cell {
  const t = s.trim();
  if (t === '' || /^(nan|null|na|n\/a)$/i.test(t)) return null;
  if (!numeric) return t;
  const n = Number(t);
  return Number.isNaN(n) ? t : n;
}

/** The row shape of an input, with a variable dimension resolved from the number of values per row. */
function resolveRowShape(input: TensorMetadata, width: number, where: string): number[] {
  const row = input.shape.slice(1);
  const unknown = row.filter((d) => d < 0).length;
  if (unknown === 0) {
    if (product(row) !== width) throw new DataFileError(`${where}: input '${input.name}' takes ${product(row)} values per row (shape [${row.join(', ')}]), the data has ${width}`);
    return row;
  }
  if (row.length === 1) return [width];
  const known = product(row.filter((d) => d >= 0));
  if (unknown === 1 && width % known === 0) return row.map((d) => (d < 0 ? width / known : d));
  throw new DataFileError(`${where}: input '${input.name}' has shape [${input.shape.join(', ')}] with more than one variable dimension; give rows as nested arrays in JSON Lines or .npy`);
}

function isNumericType(t: TensorMetadata): boolean {
  return t.datatype !== 'BYTES';
}

function pickLabel(header: string[], label: string | undefined, file: string): number {
  if (label !== undefined) {
    const i = header.indexOf(label);
    if (i < 0) throw new DataFileError(`${file}: no column '${label}' for --label; columns: ${header.join(', ')}`);
    return i;
  }
  return header.findIndex((h) => LABEL_NAMES.includes(h.trim().toLowerCase()));
}

function readCsv(text: string, file: string, inputs: readonly TensorMetadata[], label: string | undefined): DataSet {
  const table = parseCsv(text);
  if (table.length < 2) throw new DataFileError(`${file}: expected a header row and at least one data row`);
  const header = table[0].map((h) => h.trim());
  const labelAt = pickLabel(header, label, file);
  const featureCols = header.map((_, i) => i).filter((i) => i !== labelAt);
  for (let r = 1; r < table.length; r++) {
    if (table[r].length !== header.length) throw new DataFileError(`${file} line ${r + 1}: ${table[r].length} fields, the header has ${header.length}`);
  }
  const body = table.slice(1);
  const labels = labelAt >= 0 ? body.map((row) => cellOf(row[labelAt], true)) : undefined;
  if (inputs.length === 1) {
    const input = inputs[0];
    const rowShape = resolveRowShape(input, featureCols.length, file);
    const numeric = isNumericType(input);
    return {
      file,
      rows: body.length,
      inputs: [{ name: input.name, rowShape, featureNames: featureCols.map((i) => header[i]), rows: body.map((row) => featureCols.map((i) => cellOf(row[i], numeric))) }],
      labels,
    };
  }
  // Several inputs: one column per input, named as the input (inputs of one value per row).
  const out: InputColumns[] = [];
  for (const input of inputs) {
    const i = header.indexOf(input.name);
    if (i < 0) throw new DataFileError(`${file}: the model has inputs ${inputs.map((t) => t.name).join(', ')}; a CSV needs one column named after each (or use JSON Lines with {"<input>": [...]} per line)`);
    const rowShape = resolveRowShape(input, 1, file);
    out.push({ name: input.name, rowShape, featureNames: [input.name], rows: body.map((row) => [cellOf(row[i], isNumericType(input))]) });
  }
  return { file, rows: body.length, inputs: out, labels };
}

function flatten(v: unknown, out: Cell[]): number[] {
  if (Array.isArray(v)) {
    const shapes = v.map((x) => flatten(x, out));
    return shapes.length ? [v.length, ...shapes[0]] : [0];
  }
  out.push(v === null || v === undefined ? null : typeof v === 'number' || typeof v === 'string' ? v : typeof v === 'boolean' ? Number(v) : String(v));
  return [];
}

function readJsonl(text: string, file: string, inputs: readonly TensorMetadata[], label: string | undefined): DataSet {
  const names = inputs.map((t) => t.name);
  const labelKey = label ?? undefined;
  const columns = new Map<string, { rowShape?: number[]; rows: Cell[][] }>(names.map((n) => [n, { rows: [] }]));
  const labels: Cell[] = [];
  let hasLabels = false;
  let rows = 0;
  const lines = text.split('\n');
  lines.forEach((raw, li) => {
    const line = raw.trim();
    if (!line) return;
    const where = `${file} line ${li + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new DataFileError(`${where}: not valid JSON (${(e as Error).message})`);
    }
    let perInput: Record<string, unknown>;
    if (Array.isArray(value)) {
      if (inputs.length !== 1) throw new DataFileError(`${where}: a bare array works for one-input models; this one has ${names.join(', ')}: write {"${names[0]}": [...], ...}`);
      perInput = { [names[0]]: value };
    } else if (typeof value === 'object' && value !== null) {
      const obj = value as Record<string, unknown>;
      const lk = labelKey ?? Object.keys(obj).find((k) => LABEL_NAMES.includes(k.toLowerCase()) && !names.includes(k));
      perInput = {};
      for (const [k, v] of Object.entries(obj)) {
        if (k === lk) continue;
        if (!names.includes(k)) throw new DataFileError(`${where}: key '${k}' is not an input of the model (inputs: ${names.join(', ')}; a label goes under 'label' or --label)`);
        perInput[k] = v;
      }
      if (lk !== undefined && lk in obj) {
        hasLabels = true;
        labels[rows] = (obj[lk] as Cell) ?? null;
      }
    } else throw new DataFileError(`${where}: each line must be an array (one row of the input) or an object {"<input>": row}`);
    for (const n of names) {
      if (!(n in perInput)) throw new DataFileError(`${where}: input '${n}' is missing`);
      const flat: Cell[] = [];
      const shape = flatten(perInput[n], flat);
      const col = columns.get(n)!;
      const input = inputs.find((t) => t.name === n)!;
      col.rowShape ??= shape.length ? resolveNested(input, shape, where) : resolveRowShape(input, 1, where);
      if (flat.length !== product(col.rowShape)) throw new DataFileError(`${where}: input '${n}' has ${flat.length} values, earlier rows had ${product(col.rowShape)}`);
      col.rows.push(flat);
    }
    rows++;
  });
  if (rows === 0) throw new DataFileError(`${file}: no rows`);
  return {
    file,
    rows,
    inputs: names.map((n) => ({ name: n, rowShape: columns.get(n)!.rowShape!, rows: columns.get(n)!.rows })),
    labels: hasLabels ? Array.from({ length: rows }, (_, i) => labels[i] ?? null) : undefined,
  };
}

function resolveNested(input: TensorMetadata, shape: number[], where: string): number[] {
  const row = input.shape.slice(1);
  if (row.length === shape.length && row.every((d, i) => d < 0 || d === shape[i])) return shape;
  // A flat list for a multi-dimensional input is fine when the sizes add up.
  if (shape.length === 1) return resolveRowShape(input, shape[0], where);
  throw new DataFileError(`${where}: input '${input.name}' rows have shape [${row.join(', ')}], the data has [${shape.join(', ')}]`);
}

const NPY_TYPES: Record<string, (b: ArrayBuffer, o: number, n: number) => ArrayLike<number | bigint>> = {
  '<f4': (b, o, n) => new Float32Array(b, o, n),
  '<f8': (b, o, n) => new Float64Array(b, o, n),
  '<i4': (b, o, n) => new Int32Array(b, o, n),
  '<i8': (b, o, n) => new BigInt64Array(b, o, n),
  '<i2': (b, o, n) => new Int16Array(b, o, n),
  '|i1': (b, o, n) => new Int8Array(b, o, n),
  '|u1': (b, o, n) => new Uint8Array(b, o, n),
  '|b1': (b, o, n) => new Uint8Array(b, o, n),
  '<u2': (b, o, n) => new Uint16Array(b, o, n),
  '<u4': (b, o, n) => new Uint32Array(b, o, n),
};

/** A NumPy .npy file (format 1.0–3.0, little-endian, C order) as shape + numbers. */
export function parseNpy(bytes: Uint8Array, file: string): { shape: number[]; data: ArrayLike<number | bigint> } {
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== 'NUMPY') throw new DataFileError(`${file}: not a .npy file (no \\x93NUMPY magic)`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new DataFileError(`${file}: cannot read the .npy header '${header.trim()}'`);
  if (fortran) throw new DataFileError(`${file}: Fortran-ordered arrays are not supported: save with np.ascontiguousarray(x)`);
  const make = NPY_TYPES[descr];
  if (!make) throw new DataFileError(`${file}: dtype '${descr}' is not supported (little-endian float32/64, int8–64, uint8–32, bool are)`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const n = product(shape);
  const offset = start + headerLen;
  // Copy so the typed array is aligned whatever the header length.
  const body = bytes.slice(offset, offset + n * Number(descr.slice(2)));
  if (body.byteLength < n * Number(descr.slice(2))) throw new DataFileError(`${file}: truncated (${body.byteLength} data bytes for shape [${shape.join(', ')}])`);
  return { shape, data: make(body.buffer, 0, n) };
}

function readNpy(bytes: Uint8Array, file: string, inputs: readonly TensorMetadata[]): DataSet {
  if (inputs.length !== 1) throw new DataFileError(`${file}: a .npy file feeds one-input models; this one has ${inputs.map((t) => t.name).join(', ')}: use JSON Lines`);
  const { shape, data } = parseNpy(bytes, file);
  if (shape.length < 1) throw new DataFileError(`${file}: a 0-d array holds no rows`);
  const rows = shape[0];
  const width = product(shape.slice(1));
  const rowShape = shape.length > 1 ? resolveNested(inputs[0], shape.slice(1), file) : resolveRowShape(inputs[0], 1, file);
  const out: Cell[][] = [];
  for (let r = 0; r < rows; r++) {
    const row: Cell[] = new Array(width);
    for (let j = 0; j < width; j++) row[j] = Number(data[r * width + j]);
    out.push(row);
  }
  return { file, rows, inputs: [{ name: inputs[0].name, rowShape, rows: out }] };
}

/** The held-out format of the examples and `dais optimize --eval`: {"input"?, "x": [row, …], "y"?: [label, …], "featureNames"?}. */
function readHeldoutJson(text: string, file: string, inputs: readonly TensorMetadata[]): DataSet {
  let v: { input?: string; x?: unknown; y?: unknown; featureNames?: unknown };
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataFileError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || !Array.isArray(v.x)) throw new DataFileError(`${file}: expected {"x": [row, …], "y": [label, …]} (the examples' heldout.json format); for one row per line use .jsonl`);
  const input = v.input !== undefined ? inputs.find((t) => t.name === v.input) : inputs.length === 1 ? inputs[0] : undefined;
  if (!input) throw new DataFileError(`${file}: "input" must name one of the model's inputs (${inputs.map((t) => t.name).join(', ')})`);
  if (inputs.length !== 1) throw new DataFileError(`${file}: this format feeds one-input models; the model has ${inputs.map((t) => t.name).join(', ')}: use JSON Lines`);
  const rows: Cell[][] = [];
  let rowShape: number[] | undefined;
  (v.x as unknown[]).forEach((row, i) => {
    const flat: Cell[] = [];
    const shape = flatten(row, flat);
    rowShape ??= shape.length ? resolveNested(input, shape, `${file} x[${i}]`) : resolveRowShape(input, 1, file);
    if (flat.length !== product(rowShape)) throw new DataFileError(`${file} x[${i}]: ${flat.length} values, earlier rows had ${product(rowShape)}`);
    rows.push(flat);
  });
  if (!rows.length) throw new DataFileError(`${file}: "x" holds no rows`);
  const labels = Array.isArray(v.y) ? (v.y as Cell[]) : undefined;
  if (labels && labels.length !== rows.length) throw new DataFileError(`${file}: "y" has ${labels.length} labels for ${rows.length} rows`);
  const names = Array.isArray(v.featureNames) && v.featureNames.length === product(rowShape!) ? (v.featureNames as string[]) : undefined;
  return { file, rows: rows.length, inputs: [{ name: input.name, rowShape: rowShape!, featureNames: names, rows }], labels };
}

/** Reads a reference data file for a model with these inputs. `label` names the ground-truth column/key. */
export async function readDataFile(file: string, inputs: readonly TensorMetadata[], options: { label?: string } = {}): Promise<DataSet> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new DataFileError(err.code === 'ENOENT' ? `data file not found: ${file}` : `cannot read ${file}: ${err.message}`);
  }
  const ext = extname(file).toLowerCase();
  if (ext === '.npy') return readNpy(bytes, file, inputs);
  const text = new TextDecoder().decode(bytes);
  if (ext === '.csv') return readCsv(text, file, inputs, options.label);
  if (ext === '.jsonl' || ext === '.ndjson') return readJsonl(text, file, inputs, options.label);
  if (ext === '.json') return readHeldoutJson(text, file, inputs);
  throw new DataFileError(`${file}: unknown data format '${ext || '(no extension)'}': use .csv (header row), .jsonl (one JSON row per line), .npy, or .json {"x": rows, "y": labels}`);
}
