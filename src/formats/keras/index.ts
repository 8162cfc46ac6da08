// Keras → ONNX, in TypeScript: reads a legacy HDF5 model (Keras 2 / tf.keras `model.save('m.h5')`) or a Keras 3
// `.keras` archive and writes an ONNX opset-17 model computing the same function, so serving, batching and the
// Lambda and edge bundles only ever see ONNX. Layers without an exact ONNX translation are refused by name.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { unzipSync } from 'fflate';
import { KerasImportError, unsupported } from './errors.ts';
import { Hdf5File, isHdf5, withHdf5Errors } from './hdf5.ts';
import { isTrainingOnly, LAYERS, type LayerContext } from './layers.ts';
import { declaredBatchShape, graphFromConfig, parseModelConfig, type KerasGraph, type KerasLayer, type TensorRef } from './model-config.ts';
import { DT, GraphBuilder, OPSET, type Value } from './onnx-builder.ts';
import { kerasV3Weights, legacyWeights, type WeightSource } from './weights.ts';

export { KerasImportError } from './errors.ts';
export type { KerasErrorReason } from './errors.ts';

export interface KerasToOnnxOptions {
  /** The file's name, for messages (defaults to the path, or 'model' for bytes). */
  fileName?: string;
}

export interface ConvertedTensor {
  name: string;
  /** v2 datatype name (FP32, INT32, INT64). */
  datatype: string;
  /** -1 where the size is only known at run time (the batch axis always). */
  shape: number[];
}

export interface KerasConversion {
  onnx: Uint8Array;
  format: 'keras-h5' | 'keras-v3';
  kerasVersion: string;
  /** 'Sequential' or 'Functional'. */
  modelClass: string;
  modelName: string;
  inputs: ConvertedTensor[];
  outputs: ConvertedTensor[];
  /** ONNX operators used. */
  operators: string[];
  notes: string[];
}

const ZIP_SIGNATURE = [0x50, 0x4b, 0x03, 0x04];

/** Converts a Keras model file (path or bytes) to ONNX bytes. Throws KerasImportError (a ModelFileError). */
export async function kerasToOnnx(source: string | Uint8Array, options: KerasToOnnxOptions = {}): Promise<KerasConversion> {
  const label = options.fileName ?? (typeof source === 'string' ? source : 'model');
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    try {
      bytes = new Uint8Array(await readFile(source));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new KerasImportError('CORRUPT_FILE', err.code === 'ENOENT' ? `model file not found: ${source}` : `cannot read ${source}: ${err.message}`);
    }
  } else bytes = source;
  if (ZIP_SIGNATURE.every((b, i) => bytes[i] === b)) return convertKerasV3(bytes, label);
  if (isHdf5(bytes)) return convertLegacyH5(typeof source === 'string' ? source : bytes, label);
  if (new TextDecoder().decode(bytes.subarray(0, 64)).startsWith('version https://git-lfs.github.com/spec/')) {
    throw new KerasImportError('CORRUPT_FILE', `${label} is a Git LFS pointer, not the model itself: fetch the file with 'git lfs pull'`);
  }
  throw new KerasImportError(
    'CORRUPT_FILE',
    `${label} is neither a Keras HDF5 file (.h5) nor a Keras 3 archive (.keras): it starts with neither the HDF5 nor the zip signature`,
  );
}

function majorOf(version: string): number {
  const m = /^(\d+)/.exec(version);
  return m ? Number(m[1]) : NaN;
}

async function convertLegacyH5(source: string | Uint8Array, label: string): Promise<KerasConversion> {
  const h5 = await Hdf5File.open(source, label);
  try {
    return withHdf5Errors(label, () => convertLegacyFile(h5, label));
  } finally {
    await h5.close();
  }
}

