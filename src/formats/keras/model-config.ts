// The Keras model config (the `model_config` attribute of a legacy .h5, `config.json` in a .keras archive) as one
// graph: layers, each called one or more times ("nodes"), each call taking tensors made by earlier calls.
// Sequential models become the same graph as a Functional chain, so the converter has one code path.
import { KerasImportError } from './errors.ts';

/** A tensor made by a layer call: keras_history (layer name, call index, output index). */
export interface TensorRef {
  layer: string;
  node: number;
  tensor: number;
}

export interface KerasLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** One entry per call of the layer in the model; each lists the call's input tensors in order. */
  calls: TensorRef[][];
}

export interface KerasGraph {
  /** 'Sequential' or 'Functional' (Keras 2 calls the latter 'Model'). */
  className: string;
  name: string;
  layers: KerasLayer[];
  inputs: TensorRef[];
  outputs: TensorRef[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function corrupt(msg: string): KerasImportError {
  return new KerasImportError('CORRUPT_FILE', `model config: ${msg}`);
}

export function parseModelConfig(text: string): KerasGraph {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw corrupt(`not valid JSON (${(e as Error).message})`);
  }
  return graphFromConfig(root);
}

export function graphFromConfig(root: unknown): KerasGraph {
  if (!isObject(root) || typeof root.class_name !== 'string') throw corrupt('expected an object with class_name and config');
  const cls = root.class_name;
  if (cls === 'Sequential') return sequentialGraph(root.config, builtShape(root));
  if (cls === 'Functional' || cls === 'Model') return functionalGraph(root.config, cls);
  throw new KerasImportError(
    'UNSUPPORTED_FORMAT',
    `the model is a '${cls}'; only Sequential and Functional models can be converted (a subclassed model has no graph in its file: rebuild it with the Functional API and save again)`,
  );
}

function layerEntry(raw: unknown, where: string): { className: string; config: Json; raw: Json } {
  if (!isObject(raw) || typeof raw.class_name !== 'string' || !isObject(raw.config)) throw corrupt(`${where} is not a layer entry (class_name + config)`);
  return { className: raw.class_name, config: raw.config, raw };
}

function layerName(config: Json, raw: Json, where: string): string {
  const name = typeof config.name === 'string' ? config.name : typeof raw.name === 'string' ? raw.name : undefined;
  if (!name) throw corrupt(`${where} has no name`);
  return name;
}

/** The input shape (batch axis included) that a layer config declares, if any. */
export function declaredBatchShape(config: Json): (number | null)[] | undefined {
  const shape = config.batch_input_shape ?? config.batch_shape;
  if (Array.isArray(shape)) return shape.map((d) => (typeof d === 'number' ? d : null));
  if (Array.isArray(config.input_shape)) return [null, ...(config.input_shape as unknown[]).map((d) => (typeof d === 'number' ? d : null))];
  if (typeof config.input_dim === 'number') return [null, config.input_dim];
  return undefined;
}

/** The input shape a built Sequential model records beside its layers (tf.keras build_input_shape, Keras 3 build_config). */
function builtShape(root: Json): (number | null)[] | undefined {
  const cfg = isObject(root.config) ? root.config : {};
  const build = isObject(root.build_config) ? root.build_config.input_shape : undefined;
  const shape = cfg.build_input_shape ?? build;
  return Array.isArray(shape) && shape.every((d) => d === null || typeof d === 'number') ? (shape as (number | null)[]) : undefined;
}

function sequentialGraph(config: unknown, built?: (number | null)[]): KerasGraph {
  // Keras 2.0-2.1 stored the layer list itself; later versions store {name, layers}.
  const list = Array.isArray(config) ? config : isObject(config) && Array.isArray(config.layers) ? config.layers : undefined;
  if (!list) throw corrupt('Sequential config has no layer list');
  const name = isObject(config) && typeof config.name === 'string' ? config.name : 'sequential';
  if (list.length === 0) throw corrupt('Sequential model has no layers');
  const layers: KerasLayer[] = [];
  let prev: TensorRef | undefined;
  list.forEach((raw: unknown, i: number) => {
    const { className, config: cfg, raw: r } = layerEntry(raw, `layer ${i}`);
    const lname = layerName(cfg, r, `layer ${i}`);
    if (i === 0 && className !== 'InputLayer') {
      // Keras names the implicit input after the first layer.
      const shape = declaredBatchShape(cfg) ?? built;
      if (!shape) {
        throw new KerasImportError('UNSUPPORTED_FORMAT', `the Sequential model '${name}' declares no input shape (it was never built); add an Input layer and save it again`);
      }
      const inputName = `${lname}_input`;
      layers.push({ name: inputName, className: 'InputLayer', config: { name: inputName, batch_input_shape: shape, dtype: typeof cfg.dtype === 'string' ? cfg.dtype : 'float32' }, calls: [] });
      prev = { layer: inputName, node: 0, tensor: 0 };
    }
    if (className === 'InputLayer') {
      if (i !== 0) throw corrupt(`InputLayer '${lname}' is not the first layer of the Sequential model`);
      layers.push({ name: lname, className, config: cfg, calls: [] });
    } else {
      layers.push({ name: lname, className, config: cfg, calls: [[prev!]] });
    }
    prev = { layer: lname, node: 0, tensor: 0 };
  });
  const input = layers[0];
  return { className: 'Sequential', name, layers, inputs: [{ layer: input.name, node: 0, tensor: 0 }], outputs: [prev!] };
}

function functionalGraph(config: unknown, className: string): KerasGraph {
  if (!isObject(config) || !Array.isArray(config.layers)) throw corrupt(`${className} config has no layer list`);
  const name = typeof config.name === 'string' ? config.name : 'model';
  const layers = config.layers.map((raw: unknown, i: number): KerasLayer => {
    const { className: cls, config: cfg, raw: r } = layerEntry(raw, `layer ${i}`);
    const lname = layerName(cfg, r, `layer ${i}`);
    const nodes = r.inbound_nodes;
    if (nodes !== undefined && !Array.isArray(nodes)) throw corrupt(`layer '${lname}' has inbound_nodes that are not a list`);
    return { name: lname, className: cls, config: cfg, calls: (nodes ?? []).map((n: unknown) => callInputs(n, lname, cls)) };
  });
  return { className: 'Functional', name, layers, inputs: tensorList(config.input_layers, 'input_layers'), outputs: tensorList(config.output_layers, 'output_layers') };
}

/** One inbound node: Keras 2 writes [[layer, node, tensor, kwargs], ...]; Keras 3 writes {args, kwargs}. */
function callInputs(node: unknown, lname: string, cls: string): TensorRef[] {
  if (Array.isArray(node)) {
    return node.map((entry: unknown) => {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string') throw corrupt(`layer '${lname}' has a malformed inbound node`);
      const kwargs = entry[3];
      if (isObject(kwargs) && Object.keys(kwargs).some((k) => hasKerasTensor(kwargs[k]))) {
        throw new KerasImportError('UNSUPPORTED_LAYER', `layer '${lname}' (${cls}): is called with extra tensor arguments (${Object.keys(kwargs).join(', ')}), which the converter does not translate`, { name: lname, className: cls });
      }
      return { layer: entry[0], node: Number(entry[1] ?? 0), tensor: Number(entry[2] ?? 0) };
    });
  }
  if (isObject(node)) {
    const refs: TensorRef[] = [];
    collectTensors(node.args, refs);
    if (isObject(node.kwargs) && hasKerasTensor(node.kwargs)) {
      throw new KerasImportError('UNSUPPORTED_LAYER', `layer '${lname}' (${cls}): is called with tensor keyword arguments (${Object.keys(node.kwargs).join(', ')}), which the converter does not translate`, { name: lname, className: cls });
    }
    return refs;
  }
  throw corrupt(`layer '${lname}' has a malformed inbound node`);
}

function isKerasTensor(v: unknown): v is { config: { keras_history: unknown[] } } {
  return isObject(v) && v.class_name === '__keras_tensor__' && isObject(v.config) && Array.isArray(v.config.keras_history);
}

function hasKerasTensor(v: unknown): boolean {
  if (isKerasTensor(v)) return true;
  if (Array.isArray(v)) return v.some(hasKerasTensor);
  if (isObject(v)) return Object.values(v).some(hasKerasTensor);
  return false;
}

function collectTensors(v: unknown, out: TensorRef[]): void {
  if (isKerasTensor(v)) {
    const [layer, node, tensor] = v.config.keras_history;
    out.push({ layer: String(layer), node: Number(node), tensor: Number(tensor) });
  } else if (Array.isArray(v)) {
    for (const x of v) collectTensors(x, out);
  }
}

/** input_layers/output_layers: a list of [name, node, tensor], or (Keras 3, one tensor) a single one. */
function tensorList(v: unknown, field: string): TensorRef[] {
  if (!Array.isArray(v) || v.length === 0) throw corrupt(`${field} is missing`);
  const one = (e: unknown): TensorRef => {
    if (!Array.isArray(e) || typeof e[0] !== 'string') throw corrupt(`${field} has a malformed entry`);
    return { layer: e[0], node: Number(e[1] ?? 0), tensor: Number(e[2] ?? 0) };
  };
  if (typeof v[0] === 'string') return [one(v)];
  const out: TensorRef[] = [];
  // Keras 3 may nest them in dicts/lists mirroring the model's call structure.
  const walk = (e: unknown) => {
    if (Array.isArray(e) && typeof e[0] === 'string') out.push(one(e));
    else if (Array.isArray(e)) e.forEach(walk);
    else if (isObject(e)) Object.values(e).forEach(walk);
    else throw corrupt(`${field} has a malformed entry`);
  };
  walk(v);
  return out;
}
