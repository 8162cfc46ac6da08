// The convenience form: POST /v2/models/{m}/infer with Content-Type image/* or audio/* and the file as the body.
// It becomes the standard request a client could have sent itself (the file as BYTES under the model input's own
// name, the main output asked for with Triton's classification extension), so every later step is the protocol's.
import { InferenceError } from '../errors.ts';
import type { InferenceRequest, ModelMetadata } from '../protocol.ts';

/** What a model with declared processing says about itself in its metadata's `parameters.processing`. */
export interface ProcessingDescription {
  input?: { name: string; kind: 'image' | 'audio' | 'text' };
  classification?: { output: string; top_k: number };
  postprocess?: { output: string; pooling?: 'mean' | 'cls'; normalize?: boolean; softmax: boolean; top_k?: number };
  labels?: number;
}

export function processingOf(metadata: ModelMetadata): ProcessingDescription | undefined {
  return metadata.parameters?.processing as ProcessingDescription | undefined;
}

/** 'image' / 'audio' for a file Content-Type, else undefined (the v2 JSON / binary forms). */
export function fileKindOf(contentType: string | undefined): 'image' | 'audio' | undefined {
  // The protocol's own two, as clients send them, without splitting and lower-casing a copy per request.
  if (contentType === 'application/json' || contentType === 'application/octet-stream') return undefined;
  const base = contentType?.split(';')[0].trim().toLowerCase();
  if (!base) return undefined;
  if (base.startsWith('image/')) return 'image';
  if (base.startsWith('audio/')) return 'audio';
  return undefined;
}

export function fileRequest(metadata: ModelMetadata, kind: 'image' | 'audio' | 'text', body: Uint8Array): InferenceRequest {
  const p = processingOf(metadata);
  if (p?.input?.kind !== kind) {
    throw new InferenceError(
      'UNSUPPORTED_MEDIA_TYPE',
      `model '${metadata.name}' declares no ${kind} preprocessing (preprocess.${kind} in its config.yaml), so it cannot take ${kind === 'image' ? 'an image' : kind === 'audio' ? 'an audio file' : 'text'}${p?.input ? `; it takes ${p.input.kind}` : ''}`,
    );
  }
  const request: InferenceRequest = { inputs: [{ name: p.input.name, datatype: 'BYTES', shape: [1], data: [body] }] };
  if (p.classification) request.outputs = [{ name: p.classification.output, parameters: { classification: p.classification.top_k } }];
  return request;
}