function convertLegacyFile(h5: Hdf5File, label: string): KerasConversion {
  const configText = h5.stringAttr('', 'model_config');
  if (configText === undefined) {
    const weightsOnly = h5.stringListAttr('', 'layer_names') !== undefined;
    throw new KerasImportError(
      'UNSUPPORTED_FORMAT',
      weightsOnly
        ? `${label} holds only weights (saved with model.save_weights), not the model: save the whole model with model.save('model.h5') or model.save('model.keras')`
        : `${label} is an HDF5 file without a Keras model_config attribute: it was not written by Keras's model.save`,
    );
  }
  const version = h5.stringAttr('', 'keras_version') ?? h5.stringAttr('model_weights', 'keras_version') ?? '';
  const major = majorOf(version);
  if (!version || major < 2) {
    throw new KerasImportError(
      'UNSUPPORTED_FORMAT',
      `${label} was saved by Keras ${version || '1 (no keras_version attribute)'}; only files from Keras 2 and later can be converted: load it in Keras 2 and save it again`,
    );
  }
  const graph = parseModelConfig(configText);
  const backend = h5.stringAttr('', 'backend') ?? h5.stringAttr('model_weights', 'backend') ?? 'tensorflow';
  if (backend === 'theano' && graph.layers.some((l) => /Conv/.test(l.className))) {
    throw new KerasImportError('UNSUPPORTED_FORMAT', `${label} was saved with the Theano backend, whose convolution kernels are flipped; load and save it again with the TensorFlow backend`);
  }
  return convertGraph(graph, legacyWeights(h5), { format: 'keras-h5', version, major, label });
}

async function convertKerasV3(bytes: Uint8Array, label: string): Promise<KerasConversion> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, { filter: (f) => f.name === 'config.json' || f.name === 'metadata.json' || f.name === 'model.weights.h5' });
  } catch (e) {
    throw new KerasImportError('CORRUPT_FILE', `${label} is not a readable zip archive (${(e as Error).message})`);
  }
  if (!files['config.json']) throw new KerasImportError('CORRUPT_FILE', `${label} is a zip archive without config.json, so not a Keras 3 .keras file`);
  let version = '3';
  if (files['metadata.json']) {
    try {
      const meta = JSON.parse(new TextDecoder().decode(files['metadata.json'])) as { keras_version?: string };
      if (typeof meta.keras_version === 'string') version = meta.keras_version;
    } catch {
      throw new KerasImportError('CORRUPT_FILE', `${label}: metadata.json is not valid JSON`);
    }
  }
  let root: unknown;
  try {
    root = JSON.parse(new TextDecoder().decode(files['config.json']));
  } catch (e) {
    throw new KerasImportError('CORRUPT_FILE', `${label}: config.json is not valid JSON (${(e as Error).message})`);
  }
  const graph = graphFromConfig(root);
  const weightsBytes = files['model.weights.h5'];
  if (!weightsBytes) {
    throw new KerasImportError('MISSING_WEIGHTS', `${label} has no model.weights.h5 (sharded or npz weights are not supported): save it with model.save('model.keras')`);
  }
  const h5 = await Hdf5File.open(weightsBytes, `${label}:model.weights.h5`);
  try {
    return withHdf5Errors(`${label}:model.weights.h5`, () => convertGraph(graph, kerasV3Weights(h5, graph.layers), { format: 'keras-v3', version, major: majorOf(version) || 3, label }));
  } finally {
    await h5.close();
  }
}

const DTYPES: Record<string, { elemType: number; datatype: string }> = {
  float32: { elemType: DT.FLOAT, datatype: 'FP32' },
  int32: { elemType: DT.INT32, datatype: 'INT32' },
  int64: { elemType: DT.INT64, datatype: 'INT64' },
};

const NESTED_MODELS = new Set(['Sequential', 'Functional', 'Model']);

interface Source {
  format: 'keras-h5' | 'keras-v3';
  version: string;
  major: number;
  label: string;
}

/** What every (nested) model scope of one conversion shares. */
interface Conversion {
  b: GraphBuilder;
  src: Source;
  notes: string[];
  constants: Map<string, string>;
  identityLayers: string[];
}

