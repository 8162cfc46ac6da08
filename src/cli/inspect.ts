// `dais inspect <model> [--json]`: what a model file holds, without running it.
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatOf } from '../formats/index.ts';
import { inspectOnnx, sha256Hex, type ModelInspection, type TensorInfo } from '../formats/onnx/inspect.ts';
import type { ServedMemory } from '../runtime/model-memory.ts';
import { CliError, flags, parseFlags, type Command } from './command.ts';

const HELP = `Usage: dais inspect <model.onnx> [--json] [--memory]

Shows a model's inputs and outputs (name, v2 datatype, shape with symbolic dimensions), opset imports, producer,
IR version, node count per operator, parameter count, file size and sha256.

Options:
  --json      print the inspection as JSON
  --memory    also load the model as 'dais serve' would (onnxruntime, this machine's cores), run it once and
              report the resident memory it adds and where it would run: what a pod serving it needs
  -h, --help  show this help
`;

export const command: Command = {
  name: 'inspect',
  summary: "Show a model's inputs, outputs, opsets, operators, parameters, size and sha256",
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('inspect', argv, flags({ boolean: ['json', 'memory'] }));
    if (positionals.length !== 1) throw new CliError(`expected one model file, got ${positionals.length} (see 'dais inspect --help')`);
    const path = positionals[0];
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') throw new CliError(`model file not found: ${path}`);
      if (err.code === 'EISDIR') throw new CliError(`${path} is a directory; give the model file itself${modelFileHint(path)}`);
      throw new CliError(`cannot read ${path}: ${err.message}`);
    }
    let info: ModelInspection;
    // A Keras file is described as the ONNX model dais converts it to (what serve and build use).
    if (formatOf(path) !== 'onnx') {
      const onnx = (await (await import('../formats/keras/index.ts')).kerasToOnnx(bytes, { fileName: path })).onnx;
      const converted = await inspectOnnx(onnx, path);
      // Size and sha256 stay the given file's; the converted model's are said as such.
      info = { ...converted, fileSize: bytes.length, sha256: await sha256Hex(bytes), convertedOnnx: { format: formatOf(path), bytes: converted.fileSize, sha256: converted.sha256 } };
    } else info = await inspectOnnx(bytes, path);
    let served: ServedMemory | undefined;
    if (values.memory) {
      try {
        served = await (await import('../runtime/model-memory.ts')).servedMemory(path);
      } catch (e) {
        throw new CliError(`cannot load ${path} with onnxruntime to measure its memory: ${(e as Error).message}`);
      }
    }
    if (values.json) process.stdout.write(`${JSON.stringify(served ? { ...info, served } : info, null, 2)}\n`);
    else process.stdout.write(formatInspection(info) + (served ? formatServed(served) : ''));
    return 0;
  },
};

/** In a model repository a model's file is <model>/<version>/model.onnx: point at the one that exists. */
function modelFileHint(dir: string): string {
  const candidates = [join(dir, 'model.onnx'), ...safeList(dir).map((v) => join(dir, v, 'model.onnx'))];
  const found = candidates.find((c) => existsSync(c));
  return found ? `, e.g. ${found}` : '';
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function shapeText(t: TensorInfo): string {
  return t.rankUnknown ? '(unknown rank)' : `[${t.shape.join(', ')}]`;
}

function table(rows: string[][], indent = '  '): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function formatServed(s: ServedMemory): string {
  const p = s.plan;
  return (
    `\nserved (measured: loaded as 'dais serve' would, run once)\n` +
    `  memory     ${bytesText(s.memoryBytes)} added to the process (${bytesText(s.processBytes)} resident in all, this process included)\n` +
    `  runs on    ${p.thread} thread, ${p.intraOpThreads} intra-op thread(s); ${p.threadReason}\n` +
    (p.batch1Us === undefined ? '' : `  batch 1    ${p.batch1Us.toFixed(0)} µs per run\n`)
  );
}

export function formatInspection(info: ModelInspection): string {
  const tensors = (list: TensorInfo[]) => table([['name', 'datatype', 'shape'], ...list.map((t) => [t.name, t.datatype, shapeText(t)])]);
  const ops = Object.entries(info.nodeCountByOp).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  let out = '';
  out += `model      ${info.fileName ?? ''}\n`;
  out += `size       ${bytesText(info.fileSize)} (${info.fileSize} bytes)\n`;
  out += `sha256     ${info.sha256}\n`;
  if (info.convertedOnnx) out += `onnx       ${bytesText(info.convertedOnnx.bytes)} (${info.convertedOnnx.bytes} bytes) once converted by dais (sha256 ${info.convertedOnnx.sha256}); below: the converted model\n`;
  out += `producer   ${[info.producerName, info.producerVersion].filter(Boolean).join(' ') || '(not set)'}\n`;
  out += `ir version ${info.irVersion}\n`;
  out += `opsets     ${info.opsetImports.map((o) => `${o.domain} ${o.version}`).join(', ')}\n`;
  if (info.modelVersion) out += `version    ${info.modelVersion}\n`;
  if (info.graphName) out += `graph      ${info.graphName}\n`;
  if (info.docString) out += `doc        ${info.docString.split('\n')[0]}\n`;
  out += `parameters ${info.parameterCount.toLocaleString('en-US')} in ${info.initializerCount} initializers (${bytesText(info.initializerBytes)})\n`;
  for (const t of info.treeEnsembles ?? []) out += `trees      ${t.op}: ${t.trees} trees, ${t.nodes.toLocaleString('en-US')} nodes (kept in attributes)\n`;
  if (info.externalData.length) out += `external   ${info.externalData.length} initializers keep their data outside the file: ${[...new Set(info.externalData.map((e) => e.location))].join(', ')}\n`;
  out += `\ninputs\n${tensors(info.inputs)}`;
  out += `\noutputs\n${tensors(info.outputs)}`;
  const nonTensor = [...info.inputs, ...info.outputs].filter((t) => !t.tensor);
  if (nonTensor.length) {
    out += `  note: ${nonTensor.map((t) => `'${t.name}'`).join(', ')} ${nonTensor.length === 1 ? 'is not a tensor' : 'are not tensors'}; ` +
      'dais serves a ZipMap output as its probability tensor (see docs)\n';
  }
  out += `\noperators (${info.nodeCount} nodes)\n${table([['op', 'count'], ...ops.map(([k, v]) => [k, String(v)])])}`;
  const meta = Object.entries(info.metadata);
  if (meta.length) out += `\nmetadata\n${table(meta.map(([k, v]) => [k, v]))}`;
  return out;
}
