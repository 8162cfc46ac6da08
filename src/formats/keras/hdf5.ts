// The few HDF5 reads the Keras importer needs, over h5wasm (HDF5's own C library compiled to WebAssembly).
// h5wasm's Node build opens files through the host filesystem, so bytes (a `.keras` member, a buffer handed to
// kerasToOnnx) are written to a private temporary file first.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import h5wasm, { type File as H5File, type Group as H5Group } from 'h5wasm/node';
import { KerasImportError } from './errors.ts';

export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

export function isHdf5(bytes: Uint8Array): boolean {
  // The superblock may sit at 0, 512, 1024, ... (a user block may precede it); Keras files start at 0.
  for (let at = 0; at + 8 <= bytes.length && at <= 1 << 20; at = at === 0 ? 512 : at * 2) {
    if (HDF5_SIGNATURE.every((b, i) => bytes[at + i] === b)) return true;
  }
  return false;
}

export class Hdf5File {
  private constructor(
    private readonly file: H5File,
    private readonly label: string,
    private readonly cleanup: () => Promise<void>,
  ) {}

  /** Opens an HDF5 file from a path, or from bytes (label names it in errors). */
  static async open(source: string | Uint8Array, label: string): Promise<Hdf5File> {
    const module = await h5wasm.ready;
    // HDF5 prints its error stack to stderr by default; this handler puts it in the thrown error instead.
    (module as unknown as { activate_throwing_error_handler?: () => number }).activate_throwing_error_handler?.();
    let path: string;
    let cleanup = async () => {};
    if (typeof source === 'string') {
      path = source;
    } else {
      if (!isHdf5(source)) throw new KerasImportError('CORRUPT_FILE', `${label} is not an HDF5 file (no HDF5 signature)`);
      const dir = await mkdtemp(join(tmpdir(), 'dais-keras-'));
      path = join(dir, 'model.h5');
      await writeFile(path, source);
      cleanup = () => rm(dir, { recursive: true, force: true });
    }
    let file: H5File;
    try {
      file = new h5wasm.File(path, 'r');
    } catch (e) {
      await cleanup();
      throw new KerasImportError('CORRUPT_FILE', `${label} is not a readable HDF5 file${hdf5Cause(e)}`);
    }
    // h5wasm reports a failed open as a file id of 0 on some versions instead of throwing.
    if (!file.file_id || file.file_id < 0n) {
      await cleanup();
      throw new KerasImportError('CORRUPT_FILE', `${label} is not a readable HDF5 file`);
    }
    return new Hdf5File(file, label, cleanup);
  }

  async close(): Promise<void> {
    try {
      this.file.close();
    } finally {
      await this.cleanup();
    }
  }

  has(path: string): boolean {
    if (path === '' || path === '/') return true;
    // Walk down so that a missing parent is a plain `false`, not an HDF5 error.
    let group: H5Group = this.file;
    const parts = path.split('/').filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      if (!group.keys().includes(parts[i])) return false;
      if (i === parts.length - 1) return true;
      const next = group.get(parts[i]);
      if (!(next instanceof h5wasm.Group)) return false;
      group = next;
    }
    return true;
  }

  isGroup(path: string): boolean {
    return this.has(path) && (path === '' || this.file.get(path) instanceof h5wasm.Group);
  }

  /** Names of a group's members, in HDF5's (alphabetical) order. */
  keys(path: string): string[] {
    const g = path === '' ? this.file : this.file.get(path);
    return g instanceof h5wasm.Group ? g.keys() : [];
  }

  private attrValue(path: string, name: string): unknown {
    const obj = path === '' ? this.file : this.file.get(path);
    if (!obj || !('attrs' in obj)) return undefined;
    const attrs = obj.attrs;
    if (name in attrs) return attrs[name].value;
    // Keras splits attributes over HDF5's 64 KiB header limit into name0, name1, ... (legacy saving code).
    if (`${name}0` in attrs) {
      const parts: unknown[] = [];
      for (let i = 0; `${name}${i}` in attrs; i++) parts.push(...toList(attrs[`${name}${i}`].value));
      return parts;
    }
    return undefined;
  }

  /** A string attribute (Keras writes them as fixed-length or variable-length byte strings). */
  stringAttr(path: string, name: string): string | undefined {
    const v = this.attrValue(path, name);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (v instanceof Uint8Array) return new TextDecoder().decode(v);
    if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
    return String(v);
  }

  /** A list-of-strings attribute; an empty list is stored by h5py as an empty float array. */
  stringListAttr(path: string, name: string): string[] | undefined {
    const v = this.attrValue(path, name);
    if (v === undefined || v === null) return undefined;
    return toList(v).map((x) => (x instanceof Uint8Array ? new TextDecoder().decode(x) : String(x)));
  }

  /** A numeric dataset as float32 with its shape. */
  floatDataset(path: string): FloatTensor {
    const ds = this.file.get(path);
    if (!(ds instanceof h5wasm.Dataset)) throw new KerasImportError('MISSING_WEIGHTS', `${this.label}: no dataset at '${path}'`);
    const shape = ds.shape ?? [];
    const v = ds.value;
    let data: Float32Array;
    if (v instanceof Float32Array) data = v;
    else if (v instanceof Float64Array || v instanceof Int32Array || v instanceof Int16Array || v instanceof Int8Array || v instanceof Uint8Array || v instanceof Uint16Array || v instanceof Uint32Array) {
      if (v instanceof Uint16Array && ds.metadata.type === 1) {
        throw new KerasImportError('UNSUPPORTED_FORMAT', `${this.label}: weight '${path}' is float16; convert the model to float32 before saving`);
      }
      data = Float32Array.from(v as ArrayLike<number>);
    } else if (typeof v === 'number') data = Float32Array.of(v);
    else throw new KerasImportError('UNSUPPORTED_FORMAT', `${this.label}: weight '${path}' has dtype ${JSON.stringify(ds.dtype)}, not a float or integer array`);
    // bfloat16 weights (Keras 3 marks them with a dtype attribute) would be misread as integers.
    if (this.stringAttr(path, 'dtype') === 'bfloat16') {
      throw new KerasImportError('UNSUPPORTED_FORMAT', `${this.label}: weight '${path}' is bfloat16; cast the model to float32 before saving`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new KerasImportError('CORRUPT_FILE', `${this.label}: weight '${path}' has ${data.length} values for shape [${shape}]`);
    return { shape, data };
  }
}

function toList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v;
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>);
  return [v];
}

/** The innermost reason in an HDF5 error stack ("truncated file: eof = ..."), as ' (reason)'. */
export function hdf5Cause(e: unknown): string {
  const text = String((e as Error)?.message ?? e);
  const reasons = [...text.matchAll(/#\d+: .* in [\w.]+\(\): (.+)$/gm)].map((m) => m[1].trim());
  const last = reasons.at(-1);
  return last ? ` (${last})` : '';
}

/** Runs reads on an open file, turning HDF5 library errors (a damaged file) into a CORRUPT_FILE refusal. */
export function withHdf5Errors<T>(label: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof KerasImportError) && String((e as Error)?.message ?? e).includes('HDF5-DIAG')) {
      throw new KerasImportError('CORRUPT_FILE', `${label} is damaged: HDF5 cannot read it${hdf5Cause(e)}`);
    }
    throw e;
  }
}
