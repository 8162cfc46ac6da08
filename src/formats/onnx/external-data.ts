// ONNX external data: tensors whose bytes live in files beside model.onnx (`model.onnx.data`), as exporters write
// models over protobuf's 2 GB. Runtimes given the model as bytes resolve those files against their working directory,
// not the model's folder (onnxruntime-node refuses, onnxruntime-web needs them mounted), so dais reads them here and
// puts the bytes into the model: every runtime and every target then gets one self-contained model.
import { open, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { ModelFileError } from '../errors.ts';
import { onnx } from './onnx.ts';

/** A protobuf message may not pass 2 GB; a model whose weights do stays external (and cannot be inlined). */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

/** Cheap pre-check on the raw bytes: external data entries carry the key "location". */
export function mayHaveExternalData(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('location');
}

/** Every tensor the model stores externally: graph initializers, Constant/attribute tensors, subgraphs included. */
function externalTensors(graph: onnx.IGraphProto | null | undefined, out: onnx.ITensorProto[] = []): onnx.ITensorProto[] {
  if (!graph) return out;
  const visit = (t: onnx.ITensorProto | null | undefined) => {
    if (t && t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) out.push(t);
  };
  for (const t of graph.initializer ?? []) visit(t);
  for (const s of graph.sparseInitializer ?? []) {
    visit(s.values);
    visit(s.indices);
  }
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) {
      visit(a.t);
      for (const t of a.tensors ?? []) visit(t);
      externalTensors(a.g, out);
      for (const g of a.graphs ?? []) externalTensors(g, out);
    }
  }
  return out;
}

/** The data files a model refers to, relative to its folder (for builds that copy the model as it is). */
export function externalDataFiles(model: onnx.IModelProto): string[] {
  const files = new Set<string>();
  for (const t of externalTensors(model.graph)) files.add(locationOf(t).location);
  return [...files].sort();
}

function locationOf(t: onnx.ITensorProto): { location: string; offset: number; length?: number } {
  const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
  const location = kv.location;
  if (!location) throw new ModelFileError(`tensor '${t.name}' is stored externally but names no location`);
  // The file must sit in the model's folder or below it: a model must not make dais read /etc/shadow.
  if (isAbsolute(location) || normalize(location).split(/[\\/]/).includes('..')) {
    throw new ModelFileError(`tensor '${t.name}': external data location '${location}' is outside the model's folder`);
  }
  return { location: normalize(location).split(/[\\/]/).join(sep), offset: Number(kv.offset ?? 0), length: kv.length === undefined ? undefined : Number(kv.length) };
}

/**
 * Reads every external tensor's bytes from the files beside `modelPath` into the model (rawData), in place.
 * Returns the files read; throws ModelFileError naming the tensor and file when one is missing or too short.
 */
export async function inlineExternalData(model: onnx.ModelProto, modelPath: string): Promise<string[]> {
  const tensors = externalTensors(model.graph);
  const dir = dirname(modelPath);
  const files = new Set<string>();
  let total = 0;
  for (const t of tensors) {
    const { location, offset, length } = locationOf(t);
    const file = join(dir, location);
    const size = (await stat(file).catch(() => undefined))?.size;
    if (size === undefined) throw new ModelFileError(`tensor '${t.name}' keeps its data in ${location}, which is not beside ${modelPath}: copy the model's data file(s) with it`);
    const n = length ?? size - offset;
    if (offset + n > size) throw new ModelFileError(`tensor '${t.name}': ${location} has ${size} bytes, the model reads ${offset}..${offset + n}`);
    total += n;
    if (total > PROTOBUF_LIMIT) {
      throw new ModelFileError(`${modelPath} keeps more than 2 GB of weights in external data: dais loads models as one protobuf (2 GB at most); split or quantize the model`);
    }
    const handle = await open(file, 'r');
    try {
      const raw = Buffer.alloc(n);
      await handle.read(raw, 0, n, offset);
      t.rawData = raw;
    } finally {
      await handle.close();
    }
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    t.externalData = [];
    files.add(location);
  }
  return [...files].sort();
}
