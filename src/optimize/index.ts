// `optimizeModel`: makes a model smaller (int8 weights, int8 dynamic, fp16, fewer trees), checks that the result
// runs in onnxruntime-node and onnxruntime-web, compares it with the original on held-out data and refuses it
// when accuracy drops by more than allowed. `dais optimize` and `dais build --quantize` both call this.
import { describeModel } from '../formats/onnx/inspect.ts';
import { message, onnx, readOnnx, writeOnnx } from '../formats/onnx/onnx.ts';
import { stripZipMap } from '../formats/onnx/zipmap.ts';
import { compareOutputs, runOnData, syntheticInputs, type Comparison, type EvalData, type OutputValues, type RuntimeName } from './evaluate.ts';
import { convertToFp16, type Fp16Conversion } from './fp16.ts';
import { DYNAMIC_OPS, quantizeDynamicInt8, type DynamicOp, type DynamicQuantization } from './int8-dynamic.ts';
import { quantizeWeightsInt8, type WeightQuantization } from './int8-weights.ts';
import { measureModels, type Measurement } from './measure.ts';
import { pruneTrees, treeEnsembles, type TreePruning } from './trees.ts';
import { UserError } from '../core/errors.ts';

export { parseEvalData, EvalDataError, type EvalData, type RuntimeName } from './evaluate.ts';
export type { Measurement } from './measure.ts';

export const QUANTIZE_MODES = ['int8-weights', 'int8-dynamic', 'fp16'] as const;
export type QuantizeMode = (typeof QUANTIZE_MODES)[number];

export interface OptimizeOptions {
  quantize?: QuantizeMode;
  /** Keep this many trees of each tree ensemble, or 'auto': the fewest whose accuracy drop stays within maxDrop. */
  pruneTrees?: number | 'auto';
  /** Held-out rows (with labels: accuracy; without: agreement with the original). Without it, random rows only check that the model runs. */
  eval?: EvalData;
  /** Largest allowed accuracy drop (labelled data) or share of changed predictions (unlabelled), as a fraction. Default 0.01. */
  maxDrop?: number;
  /** Largest allowed absolute difference of any output value; unset = not checked. */
  maxError?: number;
  /** Runtimes the result must run in. Default both. */
  runtimes?: RuntimeName[];
  /** Measure latency and peak memory of both models in child processes. Default false (it takes seconds). */
  measure?: boolean | { runtime?: RuntimeName; minMs?: number };
  /** int8-dynamic: 7-bit weights for CPUs without VNNI. */
  reduceRange?: boolean;
  /** int8 modes: weight levels (2–8 bits inside int8 storage; default 8). Fewer bits only lose accuracy: for experiments. */
  bits?: number;
  minElements?: number;
  /** For error messages. */
  fileName?: string;
}

export interface RuntimeCheck {
  runtime: RuntimeName;
  ok: boolean;
  error?: string;
  /** Largest difference from onnxruntime-node's outputs for the same model. */
  maxAbsDiffFromNode?: number;
}

export interface OptimizeReport {
  mode: string;
  notes: string[];
  size: { before: number; after: number; ratio: number };
  data: 'labelled' | 'unlabelled' | 'synthetic';
  comparison: Comparison;
  /** Accuracy drop (labelled) or share of changed predictions (otherwise); null when the model has no class output. */
  drop: number | null;
  maxDrop: number;
  accepted: boolean;
  /** Why the result was refused, with the amount. */
  refusal?: string;
  runtimes: RuntimeCheck[];
  measurements?: { runtime: RuntimeName; before: Measurement; after: Measurement };
  int8?: DynamicQuantization | WeightQuantization;
  fp16?: Fp16Conversion;
  trees?: TreePruning[];
}

export interface OptimizeResult {
  /** The optimized model (also when refused, so callers can inspect it; write it only when accepted). */
  model: Uint8Array;
  accepted: boolean;
  report: OptimizeReport;
}

/** A request that cannot be done for this model (the mode does not apply); the message says what to do instead. */
export class OptimizeError extends UserError {}

interface Candidate {
  bytes: Uint8Array;
  mode: string;
  notes: string[];
  int8?: DynamicQuantization | WeightQuantization;
  fp16?: Fp16Conversion;
  trees?: TreePruning[];
}

