// `dais serve`'s tracing and payload-logging flags, kept here so the serve command only spreads them in. Both are
// off by default; their modules (the OpenTelemetry SDK, the CloudEvents SDK) are imported only when turned on.
import type { InferObserver } from './index.ts';
import type { Logger } from '../node/logger.ts';
import { UserError } from '../core/errors.ts';
import { flags } from '../node/flags.ts';

export const OBSERVE_FLAGS = flags({ string: ['otel-endpoint', 'log-url', 'log-mode', 'log-url-sample-rate'], boolean: ['otel'] });

export const OBSERVE_HELP = ` Tracing and payload logging (off by default):
  --otel                      OpenTelemetry traces over OTLP/HTTP: a span per infer request with child spans
                              decode, queue, compute, encode; honours the client's traceparent. Endpoint from
                              OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT (default
                              http://localhost:4318); OTEL_TRACES_EXPORTER=otlp alone also turns it on;
                              service name from OTEL_SERVICE_NAME (default dais)
  --otel-endpoint <url>       the same, sending to this OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces)
  --log-url <url>             send each request and response as a CloudEvent, as KServe's logger does
                              (org.kubeflow.serving.inference.request/.response, ce-id = x-request-id), to this
                              HTTP sink; never delays or fails a request (bounded queue, dropped when full)
  --log-mode <m>              all, request or response (default: all)
  --log-url-sample-rate <r>   share of requests sent to --log-url, 0–1 (default: 1)
`;

export class ObserveFlagError extends UserError {}

type Values = { [K in keyof typeof OBSERVE_FLAGS]?: (typeof OBSERVE_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

export interface Observers {
  observers: InferObserver[];
  /** Tells the payload logger the server's address (its ce-source) once listening. */
  listening(url: string): void;
}

export async function observersFromFlags(values: Values, env: Record<string, string | undefined>, logger: Logger): Promise<Observers> {
  const observers: InferObserver[] = [];
  const listening: ((url: string) => void)[] = [];
  const endpoint = values['otel-endpoint'];
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) throw new ObserveFlagError(`--otel-endpoint must be an http:// or https:// URL, got '${endpoint}'`);
  const { tracingFromEnv } = await import('../node/tracing-env.ts');
  const fromEnv = tracingFromEnv(env);
  if (values.otel || endpoint || fromEnv) {
    const { InferTracer } = await import('../node/tracing.ts');
    const url = endpoint ?? fromEnv?.url ?? 'http://localhost:4318/v1/traces';
    observers.push(new InferTracer({ url, serviceName: fromEnv?.serviceName ?? env.OTEL_SERVICE_NAME }));
    logger.info({ url }, 'OpenTelemetry tracing on');
  }
  const logFlags = ['log-mode', 'log-url-sample-rate'] as const;
  const url = values['log-url'];
  if (!url && logFlags.some((k) => values[k] !== undefined)) throw new ObserveFlagError(`--${logFlags.find((k) => values[k] !== undefined)} needs --log-url <url>`);
  if (url) {
    if (!/^https?:\/\/[^/]+/.test(url)) throw new ObserveFlagError(`--log-url must be an http:// or https:// URL, got '${url}'`);
    const mode = values['log-mode'] ?? 'all';
    const { LOG_MODES, PayloadLogger } = await import('./payload-logger.ts');
    if (!(LOG_MODES as readonly string[]).includes(mode)) throw new ObserveFlagError(`--log-mode must be one of ${LOG_MODES.join(', ')}, got '${mode}'`);
    const rate = values['log-url-sample-rate'] === undefined ? 1 : Number(values['log-url-sample-rate']);
    if (!(rate >= 0 && rate <= 1)) throw new ObserveFlagError(`--log-url-sample-rate must be a number from 0 to 1, got '${values['log-url-sample-rate']}'`);
    const payload = new PayloadLogger({ url, mode: mode as (typeof LOG_MODES)[number], sampleRate: rate, logger });
    observers.push(payload);
    listening.push((u) => (payload.source = u));
  }
  return { observers, listening: (u) => listening.forEach((f) => f(u)) };
}
