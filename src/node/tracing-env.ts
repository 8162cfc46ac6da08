// Whether the standard OTEL_* variables turn tracing on, and where to: a module of its own so that checking them
// never loads the OpenTelemetry SDK (the Lambda handler and `dais serve` import src/serve/tracing.ts only when on).
export interface TracingOptions {
  /** OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces. */
  url: string;
  serviceName?: string;
  /** How long spans may wait to be batched (default 1000 ms; OpenTelemetry's own default is 5000). */
  scheduledDelayMs?: number;
}

/** Tracing settings from the standard OTEL_* variables; undefined when they do not turn it on. */
export function tracingFromEnv(env: Record<string, string | undefined>): TracingOptions | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const exporter = env.OTEL_TRACES_EXPORTER;
  if (env.OTEL_SDK_DISABLED === 'true' || exporter === 'none') return undefined;
  if (!traces && !base && exporter !== 'otlp') return undefined;
  // The spec: a signal-specific endpoint is used as it is; the base endpoint gets /v1/traces appended.
  const url = traces ?? (base ? `${base.replace(/\/$/, '')}/v1/traces` : 'http://localhost:4318/v1/traces');
  return { url, serviceName: env.OTEL_SERVICE_NAME };
}

