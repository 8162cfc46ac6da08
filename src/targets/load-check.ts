// Builds that ship onnxruntime-node (container, Lambda) open every model in it before writing anything, so a model
// onnxruntime cannot run (an op it does not have, a custom domain, a broken graph) is refused at build time, named,
// instead of building with exit 0 and failing at container start or Lambda INIT.
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';

export class ModelLoadCheckError extends Error {}

function onnxruntimeVersion(): string {
  return (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
}

/** Opens the model in onnxruntime-node and closes it; throws ModelLoadCheckError naming the model and the runtime's reason. */
export async function checkModelLoads(onnx: Uint8Array, what: string, target: string): Promise<void> {
  let session;
  try {
    // Errors only: the build is not the place for onnxruntime's graph-cleaning warnings.
    session = await ort.InferenceSession.create(onnx, { logSeverityLevel: 3 });
  } catch (e) {
    const reason = (e as Error).message;
    throw new ModelLoadCheckError(`${what} does not load in onnxruntime-node ${onnxruntimeVersion()}, the runtime the ${target} ships, so it would fail at start; nothing was built: ${reason}`);
  }
  await session.release();
}
