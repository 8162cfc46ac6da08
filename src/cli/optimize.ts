// `dais optimize`: a smaller model (int8, fp16, fewer trees), written only when it passes the accuracy gate.
import { readFile, writeFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { formatOf } from '../formats/index.ts';
import { EvalDataError, optimizeModel, OptimizeError, parseEvalData, QUANTIZE_MODES, type EvalData, type OptimizeReport, type QuantizeMode, type RuntimeName } from '../optimize/index.ts';
import { CliError, flags, parseFlags, type Command } from './command.ts';

const HELP = `Usage: dais optimize <model.onnx> --out <file> [--quantize int8-weights|int8-dynamic|fp16]
                     [--prune-trees <n|auto>] [--eval <data.json>] [--max-drop 0.01] [--json]

Makes a model smaller, checks that it runs in onnxruntime-node and onnxruntime-web, compares it with the
original and writes it only when the accuracy drop is within --max-drop.

Modes:
  --quantize int8-weights  MatMul/Gemm/Conv/GRU/LSTM/Gather weights stored as int8 with per-channel scales and
                           a DequantizeLinear before use: ~4x smaller file, float compute (the default)
  --quantize int8-dynamic  int8 weights and activations: DynamicQuantizeLinear + MatMulInteger/ConvInteger;
                           nodes that cannot take the integer form keep weight-only int8
  --quantize fp16          float16 weights and compute; FP32 in and out, so callers do not change
  --prune-trees <n|auto>   tree ensembles: keep the first n trees, or with 'auto' the fewest within --max-drop
                           (quantization does not apply to trees)

Options:
  --out <file>         where to write the optimized model (required)
  --eval <data.json>   held-out rows: {"input", "rowShape", "datatype", "x": [[..]], "y"?: [..], "classes"?}
                       (examples/<m>/heldout.json). With "y": accuracy; without: share of changed predictions
                       and output error. Without --eval: random rows, accuracy not measured.
  --max-drop <x>       largest accepted accuracy drop as a fraction (0.01 = 1 point; default 0.01)
  --max-error <x>      also refuse when any output value moves by more than x
  --reduce-range       int8-dynamic: 7-bit weights (for x86 CPUs without VNNI)
  --bits <2-8>         int8 modes: weight levels inside the int8 storage (default 8); fewer bits shrink
                       nothing and cost accuracy: for seeing where the gate stops a setting
  --no-measure         skip the latency and peak-memory measurement (child processes, a few seconds)
  --measure-runtime <node|web>  runtime for latency and memory (default node)
  --json               print the report as JSON
  -h, --help           show this help
`;

export const command: Command = {
  name: 'optimize',
  summary: 'Quantize (int8, fp16) or prune a model, gated by measured accuracy',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('optimize', argv, {
      ...flags({ string: ['quantize', 'prune-trees', 'eval', 'max-drop', 'max-error', 'bits', 'measure-runtime'], boolean: ['reduce-range', 'no-measure', 'json'] }),
      out: { type: 'string', short: 'o' },
    });
    if (positionals.length !== 1) throw new CliError(`expected one model file, got ${positionals.length} (see 'dais optimize --help')`);
    const path = positionals[0];
    if (formatOf(path) !== 'onnx') {
      const onnx = `${basename(path, extname(path))}.onnx`;
      throw new CliError(`${path} is a Keras file and 'dais optimize' works on ONNX: convert it first with 'dais convert ${path} --out ${onnx}', then run 'dais optimize ${onnx}' with these options ('dais build --quantize' takes Keras files as they are)`);
    }
    if (!values.out) throw new CliError("--out <file> is required: where to write the optimized model");
    const quantize = values.quantize as QuantizeMode | undefined;
    if (quantize !== undefined && !QUANTIZE_MODES.includes(quantize)) throw new CliError(`--quantize must be one of ${QUANTIZE_MODES.join(', ')}, got '${quantize}'`);
    const pruneTrees = values['prune-trees'] === undefined ? undefined : values['prune-trees'] === 'auto' ? 'auto' : positiveInt('prune-trees', values['prune-trees']);
    const maxDrop = fraction('max-drop', values['max-drop'], 0.01);
    const maxError = values['max-error'] === undefined ? undefined : nonNegative('max-error', values['max-error']);
    const measureRuntime = values['measure-runtime'] ?? 'node';
    if (measureRuntime !== 'node' && measureRuntime !== 'web') throw new CliError(`--measure-runtime must be node or web, got '${measureRuntime}'`);

    const bytes = await readInput(path, 'model file');
    let evalData: EvalData | undefined;
    if (values.eval) {
      const text = new TextDecoder().decode(await readInput(values.eval, '--eval file'));
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new CliError(`--eval file ${values.eval} is not JSON: ${(e as Error).message}`);
      }
      evalData = parseEvalData(json, values.eval);
    }

    const result = await optimizeModel(bytes, {
      fileName: path,
      quantize,
      pruneTrees,
      eval: evalData,
      maxDrop,
      maxError,
      reduceRange: values['reduce-range'],
      bits: values.bits === undefined ? undefined : bitsFlag(values.bits),
      measure: values['no-measure'] ? false : { runtime: `onnxruntime-${measureRuntime}` as RuntimeName },
    });
    if (result.accepted) await writeFile(values.out, result.model);
    const written = result.accepted ? values.out : null;
    process.stdout.write(values.json ? `${JSON.stringify({ ...result.report, input: path, written }, null, 2)}\n` : formatReport(result.report, path, values.out));
    if (!result.accepted) throw new CliError(`refused to write ${values.out}: ${result.report.refusal}`);
    return 0;
  },
};

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new CliError(`${what} not found: ${path}`);
    if (err.code === 'EISDIR') throw new CliError(`${what} ${path} is a directory; give the file`);
    throw new CliError(`cannot read ${what} ${path}: ${err.message}`);
  }
}