function convertGraph(graph: KerasGraph, weightSource: WeightSource, src: Source): KerasConversion {
  const b = new GraphBuilder();
  const conv: Conversion = { b, src, notes: [], constants: new Map(), identityLayers: [] };
  const layers = new Map<string, KerasLayer>(graph.layers.map((l) => [l.name, l]));

  // Graph inputs and outputs keep the Keras names, so they are reserved before any internal tensor is named.
  const outputNames: string[] = [];
  for (const r of graph.outputs) {
    let name = r.tensor === 0 ? r.layer : `${r.layer}_${r.tensor}`;
    while (outputNames.includes(name)) name = `${name}_1`;
    outputNames.push(name);
  }
  for (const r of graph.inputs) b.reserve(r.layer);
  for (const n of outputNames) b.reserve(n);

  const inputs: ConvertedTensor[] = [];
  const inputValues: Value[] = [];
  for (const r of graph.inputs) {
    const layer = layers.get(r.layer);
    if (!layer || layer.className !== 'InputLayer') throw new KerasImportError('CORRUPT_FILE', `model config: input '${r.layer}' is not an InputLayer of the model`);
    const cfg = layer.config;
    if (cfg.sparse === true || cfg.ragged === true) throw unsupported(layer, 'sparse and ragged inputs are not supported');
    const shape = declaredBatchShape(cfg);
    if (!shape) throw new KerasImportError('CORRUPT_FILE', `model config: input '${layer.name}' declares no shape`);
    const dtypeName = typeof cfg.dtype === 'string' ? cfg.dtype : 'float32';
    const dtype = DTYPES[dtypeName];
    if (!dtype) throw unsupported(layer, `input dtype '${dtypeName}' is not supported (float32, int32, int64)`);
    // The batch axis is always left free so that the served model batches.
    const s = [null, ...shape.slice(1)];
    const dimNames = s.map((d, i) => (d !== null ? null : i === 0 ? 'batch' : `${layer.name}_dim${i}`));
    inputValues.push(b.addInput(layer.name, s, dtype.elemType, dimNames));
    inputs.push({ name: layer.name, datatype: dtype.datatype, shape: s.map((d) => d ?? -1) });
  }

  const results = convertScope(conv, graph, weightSource, inputValues, '');
  const outputs: ConvertedTensor[] = [];
  results.forEach((v, i) => {
    const dimNames = v.shape.map((d, j) => (d !== null ? null : j === 0 ? 'batch' : `${outputNames[i]}_dim${j}`));
    b.addOutput(outputNames[i], v, dimNames);
    outputs.push({ name: outputNames[i], datatype: v.elemType === DT.FLOAT ? 'FP32' : v.elemType === DT.INT64 ? 'INT64' : 'INT32', shape: v.shape.map((d) => d ?? -1) });
  });

  const { notes, identityLayers } = conv;
  const converted = graph.layers.filter((l) => l.className !== 'InputLayer').length;
  notes.unshift(`converted from Keras ${src.version} (${src.format === 'keras-h5' ? 'legacy HDF5' : '.keras archive'}): ${graph.className} model '${graph.name}', ${converted} layer${converted === 1 ? '' : 's'}, ONNX opset ${OPSET}`);
  if (identityLayers.length) notes.push(`training-only layers are identity at inference: ${identityLayers.join(', ')}`);
  const onnx = b.encode(graph.name, `Converted by dais from ${basename(src.label)} (Keras ${src.version})`, {
    'dais.source': basename(src.label),
    'dais.keras_version': src.version,
    'dais.keras_model_class': graph.className,
  });
  return { onnx, format: src.format, kerasVersion: src.version, modelClass: graph.className, modelName: graph.name, inputs, outputs, operators: b.operators(), notes };
}

/**
 * Converts one model's graph given values for its inputs; returns its outputs. A model used as a layer of another
 * is converted by the same function in its own scope (its layer names may repeat the outer model's).
 */
