// A small ONNX graph builder for the Keras converter: unique tensor names, typed initializers, and a static
// shape carried beside every value so that layers needing sizes (padding, Flatten, output metadata) know them.
import { createModel, onnx, writeOnnx } from '../onnx/onnx.ts';
import { node, tensor, valueInfo, type AttrValue } from '../onnx/graph.ts';
import { DAIS_VERSION } from '../../core/version.ts';

export const DT = onnx.TensorProto.DataType;
export const OPSET = 17;

/** A static shape in Keras order; null = not known until run time (the batch axis always). */
export type Shape = (number | null)[];

export interface Value {
  name: string;
  shape: Shape;
  /** ONNX element type (DT.FLOAT for every Keras activation). */
  elemType: number;
}

export class GraphBuilder {
  private readonly used = new Set<string>();
  private readonly nodes: onnx.NodeProto[] = [];
  private readonly initializers: onnx.TensorProto[] = [];
  private readonly inputs: onnx.ValueInfoProto[] = [];
  private readonly outputs: onnx.ValueInfoProto[] = [];
  private readonly ops = new Set<string>();

  /** Names that must stay free for graph inputs/outputs (Keras layer names). */
  reserve(name: string): void {
    this.used.add(name);
  }

  unique(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_./:-]/g, '_') || 't';
    if (!this.used.has(base)) {
      this.used.add(base);
      return base;
    }
    for (let i = 1; ; i++) {
      const n = `${base}_${i}`;
      if (!this.used.has(n)) {
        this.used.add(n);
        return n;
      }
    }
  }

  addInput(name: string, shape: Shape, elemType: number, dimNames: (string | null)[]): Value {
    this.inputs.push(valueInfo(name, elemType, shape.map((d, i) => d ?? dimNames[i])));
    return { name, shape, elemType };
  }

  /** A graph output under an exact name (an Identity node gives the Keras name to whatever made it). */
  addOutput(name: string, v: Value, dimNames: (string | null)[]): void {
    this.nodes.push(node('Identity', [v.name], [name], {}, { name: `${name}/output` }));
    this.ops.add('Identity');
    this.outputs.push(valueInfo(name, v.elemType, v.shape.map((d, i) => d ?? dimNames[i])));
  }

  floatConst(hint: string, dims: number[], data: Float32Array | number[]): string {
    const name = this.unique(hint);
    const arr = data instanceof Float32Array ? data : Float32Array.from(data);
    if (arr.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`internal: constant ${hint} has ${arr.length} values for [${dims}]`);
    this.initializers.push(tensor(name, dims, arr));
    return name;
  }

  int64Const(hint: string, values: number[], dims: number[] = [values.length]): string {
    const name = this.unique(hint);
    this.initializers.push(tensor(name, dims, BigInt64Array.from(values.map((v) => BigInt(v)))));
    return name;
  }

  /** Adds one node; returns its output names (as many as `outputs`). */
  op(opType: string, inputs: string[], hint: string, attrs: Record<string, AttrValue> = {}, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, (_, i) => this.unique(outputs === 1 ? hint : `${hint}:${i}`));
    this.nodes.push(node(opType, inputs, outs, attrs, { name: this.unique(`${hint}/${opType}`) }));
    this.ops.add(opType);
    return outs;
  }

  /** op() for the common single-output case. */
  op1(opType: string, inputs: string[], hint: string, attrs: Record<string, AttrValue> = {}): string {
    return this.op(opType, inputs, hint, attrs, 1)[0];
  }

  operators(): string[] {
    return [...this.ops].sort();
  }

  encode(graphName: string, docString: string, metadata: Record<string, string>): Uint8Array {
    const model = createModel({
      irVersion: 8,
      producerName: 'dais',
      producerVersion: DAIS_VERSION,
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return writeOnnx(model);
  }
}
