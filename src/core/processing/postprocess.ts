// Output post-processing: softmax, top-k, Triton's classification strings, and pooling + L2 normalisation for
// encoders. Pure arithmetic on rows of numbers.

/** Softmax over each row of `cols` values, in place on a copy. */
export function softmaxRows(values: ArrayLike<number>, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r * cols < values.length; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let i = 0; i < cols; i++) max = Math.max(max, values[o + i]);
    let sum = 0;
    for (let i = 0; i < cols; i++) sum += out[o + i] = Math.exp(values[o + i] - max);
    for (let i = 0; i < cols; i++) out[o + i] /= sum;
  }
  return out;
}

/** Indices of the k largest values of one row, largest first; ties keep the lower index first. */
export function topK(row: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  idx.sort((a, b) => (row[b] > row[a] ? 1 : row[b] < row[a] ? -1 : a - b));
  return idx.slice(0, Math.min(k, row.length));
}

/**
 * A score as Triton prints it: C++ std::to_string, i.e. printf "%f" (six decimals, no exponent) for floating
 * types and the plain integer for integer types.
 */
export function tritonScore(value: number, integer: boolean): string {
  if (integer) return String(value);
  if (Number.isNaN(value)) return value > 0 ? 'nan' : '-nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  const neg = value < 0 || Object.is(value, -0);
  const abs = Math.abs(value);
  // toFixed switches to exponent notation at 1e21; %f never does.
  const text = abs < 1e21 ? abs.toFixed(6) : `${BigInt(Math.round(abs))}.000000`;
  return neg ? `-${text}` : text;
}

/**
 * Triton's classification extension: for each row, the top k as "score:index" or "score:index:label" (a label
 * when the labels file has one for that index).
 */
export function classify(values: ArrayLike<number>, cols: number, k: number, labels: readonly string[] | undefined, integer: boolean): string[] {
  const out: string[] = [];
  for (let r = 0; r * cols < values.length || (cols === 0 && r === 0); r++) {
    const row = Array.prototype.slice.call(values, r * cols, (r + 1) * cols) as number[];
    for (const i of topK(row, k)) {
      const label = labels?.[i];
      out.push(label !== undefined && label !== '' ? `${tritonScore(row[i], integer)}:${i}:${label}` : `${tritonScore(row[i], integer)}:${i}`);
    }
    if (cols === 0) break;
  }
  return out;
}

/**
 * Pools token embeddings [batch, tokens, hidden] to [batch, hidden]: 'mean' averages the tokens the attention mask
 * keeps, 'cls' takes the first token.
 */
export function pool(hidden: ArrayLike<number>, shape: readonly number[], mode: 'mean' | 'cls', mask?: ArrayLike<number | bigint>): Float32Array {
  const [batch, tokens, dim] = shape;
  const out = new Float32Array(batch * dim);
  for (let b = 0; b < batch; b++) {
    if (mode === 'cls') {
      for (let d = 0; d < dim; d++) out[b * dim + d] = hidden[b * tokens * dim + d];
      continue;
    }
    let n = 0;
    for (let t = 0; t < tokens; t++) {
      if (mask && Number(mask[b * tokens + t]) === 0) continue;
      n++;
      const o = (b * tokens + t) * dim;
      for (let d = 0; d < dim; d++) out[b * dim + d] += hidden[o + d];
    }
    // A row with no kept token stays zero (as sentence-transformers' clamp to 1e-9 makes it).
    if (n > 0) for (let d = 0; d < dim; d++) out[b * dim + d] /= n;
  }
  return out;
}

/** Scales each row of `cols` values to unit Euclidean length (a zero row stays zero). */
export function l2NormalizeRows(values: Float32Array, cols: number): Float32Array {
  for (let r = 0; r * cols < values.length; r++) {
    let s = 0;
    for (let i = 0; i < cols; i++) s += values[r * cols + i] ** 2;
    const norm = Math.max(Math.sqrt(s), 1e-12);
    for (let i = 0; i < cols; i++) values[r * cols + i] /= norm;
  }
  return values;
}

/** A labels file: one label per line (Triton's label_filename), trailing empty lines dropped. */
export function parseLabels(text: string): string[] {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}
