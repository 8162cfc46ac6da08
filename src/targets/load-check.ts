// Builds that ship onnxruntime-node (container, Lambda) open every model in it before writing anything, so a model
// onnxruntime cannot run (an op it does not have, a custom domain, a broken graph) is refused at build time, named,
// instead of building with exit 0 and failing at container start or Lambda INIT.
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { DATATYPE_TO_ORT_TYPE, ORT_TYPE_TO_DATATYPE, type Datatype } from '../core/datatypes.ts';
import { ZEROS_LADDER, zerosRequest } from './samples.ts';
import { UserError } from '../core/errors.ts';

export class ModelLoadCheckError extends UserError {}

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
 * reason. Returns the inputs as onnxruntime reports them, and the dynamic size at which a request of zeros runs.
 */
export async function checkModelLoads(onnx: Uint8Array, what: string, target: string, findZeros = false): Promise<{ inputs: CheckedInput[]; zerosSize: number }> {
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
  // The dynamic size at which zeros run (models that pad or window their input refuse 1); 1 when none does.
  let zerosSize = 1;
  const dynamic = inputs.some((i) => i.shape.some((d) => typeof d !== 'number' || d < 0 || d >= 2 ** 31));
  for (const k of findZeros && dynamic ? ZEROS_LADDER : []) {
    try {
      await session.run(feedsOf(zerosRequest(inputs, k)));
      zerosSize = k;
      break;
    } catch {
      // try a longer one
    }
  }
  await session.release();
  return { inputs, zerosSize };
}

function feedsOf(request: ReturnType<typeof zerosRequest>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const i of request.inputs) {
    const type = DATATYPE_TO_ORT_TYPE[i.datatype as Datatype] as ort.Tensor.Type;
    const data = type === 'string' ? (i.data as string[]) : type === 'bool' ? Uint8Array.from(i.data as boolean[], Number) : type === 'int64' ? new BigInt64Array(i.data.length) : type === 'uint64' ? new BigUint64Array(i.data.length) : new (TYPED[type] ?? Float32Array)(i.data.length);
    feeds[i.name] = new ort.Tensor(type, data as ort.Tensor.DataType, i.shape);
  }
  return feeds;
}

const TYPED: Record<string, new (n: number) => ArrayLike<number>> = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, float16: Uint16Array,
};
