// float16: every float32 weight and intermediate tensor becomes float16, with a Cast after each float32 graph
// input and before each float32 graph output, so callers still send and receive FP32. Operators that have no
// float16 form in ONNX (the ai.onnx.ml classifiers, Resize's scales, Range, …) keep float32 between Casts.
// onnxruntime's CPU provider computes some float16 ops by casting internally; the file halves either way, and GPU
// and WebGPU providers compute in float16.
import { message, onnx } from '../formats/onnx/onnx.ts';
import { floatToHalf, floatValues, node, tensor } from '../formats/onnx/graph.ts';
import { consumers, namer } from './graph-edit.ts';
import { inferElementTypes } from './types.ts';
import { UserError } from '../core/errors.ts';

const DT = onnx.TensorProto.DataType;

/** Operators kept in float32: no float16 type in their ONNX schema, or precision-critical inputs. */
const KEEP_FLOAT32 = new Set([
  'Resize', 'Upsample', 'Range', 'CumSum', 'NonMaxSuppression', 'RoiAlign', 'TopK', 'RandomUniformLike', 'RandomNormalLike',
  'Multinomial', 'STFT', 'DFT', 'Einsum',
]);

export interface Fp16Conversion {
  convertedInitializers: number;
  keptFloat32Nodes: string[];
  castInputs: string[];
  castOutputs: string[];
}

function keepsFloat32(n: onnx.INodeProto): boolean {
  if (n.domain && n.domain !== 'ai.onnx') return true;
  return KEEP_FLOAT32.has(n.opType ?? '');
}

function toHalfTensor(t: onnx.ITensorProto, name = t.name ?? ''): onnx.TensorProto {
  const f = floatValues(t);
  const h = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) h[i] = floatToHalf(f[i]);
  return tensor(name, (t.dims ?? []).map(Number), h);
}

export class Fp16Error extends UserError {}

/** Rewrites the model in place. */
export function convertToFp16(model: onnx.ModelProto): Fp16Conversion {
  const graph = model.graph!;
  const result: Fp16Conversion = { convertedInitializers: 0, keptFloat32Nodes: [], castInputs: [], castOutputs: [] };
  for (const n of graph.node ?? []) {
    if (n.attribute?.some((a) => a.g || a.graphs?.length)) {
      throw new Fp16Error(`node '${n.name || n.opType}' (${n.opType}) has a subgraph; fp16 conversion of If/Loop/Scan bodies is not supported: use --quantize int8-weights`);
    }
  }
  const types = inferElementTypes(graph);
  const fresh = namer(graph);
  const isFloat = (name: string) => types.get(name) === DT.FLOAT;
  const initNames = new Set((graph.initializer ?? []).map((t) => t.name));

  // Weights: float32 → float16. A weight that a float32-only node reads keeps a float32 copy under its old name.
  const uses = consumers(graph);
  const newInits: onnx.ITensorProto[] = [];
  for (const t of graph.initializer ?? []) {
    if (t.dataType !== DT.FLOAT) {
      newInits.push(t);
      continue;
    }
    const readers = uses.get(t.name ?? '') ?? [];
    const f32Readers = readers.filter((u) => keepsFloat32(u.node));
    if (f32Readers.length === readers.length && readers.length) {
      newInits.push(t);
      continue;
    }
    if (f32Readers.length) {
      newInits.push(t);
      const halfName = fresh(`${t.name}_fp16`);
      newInits.push(toHalfTensor(t, halfName));
      for (const u of readers) if (!keepsFloat32(u.node)) u.node.input![u.index] = halfName;
    } else {
      newInits.push(toHalfTensor(t));
      types.set(t.name ?? '', DT.FLOAT16);
    }
    result.convertedInitializers++;
  }
  graph.initializer = newInits;

  const out: onnx.INodeProto[] = [];
  // Graph inputs stay float32 for callers; a Cast right after each makes the float16 copy the graph reads.
  const inputRename = new Map<string, string>();
  for (const v of graph.input ?? []) {
    const name = v.name ?? '';
    if (initNames.has(name) || !isFloat(name)) continue;
    const half = fresh(`${name}_fp16`);
    out.push(node('Cast', [name], [half], { to: DT.FLOAT16 }, { name: fresh(`${name}_to_fp16`) }));
    inputRename.set(name, half);
    result.castInputs.push(name);
  }
  // Graph outputs: the producing node writes a float16 tensor; a Cast at the end gives callers float32.
  const outputRename = new Map<string, string>();
  for (const v of graph.output ?? []) {
    const name = v.name ?? '';
    if (!isFloat(name) || inputRename.has(name) || initNames.has(name)) continue;
    outputRename.set(name, fresh(`${name}_fp16`));
  }

  const castBack = new Map<string, string>();
  for (const n of graph.node ?? []) {
    const f32 = keepsFloat32(n);
    n.input = (n.input ?? []).map((x) => {
      if (f32) {
        // Graph inputs and the weights it reads are still float32; other float tensors are now float16.
        if (!isFloat(x) || inputRename.has(x) || initNames.has(x)) return x;
        let back = castBack.get(x);
        if (!back) {
          back = fresh(`${x}_fp32`);
          out.push(node('Cast', [outputRename.get(x) ?? x], [back], { to: DT.FLOAT }, { name: fresh(`${x}_to_fp32`) }));
          castBack.set(x, back);
        }
        return back;
      }
      return inputRename.get(x) ?? outputRename.get(x) ?? x;
    });
    if (f32) {
      result.keptFloat32Nodes.push(n.name || n.opType || '');
      const after: onnx.INodeProto[] = [];
      n.output = (n.output ?? []).map((y) => {
        if (!isFloat(y)) return y;
        const raw = fresh(`${y}_fp32`);
        after.push(node('Cast', [raw], [outputRename.get(y) ?? y], { to: DT.FLOAT16 }, { name: fresh(`${y}_to_fp16`) }));
        return raw;
      });
      out.push(n, ...after);
      continue;
    }
    n.output = (n.output ?? []).map((y) => outputRename.get(y) ?? y);
    convertFloatAttributes(n);
    out.push(n);
  }
  for (const [name, half] of outputRename) {
    out.push(node('Cast', [half], [name], { to: DT.FLOAT }, { name: fresh(`${name}_to_fp32`) }));
    result.castOutputs.push(name);
  }
  graph.node = out;
  // Intermediate shapes and types are hints; the float ones would now be wrong.
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => v.type?.tensorType?.elemType !== DT.FLOAT);
  return result;
}

/** Type-carrying attributes of float16 nodes: Cast targets and constant tensors. */
function convertFloatAttributes(n: onnx.INodeProto): void {
  for (const a of n.attribute ?? []) {
    if (n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DT.FLOAT) a.i = DT.FLOAT16;
    if (a.t && a.t.dataType === DT.FLOAT) a.t = toHalfTensor(a.t, a.t.name ?? '');
  }
  if (n.opType === 'Constant') {
    const vf = n.attribute?.find((a) => a.name === 'value_float' || a.name === 'value_floats');
    if (vf) {
      const values = vf.name === 'value_float' ? [vf.f ?? 0] : (vf.floats ?? []);
      const t = tensor('', vf.name === 'value_float' ? [] : [values.length], Float32Array.from(values));
      n.attribute = [message('AttributeProto', { name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: toHalfTensor(t) })];
    }
  }
  if (n.opType === 'ConstantOfShape' && !n.attribute?.some((a) => a.name === 'value')) {
    // The default value is float32 zero.
    n.attribute = [...(n.attribute ?? []), message('AttributeProto', { name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: tensor('', [1], new Uint16Array(1)) })];
  }
}