function parse(bytes: Uint8Array, fileName = 'the model'): { model: onnx.ModelProto; notes: string[] } {
  const { model, notes } = stripZipMap(readOnnx(bytes, fileName));
  return { model, notes };
}

function stamp(model: onnx.ModelProto, mode: string): Uint8Array {
  model.metadataProps = (model.metadataProps ?? []).filter((p) => p.key !== 'dais.optimize');
  model.metadataProps.push(message('StringStringEntryProto', { key: 'dais.optimize', value: mode }));
  return writeOnnx(model);
}

function treeOnlyMessage(model: onnx.IModelProto): string | null {
  const trees = treeEnsembles(model);
  if (!trees.length) return null;
  const t = trees.map((e) => `${e.op}: ${e.trees} trees, ${e.nodes.toLocaleString('en-US')} nodes`).join('; ');
  return `quantization does not apply to this model: it is a tree ensemble (${t}) whose thresholds and leaf weights are node attributes, not weight tensors, and rounding them would move decision boundaries. Shrink it with --prune-trees auto --eval <held-out data> (keeps the fewest trees within --max-drop) or --prune-trees <n>`;
}

function quantize(bytes: Uint8Array, mode: QuantizeMode, options: OptimizeOptions, dynamicOps: readonly DynamicOp[] = DYNAMIC_OPS): Candidate {
  const { model, notes } = parse(bytes);
  if (mode === 'fp16') {
    const floatWeights = (model.graph?.initializer ?? []).filter((t) => t.dataType === onnx.TensorProto.DataType.FLOAT).length;
    if (!floatWeights) throw new OptimizeError(treeOnlyMessage(model) ?? 'fp16 does not apply: the model has no float32 weights');
    let fp16: Fp16Conversion;
    fp16 = convertToFp16(model);
    if (fp16.keptFloat32Nodes.length) notes.push(`kept in float32 (no float16 form): ${fp16.keptFloat32Nodes.join(', ')}`);
    return { bytes: stamp(model, mode), mode, notes, fp16 };
  }
  const int8 =
    mode === 'int8-dynamic'
      ? quantizeDynamicInt8(model, { ops: dynamicOps, reduceRange: options.reduceRange, bits: options.bits, minElements: options.minElements })
      : quantizeWeightsInt8(model, { minElements: options.minElements, bits: options.bits });
  const weights = 'integer' in int8 ? int8.weights : int8;
  const changed = ('integer' in int8 ? int8.integer.length : 0) + weights.quantized.length;
  if (!changed) {
    const skipped = [...weights.skipped.map((s) => `${s.name}: ${s.reason}`), ...('fallback' in int8 ? int8.fallback.map((f) => `${f.node}: ${f.reason}`) : [])];
    throw new OptimizeError(
      treeOnlyMessage(model) ??
        `nothing to quantize: the model has no MatMul, Gemm, Conv, GRU/LSTM/RNN or Gather weights of ${options.minElements ?? 64}+ float32 elements${skipped.length ? ` (${skipped.join('; ')})` : ''}`,
    );
  }
  if ('fallback' in int8) for (const f of int8.fallback) notes.push(`${f.node} (${f.op}) stays float compute: ${f.reason}`);
  for (const s of weights.skipped) notes.push(`weight ${s.name} stays float32: ${s.reason}`);
  const variant = options.bits && options.bits !== 8 ? ` (${options.bits}-bit levels)` : options.reduceRange && mode === 'int8-dynamic' ? ' (reduce-range)' : '';
  return { bytes: stamp(model, mode + variant), mode: mode + variant, notes, int8 };
}

function prune(bytes: Uint8Array, keep: number): Candidate {
  const { model, notes } = parse(bytes);
  if (!treeEnsembles(model).length) throw new OptimizeError('--prune-trees applies to tree ensembles (ai.onnx.ml TreeEnsembleClassifier/Regressor); this model has none: use --quantize');
  const trees = pruneTrees(model, keep);
  return { bytes: stamp(model, `prune-trees ${keep}`), mode: `prune-trees ${keep}`, notes, trees };
}

