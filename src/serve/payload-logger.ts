// Payload logging as KServe's logger does it (pkg/logger): each request and each response sent as a CloudEvent in
// binary content mode to an HTTP sink — type org.kubeflow.serving.inference.request / .response, ce-id the request
// id (x-request-id, which pairs the two), ce-source this server, extension attributes inferenceservicename,
// namespace, component, endpoint — so any sink written for KServe's logger (and `dais serve` itself, see
// src/monitor/cloud-events.ts) takes dais's events. Off the request path: onInfer only queues (the body is encoded
// later), the queue is bounded (a full queue drops the event and counts it), a few sends at a time with a timeout,
// and a sink that is down, slow or answers an error never changes a response.
import { CloudEvent, HTTP } from 'cloudevents';
import { encodeInferRequest, encodeInferResponse, errorBody, type InferEvent } from '../core/index.ts';
import type { Logger } from '../node/logger.ts';

export const REQUEST_EVENT = 'org.kubeflow.serving.inference.request';
export const RESPONSE_EVENT = 'org.kubeflow.serving.inference.response';
export const LOG_MODES = ['all', 'request', 'response'] as const;
export type LogMode = (typeof LOG_MODES)[number];

export interface PayloadLoggerOptions {
  url: string;
  /** Which events are sent (KServe's logger mode; default all). */
  mode?: LogMode;
  /** Share of requests logged, 0–1, decided once per request so its two events go together (default 1). */
  sampleRate?: number;
  /** ce-source (default: the server's URL once known). */
  source?: string;
  /** inferenceservicename (default: the model's name), namespace, component (default 'predictor'), endpoint (default 'default'). */
  inferenceService?: string;
  namespace?: string;
  component?: string;
  endpoint?: string;
  /** Events held while the sink is behind; beyond this they are dropped (default 1000). */
  maxQueue?: number;
  /** Sends in flight at once (default 4) and how long one may take (default 5000 ms). */
  concurrency?: number;
  timeoutMs?: number;
  logger?: Logger;
  random?: () => number;
}

export class PayloadLogger {
  private readonly queue: InferEvent[] = [];
  private inFlight = 0;
  private idle: (() => void)[] = [];
  private closed = false;
  private lastWarning = 0;
  /** Events delivered (2xx), failed (error status, unreachable, timed out), dropped (queue full). */
  readonly counts = { delivered: 0, failed: 0, dropped: 0 };
  source: string;

  constructor(readonly options: PayloadLoggerOptions) {
    if (!/^https?:\/\/[^/]+/.test(options.url)) throw new Error(`--log-url must be an http:// or https:// URL, got '${options.url}'`);
    this.source = options.source ?? 'http://localhost/';
  }

  onInfer(event: InferEvent): void {
    if (this.closed) return;
    const rate = this.options.sampleRate ?? 1;
    if (rate < 1 && (this.options.random ?? Math.random)() >= rate) return;
    if (this.queue.length >= (this.options.maxQueue ?? 1000)) {
      this.counts.dropped += this.wanted(event).length;
      this.warn('payload log queue full: events dropped');
      return;
    }
    // Encoded on a later tick: the request's buffers are kept until then (InferEvent.hold).
    event.hold?.();
    this.queue.push(event);
    if (this.queue.length === 1) setImmediate(() => this.pump());
  }

  private wanted(e: InferEvent): ('request' | 'response')[] {
    const mode = this.options.mode ?? 'all';
    return mode === 'all' ? ['request', 'response'] : [mode];
  }

  /** The CloudEvents of one request (its request, its response or error), as KServe's logger makes them. */
  eventsOf(e: InferEvent): CloudEvent<Uint8Array>[] {
    const id = e.requestId ?? e.request.id ?? '';
    const common = {
      id,
      source: this.source,
      datacontenttype: 'application/json',
      inferenceservicename: this.options.inferenceService ?? e.model,
      namespace: this.options.namespace ?? '',
      component: this.options.component ?? 'predictor',
      endpoint: this.options.endpoint ?? 'default',
    };
    const out: CloudEvent<Uint8Array>[] = [];
    for (const kind of this.wanted(e)) {
      let body: string | Uint8Array;
      if (kind === 'request') body = encodeInferRequest(e.request).body;
      else if (e.response) body = encodeInferResponse(e.response).body;
      else body = JSON.stringify(e.error ? errorBody(e.error) : {});
      const data = typeof body === 'string' ? new TextEncoder().encode(body) : body;
      // ce-time: when the request arrived and when its response was ready (a sink reads the duration from them).
      const t = e.stages ? (kind === 'request' ? e.stages.start : e.stages.encodeEnd) : undefined;
      const time = t === undefined ? {} : { time: new Date(performance.timeOrigin + t).toISOString() };
      out.push(new CloudEvent({ ...common, ...time, type: kind === 'request' ? REQUEST_EVENT : RESPONSE_EVENT, data }, false));
    }
    return out;
  }

  private pump(): void {
    while (this.inFlight < (this.options.concurrency ?? 4) && this.queue.length) {
      const e = this.queue.shift()!;
      let events: CloudEvent<Uint8Array>[];
      try {
        events = this.eventsOf(e);
      } catch (err) {
        this.counts.failed++;
        this.warn(`payload log: could not encode an event: ${(err as Error).message}`);
        continue;
      } finally {
        e.release?.(); // the events hold copies of what they carry
      }
      this.inFlight++;
      // The request's events go in order (request, then response), as KServe's sinks expect.
      void (async () => {
        for (const ce of events) await this.send(ce);
      })().finally(() => {
        this.inFlight--;
        if (this.queue.length) this.pump();
        else if (this.inFlight === 0) for (const w of this.idle.splice(0)) w();
      });
    }
  }

  private async send(ce: CloudEvent<Uint8Array>): Promise<void> {
    const message = HTTP.binary(ce);
    try {
      const res = await fetch(this.options.url, {
        method: 'POST',
        headers: message.headers as Record<string, string>,
        body: message.body as unknown as BodyInit,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) this.counts.delivered++;
      else {
        this.counts.failed++;
        this.warn(`payload log sink answered ${res.status}`);
      }
    } catch (err) {
      this.counts.failed++;
      this.warn(`payload log sink unreachable: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`);
    }
  }

  /** At most one warning a minute: a sink that is down must not flood the server's log. */
  private warn(message: string): void {
    const now = Date.now();
    if (now - this.lastWarning < 60_000) return;
    this.lastWarning = now;
    this.options.logger?.warn({ url: this.options.url, ...this.counts }, message);
  }

  /** Resolves once everything queued was sent (or failed). */
  flush(): Promise<void> {
    if (!this.queue.length && this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /** Sends what is queued (each send bounded by the timeout), then takes no more. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}