function bitsFlag(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 2 || n > 8) throw new CliError(`--bits must be an integer from 2 to 8, got '${v}'`);
  return n;
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--${flag} must be a positive integer or 'auto', got '${v}'`);
  return n;
}

function fraction(flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new CliError(`--${flag} must be a fraction from 0 to 1 (0.01 = 1 point), got '${v}'`);
  return n;
}

function nonNegative(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`--${flag} must be a number ≥ 0, got '${v}'`);
  return n;
}

function kib(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const ms = (x: number) => (x < 1 ? `${(x * 1000).toFixed(0)} µs` : `${x.toFixed(2)} ms`);
const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(2)}%`);

export function formatReport(r: OptimizeReport, input: string, out: string): string {
  const rows: string[][] = [['', 'original', 'optimized', '']];
  rows.push(['size', kib(r.size.before), kib(r.size.after), `${r.size.ratio.toFixed(3)}x`]);
  const c = r.comparison;
  if (c.accuracyBefore !== null) {
    rows.push([`accuracy (${c.rows} rows)`, pct(c.accuracyBefore), pct(c.accuracyAfter), `drop ${((r.drop ?? 0) * 100).toFixed(2)} points (max ${(r.maxDrop * 100).toFixed(2)})`]);
  } else if (c.disagreement !== null) {
    rows.push([`changed predictions`, '', pct(c.disagreement), `of ${c.rows} ${r.data} rows`]);
  }
  if (Number.isFinite(c.maxAbsError)) rows.push(['output error', '', `max ${c.maxAbsError.toPrecision(3)}`, `mean ${c.meanAbsError.toPrecision(3)}`]);
  const m = r.measurements;
  if (m) {
    rows.push(['latency, 1 row', ms(m.before.latencyMs.median), ms(m.after.latencyMs.median), `median of ${m.after.latencyMs.runs} runs, ${m.runtime}, 1 thread`]);
    rows.push([`batch of ${m.before.batch.rows}`, ms(m.before.batch.ms), ms(m.after.batch.ms), '']);
    rows.push(['peak memory', kib(m.before.peakRssBytes), kib(m.after.peakRssBytes), 'whole process (runtime included)']);
    rows.push(['model memory', kib(m.before.modelRssBytes), kib(m.after.modelRssBytes), 'resident memory the session added']);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  let s = `${input} → ${out} (${r.mode})\n`;
  s += rows.map((row) => '  ' + row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
  s += `  runs in: ${r.runtimes.map((x) => (x.ok ? `${x.runtime} ok${x.maxAbsDiffFromNode !== undefined ? ` (max diff from node ${x.maxAbsDiffFromNode.toPrecision(2)})` : ''}` : `${x.runtime} FAILED: ${x.error}`)).join(', ')}\n`;
  for (const n of r.notes) s += `  note: ${n}\n`;
  s += r.accepted ? `wrote ${out}\n` : `not written: ${r.refusal}\n`;
  return s;
}
