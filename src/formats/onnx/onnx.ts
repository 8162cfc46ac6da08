// Reading and writing ONNX model files.
//
// Types and enums come from onnx-proto (the ONNX schema as protobufjs static code). The bytes are read and written
// with protobufjs's reflection codec over the proto2 schema in schema.ts, so that parse → write gives back the
// exporter's bytes (see schema.ts for why onnx-proto's own encoder does not).
import onnxProto from 'onnx-proto';
import protobuf from 'protobufjs';
import { ModelFileError } from '../errors.ts';
import { ONNX_PROTO2 } from './schema.ts';

export import onnx = onnxProto.onnx;

const root = protobuf.parse(ONNX_PROTO2, { keepCase: false }).root;
const ModelType = root.lookupType('onnx.ModelProto');

const EXPORT_HINT = 'export it with torch.onnx.export, tf2onnx or skl2onnx';

/**
 * Parses an ONNX model. Throws ModelFileError naming the file and the byte where parsing failed when the bytes
 * are not an ONNX model, and when they parse but hold no graph (protobuf accepts many non-ONNX byte strings).
 */
export function readOnnx(bytes: Uint8Array, fileName = 'the file'): onnx.ModelProto {
  if (bytes.length === 0) throw new ModelFileError(`${fileName} is empty, not an ONNX model: ${EXPORT_HINT}`);
  const reader = protobuf.Reader.create(bytes);
  let model: onnx.ModelProto;
  try {
    model = ModelType.decode(reader) as unknown as onnx.ModelProto;
  } catch (e) {
    throw new ModelFileError(
      `${fileName} is not an ONNX model (protobuf parse failed at byte ${reader.pos} of ${bytes.length}: ${firstLine(e)}): ${EXPORT_HINT}`,
    );
  }
  if (!model.graph) {
    throw new ModelFileError(`${fileName} is not an ONNX model (it parses as protobuf but has no graph): ${EXPORT_HINT}`);
  }
  if (!model.opsetImport?.length && !model.irVersion) {
    throw new ModelFileError(`${fileName} is not an ONNX model (no IR version and no opset imports): ${EXPORT_HINT}`);
  }
  return model;
}

/** Serialises a model. Fields are written in field-number order and packed exactly as onnx.proto says. */
export function writeOnnx(model: onnx.IModelProto): Uint8Array {
  return ModelType.encode(model as protobuf.Message).finish();
}

interface Messages {
  ModelProto: [onnx.IModelProto, onnx.ModelProto];
  GraphProto: [onnx.IGraphProto, onnx.GraphProto];
  NodeProto: [onnx.INodeProto, onnx.NodeProto];
  AttributeProto: [onnx.IAttributeProto, onnx.AttributeProto];
  TensorProto: [onnx.ITensorProto, onnx.TensorProto];
  ValueInfoProto: [onnx.IValueInfoProto, onnx.ValueInfoProto];
  TypeProto: [onnx.ITypeProto, onnx.TypeProto];
  OperatorSetIdProto: [onnx.IOperatorSetIdProto, onnx.OperatorSetIdProto];
  StringStringEntryProto: [onnx.IStringStringEntryProto, onnx.StringStringEntryProto];
}

/**
 * Builds a message from plain fields (tests, graph rewrites), the same kind of object readOnnx returns, so
 * rewritten and parsed parts of a model encode alike. int64 fields accept numbers.
 */
export function message<K extends keyof Messages>(type: K, fields: Messages[K][0]): Messages[K][1] {
  return root.lookupType(`onnx.${type}`).fromObject(fields as Record<string, unknown>) as unknown as Messages[K][1];
}

/** Builds a whole model from plain fields; see message(). */
export function createModel(fields: onnx.IModelProto): onnx.ModelProto {
  return message('ModelProto', fields);
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}
