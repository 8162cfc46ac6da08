// `dais serve`'s monitoring flags, kept here so the serve command only spreads them in: the flag table, their help
// text, and the Monitor they describe. Light on purpose: the Monitor itself is imported only when one is made.
import type { Logger } from '../node/logger.ts';
import type { Monitor } from './monitor.ts';
import { UserError } from '../core/errors.ts';
import { flags } from '../node/flags.ts';

export const MONITOR_FLAGS = flags({ string: ['drift-window', 'drift-min-rows', 'drift-alpha', 'drift-psi', 'alert-webhook', 'log-db', 'log-sample-rate', 'log-max-rows', 'log-max-age'], boolean: ['dashboard', 'no-monitor'] });

export const MONITOR_HELP = ` Monitoring (drift is measured for every version with a profile.json from 'dais profile'):
  --dashboard                 serve a live dashboard at /dashboard (throughput, latency, drift, accuracy)
  --drift-window <rows>       rows kept per model version for drift (default: 500)
  --drift-min-rows <rows>     rows needed before a drift report (default: 100)
  --drift-alpha <p>           false-alarm level per report, split over the features (default: 0.01)
  --drift-psi <x>             PSI a feature must also reach to be flagged (default: 0.1)
  --alert-webhook <url>       POST a JSON alert when a version starts or stops drifting (retried 3 times)
  --log-db <file.sqlite>      log requests and responses to this SQLite file (export: dais log export)
  --log-sample-rate <r>       share of requests logged, 0–1 (default: 1)
  --log-max-rows <n>          keep at most n logged predictions (default: 1000000; 0 = no limit)
  --log-max-age <d>           drop logged predictions older than this: 30m, 12h, 7d (default: keep)
  --no-monitor                no drift, feedback or series endpoints (canary/shadow routing still applies)
  Under --workers N the primary process keeps the one monitor and the workers forward each request to it, so
  drift, feedback, the prediction log and the series answer as one process would.
`;

export class MonitorFlagError extends UserError {}

function num(name: string, v: string | undefined, fallback: number, min: number, max: number, integer = false): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new MonitorFlagError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${v}'`);
  }
  return n;
}

/** '30m', '12h', '7d', '45s' or plain milliseconds. */
export function durationMs(name: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new MonitorFlagError(`--${name} must be a duration like 30m, 12h or 7d, got '${v}'`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']!;
  return Number(m[1]) * unit;
}

type Values = { [K in keyof typeof MONITOR_FLAGS]?: (typeof MONITOR_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/** The Monitor the flags ask for (undefined with --no-monitor); the prediction log is opened here. */
export async function monitorFromFlags(values: Values, logger?: Logger): Promise<Monitor | undefined> {
  if (values['no-monitor']) {
    const conflicting = (Object.keys(MONITOR_FLAGS) as (keyof Values)[]).filter((k) => k !== 'no-monitor' && values[k] !== undefined);
    if (conflicting.length) throw new MonitorFlagError(`--no-monitor turns monitoring off, but --${conflicting[0]} asks for it: drop one`);
    return undefined;
  }
  const windowSize = num('drift-window', values['drift-window'], 500, 10, 1_000_000, true);
  const minRows = num('drift-min-rows', values['drift-min-rows'], Math.min(100, windowSize), 2, windowSize, true);
  const alpha = num('drift-alpha', values['drift-alpha'], 0.01, 1e-12, 0.5);
  const psi = num('drift-psi', values['drift-psi'], 0.1, 0, 100);
  const webhook = values['alert-webhook'];
  if (webhook !== undefined && !/^https?:\/\/[^/]+/.test(webhook)) throw new MonitorFlagError(`--alert-webhook must be an http:// or https:// URL, got '${webhook}'`);
  const logFlags = ['log-sample-rate', 'log-max-rows', 'log-max-age'] as const;
  if (!values['log-db'] && logFlags.some((k) => values[k] !== undefined)) throw new MonitorFlagError(`--${logFlags.find((k) => values[k] !== undefined)} needs --log-db <file.sqlite>`);
  const { Monitor } = await import('./monitor.ts');
  const monitor = new Monitor({
    drift: { windowSize, minRows, alpha, psi },
    dashboard: Boolean(values.dashboard),
    webhook: webhook ? { url: webhook } : undefined,
    log: values['log-db']
      ? {
          file: values['log-db'],
          sampleRate: num('log-sample-rate', values['log-sample-rate'], 1, 0, 1),
          maxRows: num('log-max-rows', values['log-max-rows'], 1_000_000, 0, Number.MAX_SAFE_INTEGER, true),
          maxAgeMs: values['log-max-age'] ? durationMs('log-max-age', values['log-max-age']) : 0,
        }
      : undefined,
    logger,
  });
  return monitor.open();
}

/**
 * `dais serve --workers N` with monitoring: in the primary, the one Monitor (fed by the workers), its gauges appended
 * to /metrics, closed after the workers; in a worker, a stateless monitor that forwards to it. Undefined with --no-monitor.
 */
export async function clusterPrimaryMonitor(values: Values, logger: Logger): Promise<{ extraMetrics: () => Promise<string>; close(): Promise<void> } | undefined> {
  const monitor = await monitorFromFlags(values, logger);
  if (!monitor) return undefined;
  const [{ Registry }, { hostClusterMonitor }] = await Promise.all([import('prom-client'), import('./cluster.ts')]);
  const registry = new Registry();
  hostClusterMonitor(monitor, registry, logger);
  return { extraMetrics: () => registry.metrics(), close: () => monitor.close() };
}

export async function clusterWorkerMonitor(values: Values) {
  if (values['no-monitor']) return undefined;
  const [{ connectMonitorWorker }, { workerMonitor }] = await Promise.all([import('../serve/cluster-monitor.ts'), import('./cluster.ts')]);
  return workerMonitor(connectMonitorWorker(), { dashboard: Boolean(values.dashboard) });
}
