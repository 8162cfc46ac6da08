// Builds that ship onnxruntime-node (container, Lambda) open every model in it before writing anything, so a model
// onnxruntime cannot run (an op it does not have, a custom domain, a broken graph) is refused at build time, named,
// instead of building with exit 0 and failing at container start or Lambda INIT.
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { ORT_TYPE_TO_DATATYPE } from '../core/datatypes.ts';

export class ModelLoadCheckError extends Error {}

function onnxruntimeVersion(): string {
  return (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
}

export interface CheckedInput {
  name: string;
  datatype: string;
  /** onnxruntime's dims: a number, or a symbolic/unnamed dimension as a string. */
  shape: (number | string)[];
}

/**
 * Opens the model in onnxruntime-node and closes it; throws ModelLoadCheckError naming the model and the runtime's
 * reason. Returns the inputs as onnxruntime reports them.
 */
export async function checkModelLoads(onnx: Uint8Array, what: string, target: string): Promise<CheckedInput[]> {
  let session;
  try {
    // Errors only: the build is not the place for onnxruntime's graph-cleaning warnings.
    session = await ort.InferenceSession.create(onnx, { logSeverityLevel: 3 });
  } catch (e) {
    const reason = (e as Error).message;
    throw new ModelLoadCheckError(`${what} does not load in onnxruntime-node ${onnxruntimeVersion()}, the runtime the ${target} ships, so it would fail at start; nothing was built: ${reason}`);
  }
  const inputs = session.inputMetadata.map((m) => ({
    name: m.name,
    datatype: m.isTensor ? (ORT_TYPE_TO_DATATYPE[m.type] ?? m.type) : 'unknown',
    shape: m.isTensor ? [...m.shape] : [],
  }));
  await session.release();
  return inputs;
}
