// Conversions between dais tensors and onnxruntime's JS tensors, shared by the -node and -web backends
// (both take their Tensor class from onnxruntime-common, so one converter serves both).
import type { Tensor as OrtTensor, InferenceSession } from 'onnxruntime-common';
import type { Session } from './backend.ts';
import {
  DATATYPE_TO_ORT_TYPE,
  InferenceError,
  ORT_TYPE_TO_DATATYPE,
  type Tensor,
  type TensorData,
  type TensorMetadata,
} from '../core/index.ts';

/** What the converters read of a tensor: onnxruntime's own, or the plain copy that crosses to a worker thread. */
export interface OrtTensorLike {
  readonly type: OrtTensor.Type;
  readonly data: OrtTensor.DataType | readonly string[];
  readonly dims: readonly number[];
}
type OrtTensorCtor<T> = new (type: OrtTensor.Type, data: OrtTensor.DataType | readonly string[], dims?: readonly number[]) => T;

// Fatal: onnxruntime's JS API carries ONNX strings as JS strings, so bytes that are not UTF-8 cannot reach the model
// unchanged; they are refused rather than silently replaced with U+FFFD.
const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

function stringsOf(t: Tensor): string[] {
  return (t.data as Uint8Array[]).map((b, i) => {
    try {
      return decoder.decode(b);
    } catch {
      throw new InferenceError('INVALID_DATA', `input '${t.name}': BYTES element ${i} is not valid UTF-8, and onnxruntime takes ONNX strings as text; send UTF-8, or encode the bytes (base64) for this model`);
    }
  });
}

export function toOrtTensor<T>(Ctor: OrtTensorCtor<T>, t: Tensor): T {
  const type = DATATYPE_TO_ORT_TYPE[t.datatype] as OrtTensor.Type;
  const data = t.datatype === 'BYTES' ? stringsOf(t) : (t.data as OrtTensor.DataType);
  return new Ctor(type, data, t.shape);
}

export function fromOrtTensor(name: string, o: OrtTensorLike): Tensor {
  const datatype = ORT_TYPE_TO_DATATYPE[o.type];
  if (!datatype) throw new InferenceError('UNSUPPORTED_DATATYPE', `output '${name}' has type ${o.type}, which the v2 protocol cannot carry`);
  let data: TensorData;
  if (datatype === 'BYTES') data = (o.data as string[]).map((s) => encoder.encode(s));
  else if (datatype === 'FP16' && !(o.data instanceof Uint16Array)) {
    // A runtime with Float16Array hands numbers back; the protocol keeps FP16 as raw bits.
    const f = o.data as unknown as ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; length: number };
    data = new Uint16Array(f.buffer, f.byteOffset, f.length);
  } else data = o.data as TensorData;
  return { name, datatype, shape: Array.from(o.dims), data };
}

/** Session metadata → v2 tensor metadata; symbolic dimensions become -1 and keep their names. */
export function tensorMetadataOf(meta: readonly InferenceSession.ValueMetadata[], kind: 'input' | 'output'): TensorMetadata[] {
  return meta.map((m) => {
    if (!m.isTensor) {
      throw new InferenceError(
        'UNSUPPORTED',
        `${kind} '${m.name}' is not a tensor (a sequence or map, e.g. scikit-learn's ZipMap); onnxruntime's JS API cannot return it. ` +
          `Export the classifier without ZipMap (skl2onnx: options={id(model): {'zipmap': False}}) or let dais rewrite it (it does for ZipMap outputs).`,
      );
    }
    const datatype = ORT_TYPE_TO_DATATYPE[m.type];
    if (!datatype) throw new InferenceError('UNSUPPORTED_DATATYPE', `${kind} '${m.name}' has type ${m.type}, which the v2 protocol cannot carry`);
    // onnxruntime-web reports an unnamed dynamic dimension as 4294967295 (-1 read as uint32): dynamic, as -1 is.
    const shape = m.shape.map((d) => (typeof d === 'number' && d >= 0 && d < 0xffffffff ? d : -1));
    const t: TensorMetadata = { name: m.name, datatype, shape };
    if (m.shape.some((d) => typeof d === 'string')) t.dimNames = m.shape.map((d) => (typeof d === 'string' ? d : null));
    return t;
  });
}

// onnxruntime-web sometimes throws plain strings or numbers (wasm aborts) instead of Errors.
function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * What sessionOf needs of an onnxruntime session: onnxruntime-common's InferenceSession (either package), or
 * onnxruntime-node's own binding object, whose run returns its result rather than a promise of it.
 */
export interface OrtSessionLike {
  readonly inputMetadata: readonly InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly InferenceSession.ValueMetadata[];
  run(feeds: Record<string, OrtTensor>, outputNames: string[]): Promise<InferenceSession.ReturnType> | InferenceSession.ReturnType;
  release(): Promise<void>;
  /** Its run returns the result itself, never a promise (onnxruntime-node's binding object). */
  readonly synchronous?: boolean;
}

/**
 * A dais Session over an onnxruntime session (OrtSessionLike). `runtime` names it in error messages. A model with a
 * non-tensor input or output is refused and released.
 */
export async function sessionOf(
  Ctor: OrtTensorCtor<OrtTensor>,
  open: () => Promise<OrtSessionLike>,
  runtime: string,
): Promise<Session> {
  let session: OrtSessionLike;
  try {
    session = await open();
  } catch (e) {
    throw new InferenceError('UNSUPPORTED', `${runtime} could not load the model: ${messageOf(e)}`, { cause: e });
  }
  let inputs, outputs;
  try {
    inputs = tensorMetadataOf(session.inputMetadata, 'input');
    outputs = tensorMetadataOf(session.outputMetadata, 'output');
  } catch (e) {
    await session.release();
    throw e;
  }
  const failed = (e: unknown) => new InferenceError('INFERENCE_FAILED', `${runtime} failed to run the model: ${messageOf(e)}`, { cause: e });
  const outputsOf = (result: InferenceSession.ReturnType, outputNames: readonly string[]) => outputNames.map((n) => fromOrtTensor(n, result[n] as OrtTensor));
  /** Converts the feeds and starts the run: its result, or (a session of onnxruntime-common's) a promise of it. */
  const start = (feeds: readonly Tensor[], outputNames: readonly string[]) => {
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const t of feeds) ortFeeds[t.name] = toOrtTensor(Ctor, t);
    try {
      return session.run(ortFeeds, outputNames as string[]);
    } catch (e) {
      throw failed(e);
    }
  };
  return {
    inputs,
    outputs,
    // Not an async function: a session that computes within the call (onnxruntime-node's own) is answered in the
    // same step, without a second promise and a turn of the microtask queue in between. Errors still reject.
    run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
      let pending: Promise<InferenceSession.ReturnType> | InferenceSession.ReturnType;
      try {
        pending = start(feeds, outputNames);
        if (!(pending instanceof Promise)) return Promise.resolve(outputsOf(pending, outputNames));
      } catch (e) {
        return Promise.reject(e);
      }
      return pending.then(
        (result) => outputsOf(result, outputNames),
        (e) => {
          throw failed(e);
        },
      );
    },
    runNow: session.synchronous
      ? (feeds: readonly Tensor[], outputNames: readonly string[]) => {
          const result = start(feeds, outputNames);
          if (result instanceof Promise) throw new Error(`${runtime}: a synchronous session's run returned a promise`);
          return outputsOf(result, outputNames);
        }
      : undefined,
    async dispose() {
      await session.release();
    },
  };
}