function convertScope(conv: Conversion, graph: KerasGraph, weightSource: WeightSource, inputValues: Value[], scope: string): Value[] {
  const { b, src, notes } = conv;
  const layers = new Map<string, KerasLayer>(graph.layers.map((l) => [l.name, l]));
  const values = new Map<string, Value>();
  const key = (r: TensorRef) => `${r.layer}\u0000${r.node}\u0000${r.tensor}`;
  if (inputValues.length !== graph.inputs.length) {
    throw new KerasImportError('CORRUPT_FILE', `model config: model '${graph.name}' takes ${graph.inputs.length} inputs but is called with ${inputValues.length}`);
  }
  graph.inputs.forEach((r, i) => values.set(key(r), inputValues[i]));

  const weightCache = new Map<string, ReturnType<WeightSource['forLayer']>>();
  const producing = new Set<string>();

  const produce = (r: TensorRef): Value => {
    const done = values.get(key(r));
    if (done) return done;
    const layer = layers.get(r.layer);
    if (!layer) throw new KerasImportError('CORRUPT_FILE', `model config: a layer takes its input from '${r.layer}', which is not in the model`);
    if (layer.className === 'InputLayer') throw new KerasImportError('CORRUPT_FILE', `model config: input layer '${layer.name}' is used but is not listed among the model's inputs`);
    const call = layer.calls[r.node];
    if (!call) throw new KerasImportError('CORRUPT_FILE', `model config: layer '${layer.name}' has no call #${r.node}`);
    const callKey = `${layer.name}\u0000${r.node}`;
    if (producing.has(callKey)) throw new KerasImportError('CORRUPT_FILE', `model config: layer '${layer.name}' depends on its own output`);
    producing.add(callKey);
    const ins = call.map(produce);
    producing.delete(callKey);
    const outs = convertCall(layer, r.node, ins);
    outs.forEach((v, i) => values.set(key({ layer: layer.name, node: r.node, tensor: i }), v));
    const v = values.get(key(r));
    if (!v) throw new KerasImportError('CORRUPT_FILE', `model config: layer '${layer.name}' has no output #${r.tensor}`);
    return v;
  };

  const convertCall = (layer: KerasLayer, node: number, ins: Value[]): Value[] => {
    if (NESTED_MODELS.has(layer.className)) {
      const inner = graphFromConfig({ class_name: layer.className, config: layer.config });
      return convertScope(conv, inner, weightSource.nested(layer, inner.layers), ins, `${scope}${layer.name}/`);
    }
    const converter = LAYERS[layer.className];
    if (!converter) {
      throw unsupported(layer, `Keras layer class '${layer.className}' has no ONNX translation in dais (supported: ${Object.keys(LAYERS).sort().join(', ')})`);
    }
    if (isTrainingOnly(layer.className) && node === 0) conv.identityLayers.push(scope + layer.name);
    // Keras casts a layer's inputs to its float compute dtype; only Embedding consumes integers as they are.
    const inputs = layer.className === 'Embedding' ? ins : ins.map((v) => (v.elemType === DT.FLOAT ? v : { ...v, elemType: DT.FLOAT, name: b.op1('Cast', [v.name], `${layer.name}/to_float`, { to: DT.FLOAT }) }));
    const ctx: LayerContext = {
      b,
      layer,
      inputs,
      kerasMajor: src.major,
      notes,
      rawWeights: () => {
        let w = weightCache.get(layer.name);
        if (!w) {
          w = weightSource.forLayer(layer);
          weightCache.set(layer.name, w);
        }
        return w;
      },
      weights: (expected) => {
        const w = ctx.rawWeights();
        if (w.tensors.length !== expected.length) {
          throw new KerasImportError(
            'MISSING_WEIGHTS',
            w.tensors.length === 0
              ? `layer '${scope}${layer.name}' (${layer.className}): its weights (${expected.join(', ')}) are not in ${src.label}`
              : `layer '${scope}${layer.name}' (${layer.className}): ${src.label} has ${w.tensors.length} weights for it (${w.names.join(', ')}), the config implies ${expected.length} (${expected.join(', ')})`,
            layer,
          );
        }
        return w.tensors;
      },
      constant: (k, make) => {
        const ck = `${scope}${layer.name}\u0000${k}`;
        let name = conv.constants.get(ck);
        if (!name) {
          name = make();
          conv.constants.set(ck, name);
        }
        return name;
      },
    };
    return converter(ctx);
  };

  return graph.outputs.map(produce);
}
