// After a Lambda build, one cold start of the built function in the emulator (a fresh Node.js process on the local
// Runtime API, as `dais invoke` runs it) with the largest sample request: INIT duration, peak memory and the response
// size, measured, against the function's --memory, Lambda's 10 s INIT limit and its 6 MB request/response limits.
// Over one, the build warns (or, with --strict, refuses) with the measured figure and the way under it.
import { readFile } from 'node:fs/promises';
import { sampleRequests } from '../samples.ts';
import { INIT_LIMIT_MS, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, runInvocations } from './emulator.ts';
import { mb } from './limits.ts';

export interface SampleEvent {
  model: string;
  /** Where it came from: a file of requests/, or "zeros" (made from the model's inputs). */
  source: string;
  event: Record<string, unknown>;
}

export interface InitCheck {
  samples: string[];
  initMs?: number;
  maxMemoryUsedMb: number;
  /** Per sample, in order; NaN where there was no answer. */
  responseBytes: number[];
  /** Each limit the measurement passes, with the way under it. */
  problems: string[];
}

export async function sampleEvent(model: string, modelFile: string, zeros: () => Record<string, unknown>, zerosSize = 1): Promise<SampleEvent> {
  const [largest] = await sampleRequests(modelFile);
  const body = largest ? (JSON.parse(await readFile(largest.file, 'utf8')) as Record<string, unknown>) : zeros();
  const what = zerosSize === 1 ? 'a request of zeros at batch 1' : `a request of zeros, dynamic dimensions ${zerosSize}`;
  return { model, source: largest ? largest.file : `${what} (no requests/ beside the model)`, event: { ...body, model_name: model } };
}

/**
 * One cold start of the built function with the first sample, then the others warm (INIT loads every model once);
 * checked against the function's memory and Lambda's limits.
 */
export async function checkInit(functionDir: string, samples: readonly SampleEvent[], options: { memoryMb: number; timeoutS: number; lazy: boolean }): Promise<InitCheck> {
  const problems: string[] = [];
  const sizes = samples.map((s) => Buffer.byteLength(JSON.stringify(s.event)));
  const events = samples.map((s, i) => {
    if (sizes[i] <= MAX_REQUEST_BYTES) return s.event;
    problems.push(
      `the sample request for ${s.model} (${s.source}) is ${mb(sizes[i])} (${sizes[i]} bytes) as an invocation payload, over Lambda's 6 MB limit for a synchronous request (${MAX_REQUEST_BYTES} bytes): ` +
        `send smaller inputs (fewer rows, a smaller image), or serve this model from a container ('dais build --target container')`,
    );
    return { warmup: true };
  });
  // The largest memory Lambda offers, so the peak is measured rather than cut off; compared with --memory below.
  const { reports } = await runInvocations({ taskRoot: functionDir, events, cold: 1, warm: events.length - 1, memoryMb: 10_240, timeoutS: Math.max(options.timeoutS, 60) });
  const check: InitCheck = {
    samples: samples.map((s) => s.source),
    initMs: reports[0].initDurationMs,
    maxMemoryUsedMb: Math.max(...reports.map((r) => r.maxMemoryUsedMb)),
    responseBytes: [],
    problems,
  };
  const first = reports[0];
  if (first.status === 'init-error' || first.status === 'crash') {
    problems.push(`the function failed to start here: ${first.error?.errorType}: ${first.error?.errorMessage}`);
    return check;
  }
  if (first.initDurationMs !== undefined && first.initDurationMs > INIT_LIMIT_MS && !options.lazy) {
    problems.push(
      `INIT took ${(first.initDurationMs / 1000).toFixed(1)} s on this machine, over Lambda's 10 s INIT limit: add '--lazy' (the model opens in the first invocation, whose timeout applies) ` +
        `or raise --memory (Lambda gives more CPU with more memory; 1769 MB = one vCPU)`,
    );
  }
  if (check.maxMemoryUsedMb > options.memoryMb) {
    const need = Math.min(10_240, Math.ceil((check.maxMemoryUsedMb * 1.2) / 64) * 64);
    problems.push(`the function peaked at ${check.maxMemoryUsedMb} MB here answering its sample requests, over --memory ${options.memoryMb}: build with '--memory ${need}' (the peak + 20%)`);
  }
  reports.forEach((r, i) => {
    if (sizes[i] > MAX_REQUEST_BYTES) return void check.responseBytes.push(NaN);
    const what = `the answer to ${samples[i].model}'s sample request (${samples[i].source})`;
    if (r.status === 'error' && r.error?.errorType === 'Function.ResponseSizeTooLarge') {
      const n = Number(/\((\d+) bytes\)/.exec(r.error.errorMessage)?.[1] ?? NaN);
      check.responseBytes.push(n);
      problems.push(
        `${what} is ${Number.isNaN(n) ? 'over 6 MB' : mb(n)}, over Lambda's 6 MB limit for a synchronous response (${MAX_RESPONSE_BYTES} bytes): ` +
          `ask for the outputs you need ("outputs": [{"name": …}]), send fewer rows, or serve this model from a container`,
      );
    } else if (r.status === 'success' && typeof (r.result as { error?: unknown } | undefined)?.error === 'string') {
      // The handler answered with a v2 error body (it refuses an answer over 6 MB itself, naming its size).
      const error = (r.result as { error: string }).error;
      const n = /response is (\d+) bytes/.exec(error)?.[1];
      check.responseBytes.push(n ? Number(n) : NaN);
      problems.push(`${what} failed: ${error}`);
    } else {
      check.responseBytes.push(r.status === 'success' ? Buffer.byteLength(JSON.stringify(r.result)) : NaN);
      if (r.status !== 'success') problems.push(`${what} failed: ${r.error?.errorType}: ${r.error?.errorMessage}`);
    }
  });
  return check;
}
