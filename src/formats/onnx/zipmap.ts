// scikit-learn's ONNX converters end classifiers with a ZipMap node, which turns the probability tensor [N, C]
// into a sequence of {class label: probability} maps. onnxruntime's JS API cannot return sequences or maps
// ("Non tensor type is temporarily not supported"), so dais serves the probability tensor itself under the same
// output name: column i is the probability of the i-th class label, and the labels are kept in the model's
// metadata (key `dais.class_labels.<output>`, a JSON array) and in the load notes.
import { message, onnx } from './onnx.ts';
import { toNumber } from './inspect.ts';

export interface ZipMapRewrite {
  model: onnx.ModelProto;
  /** One line per rewritten output, for logs and `dais inspect`. */
  notes: string[];
}

export const CLASS_LABELS_METADATA_PREFIX = 'dais.class_labels.';

const ML_DOMAIN = 'ai.onnx.ml';

function isZipMap(n: onnx.INodeProto): boolean {
  return n.opType === 'ZipMap' && (n.domain === ML_DOMAIN || n.domain === '' || n.domain == null);
}

/** Cheap byte search so models without a ZipMap are never parsed just to find out. */
export function mayContainZipMap(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('ZipMap');
}

function renameEverywhere(graph: onnx.IGraphProto, from: string, to: string): void {
  for (const node of graph.node ?? []) {
    node.input = (node.input ?? []).map((x) => (x === from ? to : x));
    node.output = (node.output ?? []).map((x) => (x === from ? to : x));
    // Subgraphs may read outer-scope values by name.
    for (const a of node.attribute ?? []) {
      if (a.g) renameEverywhere(a.g, from, to);
      for (const g of a.graphs ?? []) renameEverywhere(g, from, to);
    }
  }
}

/**
 * Removes every ZipMap whose output is a graph output, making its input (the probability tensor) that output
 * under the same name. Mutates and returns the model; `notes` is empty when nothing changed.
 */
export function stripZipMap(model: onnx.ModelProto): ZipMapRewrite {
  const notes: string[] = [];
  const graph = model.graph;
  if (!graph) return { model, notes };
  const nodes = (graph.node ??= []);
  for (const zip of nodes.filter(isZipMap)) {
    const probs = zip.input?.[0];
    const outName = zip.output?.[0];
    if (!probs || !outName) continue;
    const output = graph.output?.find((o) => o.name === outName);
    const consumed = nodes.some((n) => n !== zip && n.input?.includes(outName));
    if (!output || consumed) {
      notes.push(`ZipMap '${zip.name}' feeds other nodes, so it was left in place; export the model without ZipMap (skl2onnx: options={id(model): {'zipmap': False}})`);
      continue;
    }
    const attr = (name: string) => zip.attribute?.find((a) => a.name === name);
    const stringLabels = attr('classlabels_strings')?.strings ?? [];
    const labels: (string | number)[] = stringLabels.length
      ? stringLabels.map((s) => new TextDecoder().decode(s))
      : (attr('classlabels_int64s')?.ints ?? []).map((i) => toNumber(i));

    const probsIsBoundary =
      graph.input?.some((v) => v.name === probs) || graph.initializer?.some((t) => t.name === probs) || graph.output?.some((v) => v.name === probs);
    const zipIndex = nodes.indexOf(zip);
    if (probsIsBoundary) {
      // The probability tensor is visible elsewhere under its own name: keep it and copy it with Identity.
      nodes[zipIndex] = message('NodeProto', { input: [probs], output: [outName], name: `${zip.name || 'ZipMap'}_as_tensor`, opType: 'Identity', domain: '' });
      model.opsetImport ??= [];
      if (!model.opsetImport.some((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx')) {
        model.opsetImport.push(message('OperatorSetIdProto', { domain: '', version: 13 }));
      }
    } else {
      nodes.splice(zipIndex, 1);
      renameEverywhere(graph, probs, outName);
      graph.valueInfo = (graph.valueInfo ?? []).filter((v) => v.name !== probs && v.name !== outName);
    }

    // The new output type: FP32 [batch, classes]. The batch dimension is copied from the first input's.
    const batchDim = graph.input?.find((v) => !graph.initializer?.some((t) => t.name === v.name))?.type?.tensorType?.shape?.dim?.[0];
    const dims: onnx.TensorShapeProto.IDimension[] = [
      // Absent oneof members read as protobufjs defaults (0), so presence is checked on the object itself.
      batchDim?.dimParam ? { dimParam: batchDim.dimParam } : batchDim && Object.hasOwn(batchDim, 'dimValue') ? { dimValue: batchDim.dimValue } : {},
      labels.length ? { dimValue: labels.length } : {},
    ];
    output.type = message('TypeProto', { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims } } });

    const key = CLASS_LABELS_METADATA_PREFIX + outName;
    model.metadataProps = (model.metadataProps ?? []).filter((p) => p.key !== key);
    model.metadataProps.push(message('StringStringEntryProto', { key, value: JSON.stringify(labels) }));
    notes.push(
      `output '${outName}': ZipMap removed; served as an FP32 tensor [N, ${labels.length}] of class probabilities, ` +
        `column i for class label i of ${JSON.stringify(labels)}`,
    );
  }
  return { model, notes };
}
