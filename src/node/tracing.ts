// OpenTelemetry tracing through the official JS SDK, exported over OTLP/HTTP (JSON). Spans are made after the fact
// from the times the request path already measures (InferEvent.stages: decode, the batcher's queue and compute,
// encode) with explicit start and end times, so nothing on the hot path runs inside a span context and tracing off
// costs nothing: this module is only imported when it is on. One trace per request: a SERVER span
// "<METHOD> /v2/models/{model}/infer" with children decode, queue, compute, encode; the client's W3C `traceparent`
// makes it a child of the caller's span. The provider is this module's own (not registered globally), so a library
// user's OpenTelemetry setup is left alone.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { InferEvent } from '../core/index.ts';
import type { TracingOptions } from './tracing-env.ts';

const propagator = new W3CTraceContextPropagator();
const getter = { keys: (c: Record<string, string>) => Object.keys(c), get: (c: Record<string, string>, k: string) => c[k] };

export class InferTracer {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  /** performance.now() → Unix epoch milliseconds. */
  private readonly origin = performance.timeOrigin;

  constructor(readonly options: TracingOptions) {
    const exporter = new OTLPTraceExporter({ url: options.url });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName ?? 'dais' }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.scheduledDelayMs ?? 1000 })],
    });
    this.tracer = this.provider.getTracer('dais');
  }

  onInfer(e: InferEvent): void {
    const st = e.stages;
    if (!st) return;
    const at = (t: number) => this.origin + t;
    const parent = e.traceparent ? propagator.extract(ROOT_CONTEXT, { traceparent: e.traceparent }, getter) : ROOT_CONTEXT;
    const root = this.tracer.startSpan(
      `POST /v2/models/{model}/infer`,
      {
        kind: SpanKind.SERVER,
        startTime: at(st.start),
        attributes: {
          'http.request.method': 'POST',
          'url.path': `/v2/models/${e.model}/infer`,
          'dais.model.name': e.model,
          'dais.model.version': e.response?.model_version ?? e.version,
          ...(e.requestId ? { 'dais.request.id': e.requestId } : {}),
        },
      },
      parent,
    );
    if (e.error) root.setStatus({ code: SpanStatusCode.ERROR, message: `${e.error.code}: ${e.error.message}` });
    const ctx = trace.setSpan(parent, root);
    const child = (name: string, start: number, end: number) => this.tracer.startSpan(name, { startTime: at(start) }, ctx).end(at(end));
    child('decode', st.start, st.decodeEnd);
    if (st.queueMs !== undefined && st.computeMs !== undefined) {
      // The batcher measured both; compute ends when the infer call returned, queue before it.
      const computeStart = Math.max(st.decodeEnd, st.inferEnd - st.computeMs);
      child('queue', st.decodeEnd, Math.max(st.decodeEnd, Math.min(computeStart, st.decodeEnd + st.queueMs)));
      child('compute', computeStart, st.inferEnd);
    } else child('infer', st.decodeEnd, st.inferEnd);
    child('encode', st.inferEnd, st.encodeEnd);
    root.end(at(st.encodeEnd));
  }

  /** Exports what is pending. */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  async close(): Promise<void> {
    await this.provider.shutdown();
  }
}