/** Even rows and odd rows: one half to choose on, the other to report on (every input and label split alike). */
function splitRows(d: EvalData): [EvalData, EvalData] {
  if (d.x.length < 4) throw new OptimizeError(`--prune-trees auto chooses on half the eval rows and reports on the other half: give at least 4 rows (got ${d.x.length})`);
  const half = (keep: 0 | 1): EvalData => {
    const pick = <T>(a: T[]) => a.filter((_, i) => i % 2 === keep);
    return { ...d, x: pick(d.x), ...(d.y ? { y: pick(d.y) } : {}), ...(d.extra ? { extra: d.extra.map((e) => ({ ...e, x: pick(e.x) })) } : {}) };
  };
  return [half(0), half(1)];
}

/** The pruning gate: accuracy drop (labelled) and share of changed predictions within maxDrop, outputs within maxError. */
function withinGate(c: Comparison, maxDrop: number, maxError: number | undefined): boolean {
  const d = dropOf(c);
  if (d === null || d > maxDrop) return false;
  if (c.disagreement !== null && c.disagreement > maxDrop) return false;
  return maxError === undefined || c.maxAbsError <= maxError;
}

/** Random rows kept under this many values in all, so a 3×1024×1024 image model checks a row, not 32 (100 M numbers). */
const SYNTHETIC_VALUES = 4_000_000;

/**
 * Random data when no eval data is given: every input, unknown sizes 8, as many rows as fit SYNTHETIC_VALUES (at
 * most 32), run in batches of the model's fixed first dimension where it has one (ISNet's 1).
 */
function syntheticFor(bytes: Uint8Array): EvalData {
  const info = describeModel(readOnnx(bytes));
  const usable = ['FP32', 'FP64', 'INT64', 'INT32'];
  for (const i of info.inputs) {
    if (!usable.includes(i.datatype)) throw new OptimizeError(`without --eval, dais checks the optimized model on random rows, but input '${i.name}' is ${i.datatype}: pass --eval <data.json>`);
    if (i.shape.length === 0) {
      throw new OptimizeError(`without --eval, dais checks the optimized model on random rows, but input '${i.name}' is a scalar random values cannot stand for (a sample rate?): pass --eval <data.json> with it under "fixed"`);
    }
  }
  const fixedBatch = info.inputs.map((i) => i.shape[0]).find((d): d is number => typeof d === 'number' && d > 0);
  const inputs = info.inputs.map((i) => ({ input: i.name, rowShape: i.shape.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : 8)), datatype: i.datatype as EvalData['datatype'] }));
  const perRow = inputs.reduce((n, i) => n + i.rowShape.reduce((a, b) => a * b, 1), 0);
  const rows = Math.max(1, Math.min(32, Math.floor(SYNTHETIC_VALUES / perRow)));
  // A fixed batch takes exactly that many rows per run: whole batches only.
  const n = fixedBatch ? Math.max(fixedBatch, Math.floor(rows / fixedBatch) * fixedBatch) : rows;
  return { ...syntheticInputs(inputs, n), ...(fixedBatch ? { batchSize: fixedBatch } : {}) };
}

async function runAll(bytes: Uint8Array, data: EvalData, runtimes: RuntimeName[]): Promise<{ node: OutputValues[]; checks: RuntimeCheck[] }> {
  const checks: RuntimeCheck[] = [];
  let node: OutputValues[] | undefined;
  try {
    node = await runOnData(bytes, data, 'onnxruntime-node');
    if (runtimes.includes('onnxruntime-node')) checks.push({ runtime: 'onnxruntime-node', ok: true });
  } catch (e) {
    checks.push({ runtime: 'onnxruntime-node', ok: false, error: firstLine(e) });
  }
  if (runtimes.includes('onnxruntime-web')) {
    try {
      const web = await runOnData(bytes, data, 'onnxruntime-web');
      const check: RuntimeCheck = { runtime: 'onnxruntime-web', ok: true };
      if (node) check.maxAbsDiffFromNode = compareOutputs(node, web, data).maxAbsError;
      checks.push(check);
    } catch (e) {
      checks.push({ runtime: 'onnxruntime-web', ok: false, error: firstLine(e) });
    }
  }
  return { node: node ?? [], checks };
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0].slice(0, 300);
}

function dropOf(c: Comparison): number | null {
  if (c.accuracyBefore !== null && c.accuracyAfter !== null) return c.accuracyBefore - c.accuracyAfter;
  return c.disagreement;
}

const pct = (x: number) => `${(x * 100).toFixed(2)} points`;
const fmtMs = (x: number) => (x < 1 ? `${(x * 1000).toFixed(0)} µs` : `${x.toFixed(2)} ms`);
const percent = (x: number) => `${(x * 100).toFixed(2)}%`;

