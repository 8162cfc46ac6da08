// int8 weight-only quantization: MatMul/Gemm/Conv (and recurrent, embedding) weights are stored as int8 with one
// scale per output channel, and a DequantizeLinear turns them back into float32 before use. The file shrinks
// about 4x; the arithmetic stays float, so every runtime that runs the original runs this.
import { onnx } from '../formats/onnx/onnx.ts';
import { floatValues, node, tensor } from '../formats/onnx/graph.ts';
import { elementCount } from '../formats/onnx/inspect.ts';
import { consumers, dimsOf, initializers, intAttr, namer, opsetVersion, qmaxForBits, quantizeSymmetric, removeInitializer } from './graph-edit.ts';

const DT = onnx.TensorProto.DataType;

export interface QuantizedWeight {
  name: string;
  ops: string[];
  dims: number[];
  /** The per-channel axis, or null for one scale over the whole tensor. */
  axis: number | null;
  bytesBefore: number;
  bytesAfter: number;
}

export interface SkippedWeight {
  name: string;
  reason: string;
}

export interface WeightQuantization {
  quantized: QuantizedWeight[];
  skipped: SkippedWeight[];
}

export interface WeightOptions {
  /** Weights with fewer elements stay float: the scales and the extra node would cost more than they save. */
  minElements?: number;
  /** Only these tensor names (int8-dynamic passes the weights it could not rewrite). */
  only?: Set<string>;
  /** Levels used inside the int8 storage: 8 (default) uses [-127, 127]; fewer bits trade accuracy for nothing in size, for experiments and gate tests. */
  bits?: number;
}

/**
 * Which input of a node is a weight, and its output-channel axis. Undefined for other slots.
 * Conv W [M, C/g, k…] → 0; MatMul B [K, N] → 1; Gemm B → 0 when transB else 1; GRU/LSTM/RNN W, R
 * [dirs, gates·H, ·] → 1; Gather's table [V, D] → 0 (a scale per embedding row).
 */
export function weightAxis(n: onnx.INodeProto, index: number, rank: number): number | undefined {
  if (n.domain && n.domain !== 'ai.onnx') return undefined;
  switch (n.opType) {
    case 'Conv':
      return index === 1 && rank >= 3 ? 0 : undefined;
    case 'MatMul':
      return index === 1 && rank === 2 ? 1 : undefined;
    case 'Gemm':
      return index === 1 && rank === 2 ? (intAttr(n, 'transB', 0) ? 0 : 1) : undefined;
    case 'GRU':
    case 'LSTM':
    case 'RNN':
      return (index === 1 || index === 2) && rank === 3 ? 1 : undefined;
    case 'Gather':
      return index === 0 && rank === 2 ? 0 : undefined;
    default:
      return undefined;
  }
}

/** Rewrites the model in place. */
export function quantizeWeightsInt8(model: onnx.ModelProto, options: WeightOptions = {}): WeightQuantization {
  const graph = model.graph!;
  const minElements = options.minElements ?? 64;
  const opset = opsetVersion(model);
  const perAxis = opset >= 13; // DequantizeLinear's axis attribute arrived in opset 13
  const uses = consumers(graph);
  const inits = initializers(graph);
  const fresh = namer(graph);
  const result: WeightQuantization = { quantized: [], skipped: [] };
  const dequantizers: onnx.INodeProto[] = [];
  if (opset < 10) {
    result.skipped.push({ name: '*', reason: `opset ${opset} has no DequantizeLinear (needs 10, per-channel 13): re-export the model with opset 13 or later` });
    return result;
  }

  for (const [name, t] of inits) {
    if (options.only && !options.only.has(name)) continue;
    const list = uses.get(name) ?? [];
    if (!list.length) continue;
    const dims = dimsOf(t);
    const axes = list.map((u) => weightAxis(u.node, u.index, dims.length));
    if (axes.some((a) => a === undefined)) {
      if (axes.some((a) => a !== undefined)) result.skipped.push({ name, reason: `also read by ${list.map((u) => u.node.opType).join(', ')}, which need it in float` });
      continue;
    }
    if (t.dataType !== DT.FLOAT) {
      result.skipped.push({ name, reason: `stored as ONNX type ${t.dataType}, not float32` });
      continue;
    }
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      result.skipped.push({ name, reason: 'its data is in an external file' });
      continue;
    }
    if (elementCount(t) < minElements) continue;
    const axis = perAxis && new Set(axes).size === 1 ? axes[0] : undefined;
    const q = quantizeSymmetric(floatValues(t), dims, axis, qmaxForBits(options.bits ?? 8));
    const qName = fresh(`${name}_quantized`);
    const sName = fresh(`${name}_scale`);
    const zName = fresh(`${name}_zero_point`);
    const channels = q.scales.length;
    removeInitializer(graph, name);
    graph.initializer!.push(
      tensor(qName, dims, q.values),
      tensor(sName, axis === undefined ? [] : [channels], q.scales),
      tensor(zName, axis === undefined ? [] : [channels], new Int8Array(channels)),
    );
    dequantizers.push(node('DequantizeLinear', [qName, sName, zName], [name], axis === undefined ? {} : { axis }, { name: fresh(`${name}_DequantizeLinear`) }));
    result.quantized.push({
      name,
      ops: [...new Set(list.map((u) => u.node.opType ?? ''))],
      dims,
      axis: axis ?? null,
      bytesBefore: elementCount(t) * 4,
      bytesAfter: elementCount(t) + channels * 5,
    });
  }
  // The dequantized weights must exist before any node reads them: put the new nodes first.
  graph.node = [...dequantizers, ...(graph.node ?? [])];
  return result;
}
