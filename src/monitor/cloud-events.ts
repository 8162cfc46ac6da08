// dais as a sink for KServe's payload logger: POST /v2/monitor/events takes the CloudEvents that KServe's logger
// (or `dais serve --log-url`) sends — binary content mode (ce-* headers, the payload as the body) or structured
// (application/cloudevents+json) — and pairs each request event with its response event by ce-id. A pair becomes
// one InferEvent for the monitor, exactly as if this server had answered it, so drift, the prediction log, feedback
// (by ce-id) and the dashboard watch any runtime that speaks the v2 protocol behind KServe: Triton, MLServer, dais.
import { HTTP } from 'cloudevents';
import { decodeInferRequest, decodeInferResponse, InferenceError, type InferEvent, type InferenceRequest, type InferenceResponse } from '../core/index.ts';

const REQUEST_EVENT = 'org.kubeflow.serving.inference.request';
const RESPONSE_EVENT = 'org.kubeflow.serving.inference.response';

interface Half {
  model?: string;
  request?: InferenceRequest;
  response?: InferenceResponse;
  error?: InferenceError;
  /** ce-time of each event (ms since the epoch), when the sender set it: their difference is the request's duration. */
  requestTime?: number;
  responseTime?: number;
}

function bytesOf(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return new TextEncoder().encode(data);
  return new TextEncoder().encode(JSON.stringify(data ?? null));
}

/** Pairs request and response events by ce-id; unpaired halves older than the newest `cap` ids are forgotten. */
export class CloudEventPairer {
  private readonly halves = new Map<string, Half>();
  constructor(private readonly cap = 10_000) {}

  /**
   * Takes one HTTP-delivered CloudEvent; returns the InferEvent once both halves of its id are in, else undefined.
   * Throws INVALID_REQUEST (naming what is wrong) for a body that is no CloudEvent of KServe's two types.
   */
  accept(headers: Record<string, string | undefined>, body: Uint8Array, defaultVersion: (model: string) => string): InferEvent | undefined {
    let ce;
    try {
      // The SDK parses a structured (application/cloudevents+json) body only from a string.
      ce = HTTP.toEvent({ headers: headers as Record<string, string>, body: new TextDecoder().decode(body) });
    } catch (e) {
      throw new InferenceError('INVALID_CLOUD_EVENT', `not a CloudEvent (binary mode needs ce-id, ce-type, ce-source, ce-specversion headers; structured mode an application/cloudevents+json body): ${(e as Error).message}`);
    }
    const event = Array.isArray(ce) ? ce[0] : ce;
    if (!event || (event.type !== REQUEST_EVENT && event.type !== RESPONSE_EVENT)) {
      throw new InferenceError('INVALID_CLOUD_EVENT', `CloudEvent type must be '${REQUEST_EVENT}' or '${RESPONSE_EVENT}', got '${event?.type}'`);
    }
    const id = event.id;
    let half = this.halves.get(id);
    if (!half) {
      half = {};
      this.halves.set(id, half);
      if (this.halves.size > this.cap) this.halves.delete(this.halves.keys().next().value!);
    }
    const model = (event as unknown as { inferenceservicename?: string }).inferenceservicename;
    if (model) half.model = model;
    const time = event.time ? Date.parse(event.time) : NaN;
    if (Number.isFinite(time)) half[event.type === REQUEST_EVENT ? 'requestTime' : 'responseTime'] = time;
    // Structured mode carries binary data as data_base64, which the SDK turns into a Uint32Array of bytes: decode it here.
    const b64 = (event as unknown as { data_base64?: string }).data_base64;
    const data = typeof b64 === 'string' ? Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)) : bytesOf(event.data);
    try {
      if (event.type === REQUEST_EVENT) half.request = decodeInferRequest(data);
      else {
        const parsed = JSON.parse(new TextDecoder().decode(data)) as { error?: string; code?: string; model_name?: string };
        if (parsed.error !== undefined) half.error = new InferenceError('INTERNAL', String(parsed.error));
        else half.response = decodeInferResponse(data);
        if (parsed.model_name) half.model ??= parsed.model_name;
      }
    } catch (e) {
      this.halves.delete(id);
      const err = e instanceof InferenceError ? e.message : (e as Error).message;
      throw new InferenceError('INVALID_CLOUD_EVENT', `CloudEvent ${id} (${event.type}): its data is not a v2 ${event.type === REQUEST_EVENT ? 'request' : 'response'}: ${err}`);
    }
    if (!half.request || (!half.response && !half.error)) return undefined;
    this.halves.delete(id);
    const name = half.response?.model_name ?? half.model;
    if (!name) throw new InferenceError('INVALID_CLOUD_EVENT', `CloudEvent ${id}: no model named (ce-inferenceservicename, or model_name in the response)`);
    const version = half.response?.model_version ?? defaultVersion(name);
    const durationMs = half.requestTime !== undefined && half.responseTime !== undefined ? Math.max(0, half.responseTime - half.requestTime) : 0;
    return { model: name, version, request: half.request, response: half.response, error: half.error, durationMs, requestId: id };
  }
}