export async function optimizeModel(original: Uint8Array, options: OptimizeOptions = {}): Promise<OptimizeResult> {
  const maxDrop = options.maxDrop ?? 0.01;
  const runtimes = options.runtimes ?? ['onnxruntime-node', 'onnxruntime-web'];
  if (options.quantize && options.pruneTrees !== undefined) throw new OptimizeError('choose one of --quantize and --prune-trees');
  if (options.bits !== undefined && (!Number.isInteger(options.bits) || options.bits < 2 || options.bits > 8)) throw new OptimizeError(`--bits must be an integer from 2 to 8, got ${options.bits}`);
  if (options.pruneTrees === 'auto' && !options.eval) throw new OptimizeError('--prune-trees auto needs --eval <held-out data> to know how many trees it can drop');

  // The original as served: a ZipMap output already replaced by its probability tensor.
  const base = parse(original, options.fileName);
  const baseBytes = base.notes.length ? writeOnnx(base.model) : original;
  const allData = options.eval ?? syntheticFor(baseBytes);
  const dataKind: OptimizeReport['data'] = options.eval ? (options.eval.y ? 'labelled' : 'unlabelled') : 'synthetic';
  // --prune-trees auto chooses on half the rows and reports on the other half: a count chosen on the rows it is
  // then scored on would report its own selection's luck.
  const auto = options.pruneTrees === 'auto';
  const [chooseData, data] = auto ? splitRows(allData) : [allData, allData];
  const before = await runOnData(baseBytes, data, 'onnxruntime-node');
  const beforeChoose = auto ? await runOnData(baseBytes, chooseData, 'onnxruntime-node') : before;

  const evaluateOn = async (c: Candidate, d: EvalData, reference: OutputValues[]) => {
    const { node, checks } = await runAll(c.bytes, d, runtimes);
    const comparison = node.length ? compareOutputs(reference, node, d) : null;
    return { checks, comparison };
  };
  const evaluate = (c: Candidate) => evaluateOn(c, data, before);

  let candidate: Candidate;
  let outcome: Awaited<ReturnType<typeof evaluate>>;
  if (options.pruneTrees !== undefined) {
    const total = Math.max(...treeEnsembles(base.model).map((t) => t.trees), 0);
    if (!total) throw new OptimizeError('--prune-trees applies to tree ensembles (ai.onnx.ml TreeEnsembleClassifier/Regressor); this model has none: use --quantize');
    if (options.pruneTrees === 'auto') {
      // Fewest trees within the gate: binary search (accuracy grows with trees, though not strictly).
      let lo = 1;
      let hi = total;
      let best: { c: Candidate; o: Awaited<ReturnType<typeof evaluate>> } | undefined;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        const c = prune(baseBytes, mid);
        const o = await evaluateOn(c, chooseData, beforeChoose);
        // Accuracy alone lets the outputs drift (a forest cut to one tree keeps its accuracy on a lucky split while
        // its probabilities move by 0.7): predictions that change count against the gate too.
        if (o.checks.every((x) => x.ok) && o.comparison && withinGate(o.comparison, maxDrop, options.maxError)) {
          hi = mid;
          best = { c, o };
        } else lo = mid + 1;
      }
      candidate = best && hi === Number(best.c.mode.split(' ')[1]) ? best.c : prune(baseBytes, hi);
      outcome = await evaluate(candidate);
      candidate.notes.push(
        `kept ${hi} of ${total} trees: the fewest whose accuracy drop and changed predictions on ${chooseData.x.length} of the eval rows stay within ${pct(maxDrop)}` +
          `${options.maxError !== undefined ? ` and outputs within ${options.maxError}` : ''}; the figures reported are on the other ${data.x.length} rows`,
      );
    } else {
      if (!Number.isInteger(options.pruneTrees) || options.pruneTrees < 1) throw new OptimizeError(`--prune-trees must be a positive integer or 'auto', got ${options.pruneTrees}`);
      candidate = prune(baseBytes, options.pruneTrees);
      outcome = await evaluate(candidate);
    }
  } else {
    const mode = options.quantize ?? 'int8-weights';
    candidate = quantize(baseBytes, mode, options);
    outcome = await evaluate(candidate);
    if (mode === 'int8-dynamic') {
      // Per-op fallback: drop integer kernels for op types until the model runs everywhere asked.
      let ops = [...DYNAMIC_OPS];
      for (const op of ['Conv', 'Gemm', 'MatMul'] as const) {
        if (outcome.checks.every((c) => c.ok)) break;
        const failed = outcome.checks.filter((c) => !c.ok).map((c) => `${c.runtime}: ${c.error}`).join('; ');
        ops = ops.filter((o) => o !== op);
        const next = quantize(baseBytes, mode, options, ops);
        next.notes.unshift(`${op} nodes use weight-only int8 instead of ${op === 'Conv' ? 'ConvInteger' : 'MatMulInteger'}: the integer version failed (${failed})`);
        candidate = next;
        outcome = await evaluate(next);
      }
    }
  }

  const failed = outcome.checks.filter((c) => !c.ok);
  const comparison: Comparison = outcome.comparison ?? { scoredOutput: null, rows: data.x.length, accuracyBefore: null, accuracyAfter: null, disagreement: null, maxAbsError: NaN, meanAbsError: NaN };
  const drop = dataKind === 'synthetic' ? null : dropOf(comparison);
  let refusal: string | undefined;
  if (failed.length) {
    refusal = `the optimized model does not run in ${failed.map((f) => `${f.runtime} (${f.error})`).join(' and ')}`;
  } else if (drop !== null && drop > maxDrop) {
    const what = dataKind === 'labelled'
      ? `accuracy dropped by ${pct(drop)} (${percent(comparison.accuracyBefore!)} → ${percent(comparison.accuracyAfter!)})`
      : `${pct(drop)} of predictions changed`;
    refusal = `${what}, more than --max-drop ${pct(maxDrop)} allows (over by ${pct(drop - maxDrop)})`;
  } else if (options.maxError !== undefined && !(comparison.maxAbsError <= options.maxError)) {
    refusal = `the largest output difference is ${comparison.maxAbsError.toPrecision(3)}, more than --max-error ${options.maxError} allows`;
  }
  const notes = [...base.notes, ...candidate.notes];
  if (auto && comparison.disagreement !== null && comparison.disagreement > maxDrop) {
    notes.push(`${pct(comparison.disagreement)} of predictions changed on the held-out half (the count was chosen within ${pct(maxDrop)} on the other half): lower --max-drop or add rows to --eval for a steadier choice`);
  }
  if (auto && comparison.maxAbsError > 0.1) notes.push(`outputs moved by up to ${comparison.maxAbsError.toPrecision(2)} on the held-out half (mean ${comparison.meanAbsError.toPrecision(2)}): pass --max-error to bound them`);
  if (dataKind === 'synthetic') notes.push('no --eval data: checked on random rows that the model runs and how far outputs move; accuracy not measured');

  const report: OptimizeReport = {
    mode: candidate.mode,
    notes,
    size: { before: original.length, after: candidate.bytes.length, ratio: candidate.bytes.length / original.length },
    data: dataKind,
    comparison,
    drop,
    maxDrop,
    accepted: !refusal,
    runtimes: outcome.checks,
  };
  if (refusal) report.refusal = refusal;
  if (candidate.int8) report.int8 = candidate.int8;
  if (candidate.fp16) report.fp16 = candidate.fp16;
  if (candidate.trees) report.trees = candidate.trees;
  if (options.measure && !failed.some((f) => f.runtime === 'onnxruntime-node')) {
    const m = typeof options.measure === 'object' ? options.measure : {};
    const runtime = m.runtime ?? 'onnxruntime-node';
    const [b, a] = await measureModels([baseBytes, candidate.bytes], data, runtime, m.minMs);
    report.measurements = { runtime, before: b, after: a };
    if (a.latencyMs.median > b.latencyMs.median * 1.1) {
      notes.push(`one-row latency went from ${fmtMs(b.latencyMs.median)} to ${fmtMs(a.latencyMs.median)} on ${runtime}: ${candidate.mode.startsWith('int8-dynamic') ? 'quantizing activations costs more than integer kernels save on a model this small' : candidate.mode.startsWith('int8-weights') ? 'the weights are dequantized on every run' : 'this runtime computes the model less efficiently in this form'}`);
    }
  }
  return { model: candidate.bytes, accepted: !refusal, report };
}
