// Tree ensembles (ai.onnx.ml TreeEnsembleClassifier/Regressor) keep thresholds and leaf weights in node
// attributes; int8 or fp16 storage of those would change which branch a value takes, so quantization does not
// apply. What honestly shrinks them is fewer trees: a random forest's trees are interchangeable, so its first k
// trees are a smaller forest; a boosted ensemble's first k trees are the model stopped after k rounds.
import { onnx } from '../formats/onnx/onnx.ts';
import { floatValues, tensor } from '../formats/onnx/graph.ts';
import { toNumber } from '../formats/onnx/inspect.ts';
import { attr } from './graph-edit.ts';

const TREE_OPS = new Set(['TreeEnsembleClassifier', 'TreeEnsembleRegressor']);

export interface TreeEnsembleSummary {
  node: string;
  op: string;
  trees: number;
  nodes: number;
}

export interface TreePruning {
  node: string;
  treesBefore: number;
  treesAfter: number;
  nodesBefore: number;
  nodesAfter: number;
  /** Leaf weights multiplied by before/after so an averaging ensemble's outputs keep their scale. */
  rescaled: number | null;
}

export function isTreeEnsemble(n: onnx.INodeProto): boolean {
  return n.domain === 'ai.onnx.ml' && TREE_OPS.has(n.opType ?? '');
}

function treeIds(n: onnx.INodeProto): number[] {
  return (attr(n, 'nodes_treeids')?.ints ?? []).map((i) => toNumber(i));
}

export function treeEnsembles(model: onnx.IModelProto): TreeEnsembleSummary[] {
  return (model.graph?.node ?? []).filter(isTreeEnsemble).map((n) => {
    const ids = treeIds(n);
    return { node: n.name || n.opType || '', op: n.opType ?? '', trees: new Set(ids).size, nodes: ids.length };
  });
}

/** Filters every per-entry array attribute with the given prefix (nodes_, class_, target_) by a keep mask. */
function filterArrays(n: onnx.INodeProto, prefix: string, keep: boolean[]): void {
  for (const a of n.attribute ?? []) {
    if (!a.name?.startsWith(prefix)) continue;
    if (a.ints?.length === keep.length) a.ints = a.ints.filter((_, i) => keep[i]);
    else if (a.floats?.length === keep.length) a.floats = a.floats.filter((_, i) => keep[i]);
    else if (a.strings?.length === keep.length) a.strings = a.strings.filter((_, i) => keep[i]);
    else if (a.t && a.name.endsWith('_as_tensor') && toNumber(a.t.dims?.[0]) === keep.length) {
      const values = floatValues(a.t).filter((_, i) => keep[i]);
      a.t = tensor(a.t.name ?? '', [values.length], a.t.dataType === onnx.TensorProto.DataType.DOUBLE ? Float64Array.from(values) : values);
    }
  }
}

function scaleWeights(n: onnx.INodeProto, name: string, factor: number): void {
  const a = attr(n, name);
  if (a?.floats?.length) a.floats = a.floats.map((w) => w * factor);
  const t = attr(n, `${name}_as_tensor`);
  if (t?.t) {
    const values = floatValues(t.t).map((w) => w * factor);
    t.t = tensor(t.t.name ?? '', [values.length], t.t.dataType === onnx.TensorProto.DataType.DOUBLE ? Float64Array.from(values) : values);
  }
}

/** Keeps the first `keep` trees of every tree ensemble in the model. Rewrites in place. */
export function pruneTrees(model: onnx.ModelProto, keep: number): TreePruning[] {
  const results: TreePruning[] = [];
  for (const n of (model.graph?.node ?? []).filter(isTreeEnsemble)) {
    const ids = treeIds(n);
    const order = [...new Set(ids)];
    if (keep >= order.length) {
      results.push({ node: n.name || n.opType || '', treesBefore: order.length, treesAfter: order.length, nodesBefore: ids.length, nodesAfter: ids.length, rescaled: null });
      continue;
    }
    const kept = new Set(order.slice(0, keep));
    filterArrays(n, 'nodes_', ids.map((t) => kept.has(t)));
    const classifier = n.opType === 'TreeEnsembleClassifier';
    const leafPrefix = classifier ? 'class_' : 'target_';
    const leafTrees = (attr(n, `${leafPrefix}treeids`)?.ints ?? []).map((i) => toNumber(i));
    filterArrays(n, leafPrefix, leafTrees.map((t) => kept.has(t)));

    // A random forest averages its trees (converters divide each leaf weight by the tree count and sum, with no
    // post transform and no base values); keep that average by scaling the remaining weights up.
    const post = attr(n, 'post_transform')?.s ? new TextDecoder().decode(attr(n, 'post_transform')!.s!) : 'NONE';
    const aggregate = attr(n, 'aggregate_function')?.s ? new TextDecoder().decode(attr(n, 'aggregate_function')!.s!) : 'SUM';
    const base = attr(n, 'base_values')?.floats ?? [];
    let rescaled: number | null = null;
    if ((post === 'NONE' || post === '') && aggregate === 'SUM' && base.every((b) => b === 0)) {
      rescaled = order.length / keep;
      scaleWeights(n, `${leafPrefix}weights`, rescaled);
    }
    results.push({ node: n.name || n.opType || '', treesBefore: order.length, treesAfter: keep, nodesBefore: ids.length, nodesAfter: treeIds(n).length, rescaled });
  }
  return results;
}
