// Reads the measured inputs of a cost estimate out of a `dais bench` result file. Only the fields used here are
// typed (structurally), so cost does not depend on the bench code, only on the file it writes.
import type { TrafficProfile } from './estimate.ts';
import { UserError } from '../core/errors.ts';

interface Stats {
  p50?: number;
}

export interface BenchResultForCost {
  schema?: string;
  model?: { name?: string };
  server?: {
    peakRssMb?: number;
    responseBytes?: { json?: number; binary?: number };
    sweeps?: { server?: string; path?: string; batching?: boolean; points?: { concurrency?: number; p50Ms?: number; rps?: number; errors?: number; non2xx?: number }[] }[];
  };
  lambda?: { memoryMb?: number; cold?: { initMs?: Stats }; warm?: { durationMs?: Stats } };
}

export type MeasuredInputs = Partial<Pick<TrafficProfile, 'durationMs' | 'memoryMb' | 'instanceRps' | 'instanceMemoryMb' | 'responseBytes' | 'initMs'>> & {
  provenance: Record<string, string>;
};

export class BenchFileError extends UserError {}

export function measuredInputs(raw: unknown, file: string): MeasuredInputs {
  if (!raw || typeof raw !== 'object') throw new BenchFileError(`${file}: not a dais bench result (expected a JSON object)`);
  const r = raw as BenchResultForCost;
  if (typeof r.schema !== 'string' || !r.schema.startsWith('dais-bench/')) {
    throw new BenchFileError(`${file}: not a dais bench result ('schema' should start with "dais-bench/"); make one with 'dais bench <model> --out <dir>'`);
  }
  const out: MeasuredInputs = { provenance: {} };
  const warm = r.lambda?.warm?.durationMs?.p50;
  const jsonSweeps = (r.server?.sweeps ?? []).filter((s) => s.path === 'json');
  const jsonPoints = jsonSweeps.flatMap((s) => (s.points ?? []).map((p) => ({ ...p, batching: Boolean(s.batching) })));
  const c1 = jsonPoints.filter((p) => p.concurrency === 1 && typeof p.p50Ms === 'number').sort((a, b) => a.p50Ms! - b.p50Ms!)[0];
  if (typeof warm === 'number') {
    out.durationMs = warm;
    out.provenance.durationMs = `${file}: lambda warm invocation duration, p50`;
  } else if (c1) {
    out.durationMs = c1.p50Ms;
    out.provenance.durationMs = `${file}: server latency at concurrency 1 (JSON), p50 (includes HTTP; no lambda measured)`;
  }
  if (typeof r.lambda?.memoryMb === 'number') {
    out.memoryMb = r.lambda.memoryMb;
    out.provenance.memoryMb = `${file}: lambda memory setting`;
  } else if (typeof r.server?.peakRssMb === 'number') {
    out.memoryMb = Math.max(128, Math.ceil(r.server.peakRssMb / 128) * 128);
    out.provenance.memoryMb = `${file}: server peak RSS ${r.server.peakRssMb.toFixed(0)} MB rounded up to 128 MB steps`;
  }
  const clean = jsonPoints.filter((p) => typeof p.rps === 'number' && !p.errors && !p.non2xx);
  if (clean.length) {
    const best = clean.reduce((a, b) => (b.rps! > a.rps! ? b : a));
    out.instanceRps = best.rps;
    out.provenance.instanceRps = `${file}: best server throughput without errors (JSON, ${best.batching ? 'dynamic batching, ' : ''}concurrency ${best.concurrency})`;
  }
  if (typeof r.server?.peakRssMb === 'number') {
    out.instanceMemoryMb = r.server.peakRssMb;
    out.provenance.instanceMemoryMb = `${file}: server peak RSS (VmHWM)`;
  }
  if (typeof r.server?.responseBytes?.json === 'number') {
    out.responseBytes = r.server.responseBytes.json;
    out.provenance.responseBytes = `${file}: JSON response body size`;
  }
  const init = r.lambda?.cold?.initMs?.p50;
  if (typeof init === 'number') {
    out.initMs = init;
    out.provenance.initMs = `${file}: lambda cold INIT duration, p50`;
  }
  return out;
}
