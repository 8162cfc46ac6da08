// What one Lambda invocation reports (the fields of Lambda's REPORT line and more) and the summary of many:
// percentiles of cold and warm invocations. Kept apart from the emulator, which produces them, so the CLI and
// goal checks read them without the Runtime API server.
import { STARTUP_PHASES, type StartupReport } from '../../core/index.ts';
import { percentileOf as percentile } from '../../core/percentile.ts';

export const round2 = (x: number): number => Math.round(x * 100) / 100;

export type InvocationStatus = 'success' | 'error' | 'timeout' | 'init-error' | 'crash' | 'out-of-memory';

export interface InvocationReport {
  requestId: string;
  cold: boolean;
  /** Which execution environment (process) ran it, from 1. */
  environment: number;
  status: InvocationStatus;
  /** Process start → the runtime's first /next call (Lambda's INIT phase). Cold invocations only. */
  initDurationMs?: number;
  /** Event handed to the runtime → its response. */
  durationMs: number;
  billedDurationMs: number;
  memorySizeMb: number;
  maxMemoryUsedMb: number;
  /** Process start → response: what a caller of a cold function waits, beyond the network. */
  coldStartMs?: number;
  /** CPU time the process used during INIT, and up to the response (cold invocations, Linux only). */
  initCpuMs?: number;
  coldStartCpuMs?: number;
  /** The function's own INIT phases (process, imports, model_load, warmup …, in seconds) from its INIT log line. Cold only. */
  initPhases?: StartupReport;
  result?: unknown;
  error?: { errorType: string; errorMessage: string };
  /** Lambda's own lines for this invocation: START, END, REPORT (and INIT_REPORT on an init failure). */
  lines: string[];
}

export interface InvocationSummary {
  cold: {
    count: number;
    initP50: number;
    initP95: number;
    durationP50: number;
    durationP95: number;
    coldStartP50: number;
    coldStartP95: number;
    /** CPU time (10 ms resolution; NaN where /proc is absent). */
    initCpuP50: number;
    coldStartCpuP50: number;
    /** Median of each INIT phase (seconds) over the cold starts whose function logged them. */
    initPhasesP50?: StartupReport;
  };
  warm: { count: number; durationP50: number; durationP95: number };
  maxMemoryUsedMb: number;
  memorySizeMb: number;
  failures: number;
}

function phasesP50(reports: StartupReport[]): StartupReport | undefined {
  if (reports.length === 0) return undefined;
  return Object.fromEntries([...STARTUP_PHASES, 'total'].map((k) => [k, percentile(reports.map((r) => r[k as keyof StartupReport]), 50)])) as StartupReport;
}

export function summarize(reports: InvocationReport[], memorySizeMb: number): InvocationSummary {
  const cold = reports.filter((r) => r.cold && r.initDurationMs !== undefined);
  const warm = reports.filter((r) => !r.cold);
  const r2 = (x: number) => round2(x);
  return {
    cold: {
      count: cold.length,
      initP50: r2(percentile(cold.map((r) => r.initDurationMs!), 50)),
      initP95: r2(percentile(cold.map((r) => r.initDurationMs!), 95)),
      durationP50: r2(percentile(cold.map((r) => r.durationMs), 50)),
      durationP95: r2(percentile(cold.map((r) => r.durationMs), 95)),
      coldStartP50: r2(percentile(cold.map((r) => r.coldStartMs!), 50)),
      coldStartP95: r2(percentile(cold.map((r) => r.coldStartMs!), 95)),
      initCpuP50: percentile(cold.flatMap((r) => (r.initCpuMs === undefined ? [] : [r.initCpuMs])), 50),
      coldStartCpuP50: percentile(cold.flatMap((r) => (r.coldStartCpuMs === undefined ? [] : [r.coldStartCpuMs])), 50),
      initPhasesP50: phasesP50(cold.flatMap((r) => (r.initPhases ? [r.initPhases] : []))),
    },
    warm: { count: warm.length, durationP50: r2(percentile(warm.map((r) => r.durationMs), 50)), durationP95: r2(percentile(warm.map((r) => r.durationMs), 95)) },
    maxMemoryUsedMb: Math.max(0, ...reports.map((r) => r.maxMemoryUsedMb)),
    memorySizeMb,
    failures: reports.filter((r) => r.status !== 'success').length,
  };
}
