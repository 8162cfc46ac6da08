// Helpers shared by the graph rewrites in optimize/: who uses a tensor, fresh names, opset lookups, int8 weights.
import { onnx } from '../formats/onnx/onnx.ts';
import { toNumber } from '../formats/onnx/inspect.ts';

export interface Use {
  node: onnx.INodeProto;
  index: number;
}

/** Every (node, input slot) reading each tensor name, subgraphs included (they may read outer names). */
export function consumers(graph: onnx.IGraphProto): Map<string, Use[]> {
  const map = new Map<string, Use[]>();
  const visit = (g: onnx.IGraphProto) => {
    for (const node of g.node ?? []) {
      (node.input ?? []).forEach((name, index) => {
        if (!name) return;
        let list = map.get(name);
        if (!list) map.set(name, (list = []));
        list.push({ node, index });
      });
      for (const a of node.attribute ?? []) {
        if (a.g) visit(a.g);
        for (const sg of a.graphs ?? []) visit(sg);
      }
    }
  };
  visit(graph);
  return map;
}

export function initializers(graph: onnx.IGraphProto): Map<string, onnx.ITensorProto> {
  return new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
}

/** Makes names that no tensor or node in the graph uses yet. */
export function namer(graph: onnx.IGraphProto): (base: string) => string {
  const used = new Set<string>();
  const visit = (g: onnx.IGraphProto) => {
    for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) used.add(v.name ?? '');
    for (const t of g.initializer ?? []) used.add(t.name ?? '');
    for (const n of g.node ?? []) {
      for (const x of [...(n.input ?? []), ...(n.output ?? [])]) used.add(x);
      if (n.name) used.add(n.name);
      for (const a of n.attribute ?? []) {
        if (a.g) visit(a.g);
        for (const sg of a.graphs ?? []) visit(sg);
      }
    }
  };
  visit(graph);
  return (base: string) => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };
}

/** The opset version the model imports for a domain ('' = ai.onnx), or 0. */
export function opsetVersion(model: onnx.IModelProto, domain = ''): number {
  const o = (model.opsetImport ?? []).find((x) => (x.domain ?? '') === domain || (domain === '' && x.domain === 'ai.onnx'));
  return o ? toNumber(o.version) : 0;
}

export function attr(node: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

export function intAttr(node: onnx.INodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && a.i != null ? toNumber(a.i) : fallback;
}

export function floatAttr(node: onnx.INodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && a.f != null ? a.f : fallback;
}

export function removeInitializer(graph: onnx.IGraphProto, name: string): void {
  graph.initializer = (graph.initializer ?? []).filter((t) => t.name !== name);
  // IR < 4 lists initializers among the graph inputs too.
  graph.input = (graph.input ?? []).filter((v) => v.name !== name);
}

export function dimsOf(t: onnx.ITensorProto): number[] {
  return (t.dims ?? []).map((d) => toNumber(d));
}

export interface Int8Weights {
  values: Int8Array;
  /** One scale per slice along the axis (or one for the whole tensor). */
  scales: Float32Array;
}

/** The largest int8 level for a number of bits: 127 for 8, 63 for 7, … 1 for 2. */
export function qmaxForBits(bits: number): number {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new RangeError(`bits must be an integer from 2 to 8, got ${bits}`);
  return 2 ** (bits - 1) - 1;
}

/**
 * Symmetric int8 quantization (zero point 0, values in [-127, 127]) with one scale per slice along `axis`, or a
 * single scale when axis is undefined. Symmetric keeps the zero point a scalar 0, which the integer kernels
 * (ConvInteger) require even when the scales are per channel.
 */
export function quantizeSymmetric(w: Float32Array, dims: number[], axis: number | undefined, qmax = 127): Int8Weights {
  const channels = axis === undefined ? 1 : dims[axis];
  const inner = axis === undefined ? w.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) {
    const c = channelOf(i);
    const a = Math.abs(w[i]);
    if (a > maxAbs[c]) maxAbs[c] = a;
  }
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scales[c] = maxAbs[c] > 0 ? maxAbs[c] / qmax : 1;
  const values = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const q = Math.round(w[i] / scales[channelOf(i)]);
    values[i] = q > qmax ? qmax : q < -qmax ? -qmax : q;
  }
  return { values, scales };
}
