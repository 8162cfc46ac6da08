// Where each layer's weights live, in the two layouts Keras writes:
//  - legacy HDF5 (Keras 2 / tf.keras, and Keras 3's model.save('x.h5')): group model_weights/<layer name> with a
//    `weight_names` attribute listing datasets in the layer's own weight order;
//  - Keras 3 (model.weights.h5 in a .keras archive): layers/<class name in snake_case, numbered per class in
//    model.layers order>/vars/0..n, with nested objects (an RNN's cell) in sub-groups.
// Both give the weights in the order the layer created them, which is how Keras itself loads them back.
import type { FloatTensor, Hdf5File } from './hdf5.ts';
import type { KerasLayer } from './model-config.ts';

export interface LayerWeights {
  /** The names the file gives them (legacy: 'dense_1/kernel:0'; Keras 3: 'layers/dense/vars/0'). */
  names: string[];
  tensors: FloatTensor[];
}

export interface WeightSource {
  forLayer(layer: KerasLayer): LayerWeights;
  /** The weights of a model used as a layer (its own layers are looked up in there). */
  nested(layer: KerasLayer, layers: KerasLayer[]): WeightSource;
}

export function legacyWeights(h5: Hdf5File): WeightSource {
  const root = h5.has('model_weights') ? 'model_weights' : '';
  return {
    forLayer(layer) {
      const group = root ? `${root}/${layer.name}` : layer.name;
      if (!h5.isGroup(group)) return { names: [], tensors: [] };
      const names = h5.stringListAttr(group, 'weight_names') ?? [];
      return { names, tensors: names.map((n) => h5.floatDataset(`${group}/${n}`)) };
    },
    nested(layer) {
      // A nested model's group lists the weights of all its layers (at any depth) under their own layer names.
      const group = root ? `${root}/${layer.name}` : layer.name;
      const names = h5.isGroup(group) ? (h5.stringListAttr(group, 'weight_names') ?? []) : [];
      return nestedLegacy(h5, group, names);
    },
  };
}

function nestedLegacy(h5: Hdf5File, group: string, all: string[]): WeightSource {
  return {
    forLayer(layer) {
      // TensorFlow names variables <layer>/<weight>:0 (an RNN's: <layer>/<cell>/<weight>:0); Keras 3 writes
      // variable paths, which start with the enclosing model's name: <model>/<layer>/<weight>.
      const names = all.filter((n) => n.split('/').slice(0, -1).includes(layer.name));
      return { names, tensors: names.map((n) => h5.floatDataset(`${group}/${n}`)) };
    },
    nested: () => nestedLegacy(h5, group, all),
  };
}

export function toSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

export function kerasV3Weights(h5: Hdf5File, layers: KerasLayer[], prefix?: string): WeightSource {
  // Keras 3 names each saved layer after its class, not its (auto-generated) name: dense, dense_1, ...
  const keyOf = new Map<string, string>();
  const used = new Map<string, number>();
  for (const layer of layers) {
    const base = toSnakeCase(layer.className);
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    keyOf.set(layer.name, n === undefined ? base : `${base}_${n + 1}`);
  }
  // Files written by Keras 2.13 in the new format used _layer_checkpoint_dependencies instead of layers.
  const top = prefix ?? (h5.isGroup('layers') ? 'layers' : h5.isGroup('_layer_checkpoint_dependencies') ? '_layer_checkpoint_dependencies' : 'layers');
  return {
    forLayer(layer) {
      const group = `${top}/${keyOf.get(layer.name)}`;
      const out: LayerWeights = { names: [], tensors: [] };
      if (h5.isGroup(group)) collectVars(h5, group, out);
      return out;
    },
    nested(layer, inner) {
      const group = `${top}/${keyOf.get(layer.name)}`;
      const sub = h5.isGroup(`${group}/layers`) || !h5.isGroup(`${group}/_layer_checkpoint_dependencies`) ? 'layers' : '_layer_checkpoint_dependencies';
      return kerasV3Weights(h5, inner, `${group}/${sub}`);
    },
  };
}

/** A saveable's own vars first, then its children (Keras visits public attributes before private ones). */
function collectVars(h5: Hdf5File, group: string, out: LayerWeights): void {
  const keys = h5.keys(group);
  if (keys.includes('vars')) {
    const vars = h5.keys(`${group}/vars`).sort((a, b) => Number(a) - Number(b));
    for (const v of vars) {
      out.names.push(`${group}/vars/${v}`);
      out.tensors.push(h5.floatDataset(`${group}/vars/${v}`));
    }
  }
  const children = keys.filter((k) => k !== 'vars' && h5.isGroup(`${group}/${k}`));
  children.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
  for (const c of children) collectVars(h5, `${group}/${c}`, out);
}

const sortKey = (name: string) => (name.startsWith('_') ? `~${name}` : name);
