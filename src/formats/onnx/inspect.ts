// What a model is, read from its ONNX file without running it: the data behind `dais inspect` and the v2
// model-metadata endpoint.
import { ONNX_ELEMENT_TYPE_TO_DATATYPE, type Datatype } from '../../core/datatypes.ts';
import { onnx, readOnnx } from './onnx.ts';

export interface TensorInfo {
  name: string;
  /** The v2 datatype (FP32, INT64, …) for tensors; for other values the ONNX type, e.g. "seq(map(int64,tensor(float)))". */
  datatype: Datatype | string;
  /** False for sequences, maps, optionals and sparse tensors, and for tensors whose element type v2 cannot name. */
  tensor: boolean;
  /** The ONNX type as ONNX writes it, e.g. "tensor(float)". */
  onnxType: string;
  /** Dimensions: a number, the symbolic name the exporter gave (e.g. "N"), or -1 when unknown. */
  shape: (number | string)[];
  /** Set when the model does not say how many dimensions the value has (shape is then []). */
  rankUnknown?: true;
  docString?: string;
}

export interface OpsetImport {
  /** "ai.onnx" for the default domain (stored as ""). */
  domain: string;
  version: number;
}

export interface ExternalDataRef {
  tensor: string;
  location: string;
  bytes?: number;
}

export interface ModelInspection {
  fileName?: string;
  /** Of the file given (a Keras file's own size and hash, not those of the ONNX it converts to). */
  fileSize: number;
  sha256: string;
  /** For a file converted to ONNX when loaded (Keras): the converted model that serve and build use. */
  convertedOnnx?: { format: string; bytes: number; sha256: string };
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  graphName: string;
  metadata: Record<string, string>;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Nodes per operator, keyed "Op" for the default domain and "domain::Op" otherwise; subgraphs included. */
  nodeCountByOp: Record<string, number>;
  nodeCount: number;
  /** Elements in all initializers (the trained weights). */
  parameterCount: number;
  /** Bytes those elements take in memory, wherever they are stored. */
  initializerBytes: number;
  initializerCount: number;
  /** Initializers stored outside the .onnx file; their data is not in fileSize or sha256. */
  externalData: ExternalDataRef[];
  /** Tree ensembles keep their parameters in node attributes, not initializers: their size is told here. */
  treeEnsembles?: TreeEnsembleInfo[];
}

export interface TreeEnsembleInfo {
  op: string;
  trees: number;
  /** Tree nodes, leaves included. */
  nodes: number;
}

const DT = onnx.TensorProto.DataType;

/** ONNX's own spelling of element types, as in "tensor(float)". */
const ELEMENT_TYPE_NAME: Record<number, string> = {
  [DT.FLOAT]: 'float',
  [DT.UINT8]: 'uint8',
  [DT.INT8]: 'int8',
  [DT.UINT16]: 'uint16',
  [DT.INT16]: 'int16',
  [DT.INT32]: 'int32',
  [DT.INT64]: 'int64',
  [DT.STRING]: 'string',
  [DT.BOOL]: 'bool',
  [DT.FLOAT16]: 'float16',
  [DT.DOUBLE]: 'double',
  [DT.UINT32]: 'uint32',
  [DT.UINT64]: 'uint64',
  [DT.COMPLEX64]: 'complex64',
  [DT.COMPLEX128]: 'complex128',
  [DT.BFLOAT16]: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
  23: 'float4e2m1',
};

/** Bytes per element; strings are counted by their actual lengths instead. */
const ELEMENT_BYTES: Record<number, number> = {
  1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
  17: 1, 18: 1, 19: 1, 20: 1, 21: 0.5, 22: 0.5, 23: 0.5,
};

export function elementTypeName(elemType: number): string {
  return ELEMENT_TYPE_NAME[elemType] ?? `unknown(${elemType})`;
}

/** int64 fields arrive as Long objects (or numbers when small); every value dais reads fits a double. */
export function toNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function typeString(t: onnx.ITypeProto | null | undefined): string {
  if (!t) return 'unknown';
  if (t.tensorType) return `tensor(${elementTypeName(t.tensorType.elemType ?? 0)})`;
  if (t.sequenceType) return `seq(${typeString(t.sequenceType.elemType)})`;
  if (t.mapType) return `map(${elementTypeName(t.mapType.keyType ?? 0)},${typeString(t.mapType.valueType)})`;
  if (t.optionalType) return `optional(${typeString(t.optionalType.elemType)})`;
  if (t.sparseTensorType) return `sparse_tensor(${elementTypeName(t.sparseTensorType.elemType ?? 0)})`;
  return 'unknown';
}

