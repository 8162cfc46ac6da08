// One entry for every model file dais accepts: whatever the format, the rest of dais sees ONNX bytes.
import { open, readFile } from 'node:fs/promises';
import { extname } from 'node:path';

export type ModelFormat = 'onnx' | 'keras-h5' | 'keras-v3';

export interface LoadedModelFile {
  /** The ONNX model (converted when the file was not ONNX). */
  onnx: Uint8Array;
  format: ModelFormat;
  path: string;
  /** Notes about rewrites made while loading (e.g. a ZipMap output replaced by its probability tensor). */
  notes: string[];
}

export { ModelFileError } from './errors.ts';
import { ModelFileError } from './errors.ts';
import { readOnnx, writeOnnx } from './onnx/onnx.ts';
import { mayContainZipMap, stripZipMap } from './onnx/zipmap.ts';
import { inlineExternalData, mayHaveExternalData } from './onnx/external-data.ts';

export function formatOf(path: string): ModelFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.h5' || ext === '.hdf5') return 'keras-h5';
  if (ext === '.keras') return 'keras-v3';
  return 'onnx';
}

/** Reads a model file and returns ONNX bytes ready for a runtime. */
export async function loadModelFile(path: string): Promise<LoadedModelFile> {
  const format = formatOf(path);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ModelFileError(err.code === 'ENOENT' ? `model file not found: ${path}` : `cannot read model file ${path}: ${err.message}`);
  }
  if (format !== 'onnx') {
    // Loaded only for Keras files, so ONNX users never pay for h5wasm.
    const { kerasToOnnx } = await import('./keras/index.ts');
    const converted = await kerasToOnnx(bytes, { fileName: path });
    return { onnx: converted.onnx, format, path, notes: converted.notes };
  }
  const zipMap = mayContainZipMap(bytes);
  const external = mayHaveExternalData(bytes);
  if (zipMap || external) {
    // Only models that mention ZipMap or an external data location are parsed here; every other model goes to the
    // runtime byte for byte.
    const parsed = readOnnx(bytes, path);
    const inlined = external ? await inlineExternalData(parsed, path) : [];
    const { model, notes } = zipMap ? stripZipMap(parsed) : { model: parsed, notes: [] as string[] };
    if (inlined.length) notes.push(`external data read from ${inlined.join(', ')} into the model`);
    if (notes.length) return { onnx: writeOnnx(model), format, path, notes };
  }
  return { onnx: bytes, format, path, notes: [] };
}

/**
 * What a runtime should load for a model file: the file's path when the runtime can read the file as it is (an
 * ONNX file with no ZipMap to rewrite), else converted ONNX bytes. With a path no copy of the weights is ever
 * held in JavaScript; the file is only scanned, a chunk at a time, for a ZipMap operator.
 */
export async function modelSourceOf(path: string): Promise<{ source: Uint8Array | string; format: ModelFormat; notes: string[] }> {
  if (formatOf(path) === 'onnx' && !(await fileMentions(path, 'ZipMap'))) return { source: path, format: 'onnx', notes: [] };
  const file = await loadModelFile(path);
  return { source: file.onnx, format: file.format, notes: file.notes };
}

/** Whether the file's bytes contain `text`, read in 1 MiB chunks (overlapping, so a match across two is found). */
async function fileMentions(path: string, text: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ModelFileError(err.code === 'ENOENT' ? `model file not found: ${path}` : `cannot read model file ${path}: ${err.message}`);
  }
  try {
    const chunk = Buffer.alloc(1 << 20);
    const overlap = text.length - 1;
    let kept = 0;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, kept, chunk.length - kept);
      if (bytesRead === 0) return false;
      const filled = kept + bytesRead;
      if (chunk.subarray(0, filled).includes(text)) return true;
      kept = Math.min(overlap, filled);
      chunk.copy(chunk, 0, filled - kept, filled);
    }
  } finally {
    await handle.close();
  }
}
