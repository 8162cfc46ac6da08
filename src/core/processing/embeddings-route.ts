// OpenAI-compatible POST /v1/embeddings for models that declare text preprocessing and pooling: {model, input}
// → {object: "list", data: [{object: "embedding", index, embedding}], model, usage}. Runtime-agnostic, so the
// server and a Lambda mount the same route.
import { InferenceError } from '../errors.ts';
import type { ExtraRoute, ModelRegistry, V2Response } from '../v2-app.ts';
import { processingOf } from './file-request.ts';
import { readJsonBody } from '../router.ts';

const textEncoder = new TextEncoder();

function openAiError(e: InferenceError): V2Response {
  // OpenAI's error shape, with dais' code beside it so the same table applies.
  return {
    status: e.status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ error: { message: e.message, type: e.status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: e.code } }),
  };
}

export function embeddingsRoute(registry: ModelRegistry): ExtraRoute {
  return {
    method: 'POST',
    path: '/v1/embeddings[/]',
    async handle(request) {
      try {
        const body = readJsonBody(request, { notObject: 'request body must be a JSON object {model, input}' });
        if (typeof body.model !== 'string' || !body.model) throw new InferenceError('INVALID_REQUEST', '"model" must be the name of a served model');
        const input = body.input;
        const texts = typeof input === 'string' ? [input] : Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string') ? (input as string[]) : undefined;
        if (!texts) throw new InferenceError('INVALID_REQUEST', '"input" must be a string or a non-empty list of strings (token arrays are not supported)');
        if (body.encoding_format !== undefined && body.encoding_format !== 'float' && body.encoding_format !== 'base64') {
          throw new InferenceError('INVALID_REQUEST', `"encoding_format" must be "float" or "base64", got ${JSON.stringify(body.encoding_format)}`);
        }
        if (body.dimensions !== undefined) throw new InferenceError('INVALID_REQUEST', '"dimensions" is not supported: the model gives vectors of one size');
        const endpoint = registry.resolve(body.model);
        if (!endpoint.isReady()) throw new InferenceError('MODEL_NOT_READY', `model '${body.model}' is not ready`);
        const meta = endpoint.requestMetadata?.() ?? endpoint.metadata();
        const p = processingOf(meta);
        if (p?.input?.kind !== 'text' || !p.postprocess?.pooling) {
          throw new InferenceError('INVALID_REQUEST', `model '${body.model}' is not an embedding model: it needs preprocess.text and postprocess.pooling in its config.yaml`);
        }
        const output = p.postprocess.output;
        const response = await endpoint.infer(
          { inputs: [{ name: p.input.name, datatype: 'BYTES', shape: [texts.length], data: texts.map((t) => textEncoder.encode(t)) }], outputs: [{ name: output }] },
          { requestId: request.headers['x-request-id'] },
        );
        const t = response.outputs.find((o) => o.name === output)!;
        const dim = t.shape[t.shape.length - 1];
        const values = t.data as Float32Array;
        const base64 = body.encoding_format === 'base64';
        const data = texts.map((_, i) => {
          const row = values.subarray(i * dim, (i + 1) * dim);
          return { object: 'embedding', index: i, embedding: base64 ? toBase64(new Uint8Array(Float32Array.from(row).buffer)) : Array.from(row) };
        });
        const tokens = Number(response.parameters?.prompt_tokens ?? 0);
        return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }) };
      } catch (e) {
        return openAiError(e instanceof InferenceError ? e : new InferenceError('INTERNAL', 'internal server error', { cause: e }));
      }
    },
  };
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}
