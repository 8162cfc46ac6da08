// Element types of every tensor in a graph, for rewrites that must know which values are float32. ONNX files
// declare the types of inputs, outputs and weights; the rest follows from each operator's type rule.
import { onnx } from '../formats/onnx/onnx.ts';
import { attr } from './graph-edit.ts';

const DT = onnx.TensorProto.DataType;

const BOOL_OUT = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
/** Operators whose later outputs have a fixed type (indices, masks). */
const SECOND_OUTPUT: Record<string, number> = { TopK: DT.INT64, MaxPool: DT.INT64, Dropout: DT.BOOL, Unique: DT.INT64 };

export function inferElementTypes(graph: onnx.IGraphProto): Map<string, number> {
  const types = new Map<string, number>();
  const declare = (v: onnx.IValueInfoProto) => {
    const t = v.type?.tensorType?.elemType;
    if (v.name && t) types.set(v.name, t);
  };
  for (const v of graph.input ?? []) declare(v);
  for (const t of graph.initializer ?? []) if (t.name && t.dataType) types.set(t.name, t.dataType);
  for (const v of graph.valueInfo ?? []) declare(v);
  for (const v of graph.output ?? []) declare(v);

  for (const n of graph.node ?? []) {
    const outs = n.output ?? [];
    const inType = (i: number) => types.get(n.input?.[i] ?? '');
    const set = (i: number, t: number | undefined) => {
      if (outs[i] && t !== undefined && !types.has(outs[i])) types.set(outs[i], t);
    };
    const op = n.opType ?? '';
    const domain = n.domain ?? '';
    if (domain === 'ai.onnx.ml') {
      if (op.endsWith('Classifier')) {
        set(0, attr(n, 'classlabels_strings')?.strings?.length ? DT.STRING : DT.INT64);
        set(1, DT.FLOAT);
      } else outs.forEach((_, i) => set(i, DT.FLOAT));
      continue;
    }
    switch (op) {
      case 'Cast':
        set(0, Number(attr(n, 'to')?.i ?? 0));
        break;
      case 'CastLike':
        set(0, inType(1));
        break;
      case 'Constant': {
        const a = n.attribute?.[0];
        const name = a?.name ?? '';
        set(0, a?.t ? (a.t.dataType ?? undefined) : name.startsWith('value_float') ? DT.FLOAT : name.startsWith('value_int') ? DT.INT64 : name.startsWith('value_string') ? DT.STRING : undefined);
        break;
      }
      case 'ConstantOfShape':
        set(0, attr(n, 'value')?.t?.dataType ?? DT.FLOAT);
        break;
      case 'DequantizeLinear':
        set(0, inType(1) ?? DT.FLOAT);
        break;
      case 'QuantizeLinear':
        set(0, inType(2) ?? DT.UINT8);
        break;
      case 'DynamicQuantizeLinear':
        set(0, DT.UINT8);
        set(1, DT.FLOAT);
        set(2, DT.UINT8);
        break;
      case 'MatMulInteger':
      case 'ConvInteger':
        set(0, DT.INT32);
        break;
      case 'Where':
        set(0, inType(1) ?? inType(2));
        break;
      case 'OneHot':
        set(0, inType(2));
        break;
      case 'EyeLike':
      case 'RandomNormalLike':
      case 'RandomUniformLike':
        set(0, attr(n, 'dtype')?.i != null ? Number(attr(n, 'dtype')!.i) : inType(0));
        break;
      default:
        if (BOOL_OUT.has(op)) set(0, DT.BOOL);
        else if (INT64_OUT.has(op)) set(0, DT.INT64);
        else {
          // Most operators give their outputs the type of their first input (the data; later inputs are often int64 shapes or indices).
          set(0, inType(0));
          for (let i = 1; i < outs.length; i++) set(i, SECOND_OUTPUT[op] ?? inType(0));
        }
    }
  }
  return types;
}
