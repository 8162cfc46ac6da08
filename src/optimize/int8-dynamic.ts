// int8 dynamic quantization: activations are quantized at run time (DynamicQuantizeLinear, uint8) and multiplied
// with int8 weights by MatMulInteger / ConvInteger, the integer kernels onnxruntime's CPU provider has (in Node
// and in WebAssembly). The int32 result is scaled back to float: y = int_result · (x_scale · w_scale[channel]).
// Weights use symmetric per-channel scales with a scalar zero point 0, because ConvInteger accepts only a scalar
// weight zero point. Nodes that cannot take this form fall back to weight-only int8 (DequantizeLinear).
import { onnx } from '../formats/onnx/onnx.ts';
import { floatValues, node, tensor } from '../formats/onnx/graph.ts';
import { elementCount } from '../formats/onnx/inspect.ts';
import { attr, consumers, dimsOf, floatAttr, initializers, intAttr, namer, opsetVersion, qmaxForBits, quantizeSymmetric, removeInitializer } from './graph-edit.ts';
import { quantizeWeightsInt8, type WeightQuantization } from './int8-weights.ts';

const DT = onnx.TensorProto.DataType;

export type DynamicOp = 'MatMul' | 'Gemm' | 'Conv';
export const DYNAMIC_OPS: readonly DynamicOp[] = ['MatMul', 'Gemm', 'Conv'];

export interface DynamicNode {
  node: string;
  op: DynamicOp;
  weight: string;
}

export interface FallbackNode {
  node: string;
  op: string;
  reason: string;
}

export interface DynamicQuantization {
  integer: DynamicNode[];
  /** Nodes kept in float compute (their weights still int8 through DequantizeLinear where possible). */
  fallback: FallbackNode[];
  weights: WeightQuantization;
}

export interface DynamicOptions {
  /** Op types to rewrite with integer kernels; the others fall back to weight-only. */
  ops?: readonly DynamicOp[];
  minElements?: number;
  /**
   * Quantize weights to 7 bits ([-63, 63]). x86 CPUs without VNNI compute uint8×int8 products in 16-bit
   * pairs that can saturate at 8 bits; onnxruntime's own quantizer offers the same "reduce_range" switch.
   */
  reduceRange?: boolean;
  /** Weight levels inside int8 (see WeightOptions.bits); reduceRange is bits 7. */
  bits?: number;
}

