// Client side (tests, bench, the browser SDK): the same format in the other direction — a request encoded, a
// response decoded.
import type { Datatype, TensorData } from '../datatypes.ts';
import { parseJsonExact } from '../json-exact.ts';
import type { InferenceRequest, InferenceResponse } from '../protocol.ts';
import type { Parameters, Tensor } from '../tensor.ts';
import { fromBinary, fromJsonData } from './tensor-read.ts';
import { encodeTensors, fillBody, headerJson, type EncodedBody } from './tensor-write.ts';
import { utf8Decoder, utf8Encoder } from './wire.ts';

/** Encodes a request; inputs named in `binaryInputs` travel as binary tensors. */
export function encodeInferRequest(request: InferenceRequest, binaryInputs: (name: string) => boolean = () => false): EncodedBody {
  const inputs = encodeTensors(request.inputs, binaryInputs, (t) => ({ name: t.name, shape: t.shape, datatype: t.datatype }));
  const head: Record<string, unknown> = {};
  if (request.id !== undefined) head.id = request.id;
  if (request.parameters) head.parameters = request.parameters;
  head.inputs = inputs.items;
  if (request.outputs) head.outputs = request.outputs;
  const json = headerJson(head, 'inputs', inputs);
  const { chunks } = inputs;
  if (chunks.length === 0) return { body: json, contentType: 'application/json' };
  const headerBytes = utf8Encoder.encode(json);
  const body = new Uint8Array(headerBytes.length + chunks.reduce((s, c) => s + c.length, 0));
  return { body: fillBody(body, headerBytes, headerBytes.length, chunks), contentType: 'application/octet-stream', headerLength: headerBytes.length };
}

/** Decodes an infer response body (JSON, or JSON header + binary outputs). */
export function decodeInferResponse(body: Uint8Array, headerLength?: number): InferenceResponse {
  const json = headerLength === undefined ? body : body.subarray(0, headerLength);
  const parsed = parseJsonExact(utf8Decoder.decode(json)) as Record<string, unknown> & { outputs: Record<string, unknown>[] };
  const binary = headerLength === undefined ? undefined : body.subarray(headerLength);
  let offset = 0;
  const outputs = parsed.outputs.map((o) => {
    const datatype = o.datatype as Datatype;
    const shape = o.shape as number[];
    const params = o.parameters as Parameters | undefined;
    const size = params?.binary_data_size;
    let data: TensorData;
    if (typeof size === 'number' && binary) {
      data = fromBinary(binary.subarray(offset, offset + size), datatype, shape, `output '${o.name}'`);
      offset += size;
    } else data = fromJsonData(o.data, datatype, shape, `output '${o.name}'`);
    return { name: o.name as string, datatype, shape, data } satisfies Tensor;
  });
  return { ...(parsed as object), outputs } as InferenceResponse;
}
