// Server side: an infer response as a v2 body, JSON or a JSON header followed by binary outputs.
import { slabArray } from '../slab.ts';
import type { InferenceRequest, InferenceResponse } from '../protocol.ts';
import { encodeTensors, fillBody, headerJson, toBinary, type EncodedBody } from './tensor-write.ts';
import { utf8Encoder } from './wire.ts';

/** Which outputs go as binary: per-output `binary_data` wins over request-level `binary_data_output`. */
export function binaryOutputNames(request: Pick<InferenceRequest, 'parameters' | 'outputs'>): (name: string) => boolean {
  const all = request.parameters?.binary_data_output === true;
  const per = new Map<string, boolean>();
  for (const o of request.outputs ?? []) {
    const b = o.parameters?.binary_data;
    if (typeof b === 'boolean') per.set(o.name, b);
  }
  return (name) => per.get(name) ?? all;
}

export function encodeInferResponse(response: InferenceResponse, isBinary: (name: string) => boolean = () => false): EncodedBody {
  const plain = binaryHeader(response, isBinary);
  let json: string;
  let chunks: Uint8Array[];
  if (plain) ({ json, chunks } = plain);
  else {
    const outputs = encodeTensors(response.outputs, isBinary, (t) => ({ name: t.name, datatype: t.datatype, shape: t.shape }));
    const head: Record<string, unknown> = { model_name: response.model_name };
    if (response.model_version !== undefined) head.model_version = response.model_version;
    if (response.id !== undefined) head.id = response.id;
    if (response.parameters) head.parameters = response.parameters;
    head.outputs = outputs.items;
    json = headerJson(head, 'outputs', outputs);
    chunks = outputs.chunks;
  }
  if (chunks.length === 0) return { body: json, contentType: 'application/json' };
  // The header is encoded into a reused scratch array, then copied with the tensors into one slab-carved body: a
  // TextEncoder.encode result and a new body array would be two ArrayBuffers per response.
  if (headerScratch.length < json.length * 3) headerScratch = new Uint8Array(Math.max(json.length * 3, 1024));
  const headerLength = utf8Encoder.encodeInto(json, headerScratch).written;
  let total = headerLength;
  for (const c of chunks) total += c.length;
  const body = fillBody(slabArray(Uint8Array, total), headerScratch, headerLength, chunks);
  return { body, contentType: 'application/octet-stream', headerLength };
}

let headerScratch = new Uint8Array(0);

/**
 * The common binary answer's JSON header written directly — every output binary, none with parameters of its own,
 * no response parameters — the same text JSON.stringify gives for the general path's objects (tested), without
 * building them: on a small model that object tree and its stringify were a tenth of the request's own work.
 * Undefined for anything else.
 */
function binaryHeader(response: InferenceResponse, isBinary: (name: string) => boolean): { json: string; chunks: Uint8Array[] } | undefined {
  if (response.parameters) return undefined;
  const outputs = response.outputs;
  for (const t of outputs) if (t.parameters || !isBinary(t.name)) return undefined;
  let json = '{"model_name":' + JSON.stringify(response.model_name);
  if (response.model_version !== undefined) json += ',"model_version":' + JSON.stringify(response.model_version);
  if (response.id !== undefined) json += ',"id":' + JSON.stringify(response.id);
  json += ',"outputs":[';
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < outputs.length; i++) {
    const t = outputs[i];
    const bytes = toBinary(t);
    chunks.push(bytes);
    json += (i === 0 ? '{"name":' : ',{"name":') + JSON.stringify(t.name) + ',"datatype":' + JSON.stringify(t.datatype) + ',"shape":' + JSON.stringify(t.shape) + ',"parameters":{"binary_data_size":' + bytes.length + '}}';
  }
  return { json: json + ']}', chunks };
}