/** Rewrites the model in place. */
export function quantizeDynamicInt8(model: onnx.ModelProto, options: DynamicOptions = {}): DynamicQuantization {
  const graph = model.graph!;
  const ops = new Set(options.ops ?? DYNAMIC_OPS);
  const minElements = options.minElements ?? 64;
  const bits = options.bits ?? (options.reduceRange ? 7 : 8);
  const qmax = qmaxForBits(bits);
  const opset = opsetVersion(model);
  const uses = consumers(graph);
  const inits = initializers(graph);
  const fresh = namer(graph);
  const result: DynamicQuantization = { integer: [], fallback: [], weights: { quantized: [], skipped: [] } };
  if (opset < 10) {
    result.fallback.push({ node: '*', op: '*', reason: `opset ${opset} has no MatMulInteger/ConvInteger (needs 10): re-export the model with opset 13 or later` });
    return result;
  }

  // One DynamicQuantizeLinear per activation, shared by every node that reads it.
  const quantizedInputs = new Map<string, [string, string, string]>();
  const quantizeInput = (x: string, out: onnx.INodeProto[]) => {
    let q = quantizedInputs.get(x);
    if (!q) {
      q = [fresh(`${x}_quantized`), fresh(`${x}_scale`), fresh(`${x}_zero_point`)];
      out.push(node('DynamicQuantizeLinear', [x], q, {}, { name: fresh(`${x}_DynamicQuantizeLinear`) }));
      quantizedInputs.set(x, q);
    }
    return q;
  };

  const newNodes: onnx.INodeProto[] = [];
  for (const n of graph.node ?? []) {
    const op = n.opType as DynamicOp;
    const isCandidate = (!n.domain || n.domain === 'ai.onnx') && DYNAMIC_OPS.includes(op);
    if (!isCandidate) {
      newNodes.push(n);
      continue;
    }
    const label = n.name || `${op}(${n.output?.[0]})`;
    const wName = n.input?.[1] ?? '';
    const w = inits.get(wName);
    const reason = whyNot(n, w, uses.get(wName)?.length ?? 0, inits, ops.has(op), minElements);
    if (reason) {
      newNodes.push(n);
      result.fallback.push({ node: label, op, reason });
      continue;
    }
    const wt = w!;
    const wDims = dimsOf(wt);
    const wValues = floatValues(wt);
    const x = n.input![0];
    const y = n.output![0];
    const [xq, xs, xz] = quantizeInput(x, newNodes);

    // Weights laid out for the integer op: [K, N] for MatMulInteger, [M, C/g, k…] for ConvInteger.
    let qDims = wDims;
    let qSource = wValues;
    let axis = op === 'Conv' ? 0 : 1;
    if (op === 'Gemm' && intAttr(n, 'transB', 0)) {
      const [N, K] = wDims;
      qSource = new Float32Array(K * N);
      for (let i = 0; i < N; i++) for (let k = 0; k < K; k++) qSource[k * N + i] = wValues[i * K + k];
      qDims = [K, N];
    }
    const q = quantizeSymmetric(qSource, qDims, axis, qmax);
    const alpha = op === 'Gemm' ? floatAttr(n, 'alpha', 1) : 1;
    const scaleDims = op === 'Conv' ? [q.scales.length, ...wDims.slice(2).map(() => 1)] : [q.scales.length];
    const wq = fresh(`${wName}_quantized`);
    const wz = fresh(`${wName}_zero_point`);
    const ws = fresh(`${wName}_scale`);
    removeInitializer(graph, wName);
    graph.initializer!.push(tensor(wq, qDims, q.values), tensor(wz, [], new Int8Array(1)), tensor(ws, scaleDims, q.scales.map((s) => s * alpha)));

    const base = n.name || y;
    const yInt = fresh(`${base}_int32`);
    const yFloat = fresh(`${base}_float`);
    const scale = fresh(`${base}_scale`);
    const intAttrs: Record<string, number | number[] | string> = {};
    if (op === 'Conv') {
      for (const a of n.attribute ?? []) {
        if (a.name === 'auto_pad') intAttrs.auto_pad = new TextDecoder().decode(a.s!);
        else if (a.name === 'group') intAttrs.group = Number(a.i);
        else if (a.ints?.length) intAttrs[a.name!] = a.ints.map(Number);
      }
    }
    newNodes.push(
      node(op === 'Conv' ? 'ConvInteger' : 'MatMulInteger', [xq, wq, xz, wz], [yInt], intAttrs, { name: fresh(`${base}_${op === 'Conv' ? 'ConvInteger' : 'MatMulInteger'}`) }),
      node('Cast', [yInt], [yFloat], { to: DT.FLOAT }, { name: fresh(`${base}_Cast`) }),
      node('Mul', [xs, ws], [scale], {}, { name: fresh(`${base}_scale_Mul`) }),
    );
    const bias = op === 'Conv' ? n.input?.[2] : op === 'Gemm' ? n.input?.[2] : undefined;
    if (bias) {
      const scaled = fresh(`${base}_scaled`);
      newNodes.push(node('Mul', [yFloat, scale], [scaled], {}, { name: fresh(`${base}_Mul`) }));
      let biasName = bias;
      const b = inits.get(bias)!;
      if (op === 'Conv' || (op === 'Gemm' && floatAttr(n, 'beta', 1) !== 1)) {
        // Conv's bias [M] must broadcast over [N, M, spatial…]; Gemm's beta is folded into C.
        const beta = op === 'Gemm' ? floatAttr(n, 'beta', 1) : 1;
        const values = floatValues(b).map((v) => v * beta);
        biasName = fresh(`${bias}_${op === 'Conv' ? 'reshaped' : 'beta'}`);
        graph.initializer!.push(tensor(biasName, op === 'Conv' ? scaleDims : dimsOf(b), values));
      }
      newNodes.push(node('Add', [scaled, biasName], [y], {}, { name: fresh(`${base}_bias_Add`) }));
    } else {
      newNodes.push(node('Mul', [yFloat, scale], [y], {}, { name: fresh(`${base}_Mul`) }));
    }
    result.integer.push({ node: label, op, weight: wName });
  }
  graph.node = newNodes;
  // Biases the rewrite replaced may now be unused.
  const stillUsed = consumers(graph);
  graph.initializer = (graph.initializer ?? []).filter((t) => stillUsed.has(t.name ?? '') || graph.output?.some((o) => o.name === t.name));
  // Everything the integer kernels did not take (fallback nodes, GRU/LSTM, embeddings) still gets int8 storage.
  result.weights = quantizeWeightsInt8(model, { minElements, bits });
  return result;
}

function whyNot(
  n: onnx.INodeProto,
  w: onnx.ITensorProto | undefined,
  weightUses: number,
  inits: Map<string, onnx.ITensorProto>,
  enabled: boolean,
  minElements: number,
): string | undefined {
  if (!enabled) return 'integer kernel not used for this op type (not supported by every runtime tried)';
  if (!w) return 'its weight is computed at run time, not stored in the model';
  if (w.dataType !== DT.FLOAT) return `its weight is ONNX type ${w.dataType}, not float32`;
  if (weightUses > 1) return 'its weight is shared with other nodes';
  if (elementCount(w) < minElements) return `its weight has only ${elementCount(w)} elements`;
  if (inits.has(n.input?.[0] ?? '')) return 'its first input is a constant';
  const rank = w.dims?.length ?? 0;
  switch (n.opType) {
    case 'MatMul':
      return rank === 2 ? undefined : `MatMul weight of rank ${rank} (MatMulInteger takes a 2-D weight here)`;
    case 'Gemm': {
      if (intAttr(n, 'transA', 0)) return 'Gemm with transA';
      const c = n.input?.[2];
      if (c && !inits.has(c)) return 'its bias is computed at run time';
      return rank === 2 ? undefined : 'Gemm weight not 2-D';
    }
    case 'Conv': {
      const b = n.input?.[2];
      if (b && !inits.has(b)) return 'its bias is computed at run time';
      if (attr(n, 'auto_pad') && new TextDecoder().decode(attr(n, 'auto_pad')!.s!) !== 'NOTSET') return 'Conv with auto_pad';
      return rank >= 3 ? undefined : 'Conv weight of rank < 3';
    }
  }
  return 'not a MatMul, Gemm or Conv';
}
