// Server side: an infer response as a v2 body, JSON or a JSON header followed by binary outputs.
import { slabArray } from '../slab.ts';
import type { InferenceRequest, InferenceResponse } from '../protocol.ts';
import { sameDims, type Tensor } from '../tensor.ts';
import { FLOAT32_JSON_MAX_BYTES, writeFloat32Array } from './json-float.ts';
import { encodeTensors, fillBody, headerJson, rawJsonData, toBinary, toJsonData, type EncodedBody } from './tensor-write.ts';
import { utf8Decoder, utf8Encoder } from './wire.ts';

/** Which outputs go as binary: per-output `binary_data` wins over request-level `binary_data_output`. */
export function binaryOutputNames(request: Pick<InferenceRequest, 'parameters' | 'outputs'>): (name: string) => boolean {
  const all = request.parameters?.binary_data_output === true;
  // The common requests (no per-output choice) share one answer each instead of a Map and a closure apiece.
  if (!request.outputs?.some((o) => typeof o.parameters?.binary_data === 'boolean')) return all ? EVERY_OUTPUT : NO_OUTPUT;
  const per = new Map<string, boolean>();
  for (const o of request.outputs ?? []) {
    const b = o.parameters?.binary_data;
    if (typeof b === 'boolean') per.set(o.name, b);
  }
  return (name) => per.get(name) ?? all;
}

const EVERY_OUTPUT = () => true;
const NO_OUTPUT = () => false;

export interface EncodeResponseOptions {
  /** A JSON answer may come as UTF-8 bytes (the Node server sends them as they are); else it is a string. */
  bytes?: boolean;
}

/**
 * A response as a v2 body. FP32 data in JSON is written as the shortest decimals that read back as the same float32
 * values (json-float.ts); outputs asked for as binary follow the JSON header.
 */
export function encodeInferResponse(response: InferenceResponse, isBinary: (name: string) => boolean = () => false, options: EncodeResponseOptions = {}): EncodedBody {
  if (!response.outputs.some((t) => isBinary(t.name))) {
    const bytes = jsonBody(response);
    return { body: options.bytes ? bytes : utf8Decoder.decode(bytes), contentType: 'application/json' };
  }
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
let jsonScratch = new Uint8Array(4096);

/** `text` as UTF-8 at `pos` of the scratch array (grown to fit); returns the position after it. */
function putText(text: string, pos: number): number {
  ensureScratch(pos + text.length * 3);
  return pos + utf8Encoder.encodeInto(text, jsonScratch.subarray(pos)).written;
}

function ensureScratch(bytes: number): void {
  if (jsonScratch.length >= bytes) return;
  const grown = new Uint8Array(Math.max(bytes, jsonScratch.length * 2));
  grown.set(jsonScratch);
  jsonScratch = grown;
}

/**
 * A response with every output in JSON, as UTF-8: the same members, in the same order, as JSON.stringify of the
 * protocol's objects, with FP32 data written by json-float.ts into a reused scratch array, then copied once into
 * a body of its exact size.
 */
function jsonBody(response: InferenceResponse): Uint8Array {
  let head = answerHead(response);
  if (response.parameters) head += ',"parameters":' + JSON.stringify(response.parameters);
  let pos = putText(head + ',"outputs":[', 0);
  const outputs = response.outputs;
  for (let i = 0; i < outputs.length; i++) {
    const t = outputs[i];
    let item = outputHead(t, i);
    if (t.parameters) item += ',"parameters":' + JSON.stringify(t.parameters);
    pos = putText(item + ',"data":', pos);
    if (t.datatype === 'FP32' && t.data instanceof Float32Array) {
      ensureScratch(pos + 2 + t.data.length * (FLOAT32_JSON_MAX_BYTES + 1));
      pos = writeFloat32Array(t.data, jsonScratch, pos);
    } else pos = putText(dataJson(t), pos);
    pos = putText('}', pos);
  }
  pos = putText(']}', pos);
  const body = slabArray(Uint8Array, pos);
  body.set(jsonScratch.subarray(0, pos));
  // A scratch array grown for an unusually big answer is not kept for the life of the process.
  if (jsonScratch.length > KEPT_SCRATCH_BYTES) jsonScratch = new Uint8Array(4096);
  return body;
}

/** The biggest scratch array kept between answers (BERT-mini's 32,768 floats need ~750 KB). */
const KEPT_SCRATCH_BYTES = 4 * 1024 * 1024;

/** JSON text of a tensor's data other than FP32. */
function dataJson(t: Tensor): string {
  return rawJsonData(t) ?? JSON.stringify(toJsonData(t));
}

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
  const chunks: Uint8Array[] = [];
  for (const t of outputs) chunks.push(toBinary(t));
  // Answers of one model mostly repeat the last header (same version, id, outputs and shapes): reused, not rebuilt.
  const last = lastHeader;
  if (last && sameHeader(last, response, chunks)) return { json: last.json, chunks };
  const json = headerText(response, chunks);
  lastHeader = { response: { model_name: response.model_name, model_version: response.model_version, id: response.id }, outputs: outputs.map((t, i) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape], size: chunks[i].length })), json };
  return { json, chunks };
}

interface HeaderMemo {
  response: Pick<InferenceResponse, 'model_name' | 'model_version' | 'id'>;
  outputs: { name: string; datatype: string; shape: number[]; size: number }[];
  json: string;
}

let lastHeader: HeaderMemo | undefined;

function sameHeader(last: HeaderMemo, response: InferenceResponse, chunks: readonly Uint8Array[]): boolean {
  const r = last.response;
  if (r.model_name !== response.model_name || r.model_version !== response.model_version || r.id !== response.id) return false;
  const outputs = response.outputs;
  if (last.outputs.length !== outputs.length) return false;
  for (let i = 0; i < outputs.length; i++) {
    const a = last.outputs[i];
    const t = outputs[i];
    if (a.name !== t.name || a.datatype !== t.datatype || a.size !== chunks[i].length || !sameDims(a.shape, t.shape)) return false;
  }
  return true;
}

/** The binary answer's JSON header text (see binaryHeader). */
function headerText(response: InferenceResponse, chunks: readonly Uint8Array[]): string {
  const outputs = response.outputs;
  let json = answerHead(response) + ',"outputs":[';
  for (let i = 0; i < outputs.length; i++) json += outputHead(outputs[i], i) + ',"parameters":{"binary_data_size":' + chunks[i].length + '}}';
  return json + ']}';
}

/** An answer's JSON up to its parameters: `{"model_name":…`, then model_version and id where present. */
function answerHead(response: InferenceResponse): string {
  let json = '{"model_name":' + JSON.stringify(response.model_name);
  if (response.model_version !== undefined) json += ',"model_version":' + JSON.stringify(response.model_version);
  if (response.id !== undefined) json += ',"id":' + JSON.stringify(response.id);
  return json;
}

/** Output `i`'s JSON up to its parameters: `{"name":…,"datatype":…,"shape":[…]`, after a comma unless first. */
function outputHead(t: Tensor, i: number): string {
  return (i === 0 ? '{"name":' : ',{"name":') + JSON.stringify(t.name) + ',"datatype":' + JSON.stringify(t.datatype) + ',"shape":' + JSON.stringify(t.shape);
}