export function tensorInfo(v: onnx.IValueInfoProto): TensorInfo {
  const type = v.type;
  const onnxType = typeString(type);
  const shapeProto = type?.tensorType?.shape ?? type?.sparseTensorType?.shape;
  const datatype = type?.tensorType ? ONNX_ELEMENT_TYPE_TO_DATATYPE[type.tensorType.elemType ?? 0] : undefined;
  const info: TensorInfo = {
    name: v.name ?? '',
    datatype: datatype ?? onnxType,
    tensor: datatype !== undefined,
    onnxType,
    shape: (shapeProto?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue != null && Object.hasOwn(d, 'dimValue') ? toNumber(d.dimValue) : -1)),
  };
  if (!shapeProto && (type?.tensorType || type?.sparseTensorType)) info.rankUnknown = true;
  if (v.docString) info.docString = v.docString;
  return info;
}

/** Element count of a tensor (product of dims; 1 for a scalar). */
export function elementCount(t: onnx.ITensorProto): number {
  return (t.dims ?? []).reduce<number>((n, d) => n * toNumber(d), 1);
}

function tensorBytes(t: onnx.ITensorProto): number {
  if (t.dataType === DT.STRING) return (t.stringData ?? []).reduce((n, s) => n + s.length, 0);
  return Math.ceil(elementCount(t) * (ELEMENT_BYTES[t.dataType ?? 0] ?? 0));
}

/** Every node in a graph and in its subgraphs (If/Loop/Scan bodies). */
export function* allNodes(graph: onnx.IGraphProto): Generator<onnx.INodeProto> {
  for (const node of graph.node ?? []) {
    yield node;
    for (const a of node.attribute ?? []) {
      if (a.g) yield* allNodes(a.g);
      for (const g of a.graphs ?? []) yield* allNodes(g);
    }
  }
}

export function opKey(node: onnx.INodeProto): string {
  const domain = node.domain ?? '';
  return domain === '' || domain === 'ai.onnx' ? (node.opType ?? '') : `${domain}::${node.opType}`;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Reads the model's bytes and describes it. Throws ModelFileError for bytes that are not an ONNX model. */
export async function inspectOnnx(bytes: Uint8Array, fileName?: string): Promise<ModelInspection> {
  const model = readOnnx(bytes, fileName);
  return { ...describeModel(model), fileSize: bytes.length, sha256: await sha256Hex(bytes), ...(fileName ? { fileName } : {}) };
}

/** The parts of an inspection that come from the parsed model alone. */
export function describeModel(model: onnx.IModelProto): Omit<ModelInspection, 'fileSize' | 'sha256' | 'fileName'> {
  const graph = model.graph ?? {};
  const initializers = graph.initializer ?? [];
  const initNames = new Set(initializers.map((t) => t.name));
  const nodeCountByOp: Record<string, number> = {};
  let nodeCount = 0;
  const treeEnsembles: TreeEnsembleInfo[] = [];
  for (const node of allNodes(graph)) {
    const k = opKey(node);
    if (node.domain === 'ai.onnx.ml' && node.opType?.startsWith('TreeEnsemble')) {
      const ids = node.attribute?.find((a) => a.name === 'nodes_treeids')?.ints ?? [];
      treeEnsembles.push({ op: k, trees: new Set(ids.map((i) => toNumber(i))).size, nodes: ids.length });
    }
    nodeCountByOp[k] = (nodeCountByOp[k] ?? 0) + 1;
    nodeCount++;
  }
  let parameterCount = 0;
  let initializerBytes = 0;
  const externalData: ExternalDataRef[] = [];
  for (const t of initializers) {
    parameterCount += elementCount(t);
    initializerBytes += tensorBytes(t);
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
      const ref: ExternalDataRef = { tensor: t.name ?? '', location: kv.location ?? '' };
      if (kv.length) ref.bytes = Number(kv.length);
      externalData.push(ref);
    }
  }
  for (const s of graph.sparseInitializer ?? []) {
    const nnz = s.values ? elementCount(s.values) : 0;
    parameterCount += nnz;
    initializerBytes += (s.values ? tensorBytes(s.values) : 0) + (s.indices ? tensorBytes(s.indices) : 0);
  }
  return {
    irVersion: toNumber(model.irVersion),
    opsetImports: (model.opsetImport ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: toNumber(o.version) })),
    producerName: model.producerName ?? '',
    producerVersion: model.producerVersion ?? '',
    domain: model.domain ?? '',
    modelVersion: toNumber(model.modelVersion),
    docString: model.docString ?? '',
    graphName: graph.name ?? '',
    metadata: Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
    // Before IR version 4 exporters listed initializers among the inputs; callers never feed those.
    inputs: (graph.input ?? []).filter((v) => !initNames.has(v.name)).map(tensorInfo),
    outputs: (graph.output ?? []).map(tensorInfo),
    nodeCountByOp,
    nodeCount,
    parameterCount,
    initializerBytes,
    initializerCount: initializers.length + (graph.sparseInitializer?.length ?? 0),
    externalData,
    ...(treeEnsembles.length ? { treeEnsembles } : {}),
  };
}
