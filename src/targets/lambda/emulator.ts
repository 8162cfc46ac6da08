// A local Lambda: the Runtime API (2018-06-01) on 127.0.0.1, a fresh process per cold start running either
// dais's small bootstrap or AWS's own runtime interface client (aws-lambda-ric), and Lambda's log lines
// (START / END / REPORT) with Init Duration, Duration, Billed Duration, Memory Size and Max Memory Used.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StartupReport } from '../../core/index.ts';
import { parseInitPhases } from './handler.ts';
import { round2, summarize, type InvocationReport, type InvocationStatus, type InvocationSummary } from './invocation-report.ts';
import { compiledBootstrap, findAwsLambdaRic, peakRssMb, processCpuMs } from './runtime-process.ts';

const PREFIX = '/2018-06-01/runtime';
/** Lambda's limit on a synchronous response payload; the Runtime API refuses a larger one. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;
/** Lambda's limit on a synchronous invocation's request payload (the event), direct or through a function URL. */
export const MAX_REQUEST_BYTES = 6 * 1024 * 1024;
/** Lambda's INIT phase limit (10 s). */
export const INIT_LIMIT_MS = 10_000;

export type RuntimeClient = 'dais' | 'aws-lambda-ric';

export interface EmulatorOptions {
  /** The function's files (LAMBDA_TASK_ROOT): the folder holding index.mjs. */
  taskRoot: string;
  handler?: string;
  memoryMb?: number;
  timeoutS?: number;
  functionName?: string;
  runtime?: RuntimeClient;
  /** Extra environment variables for the function. */
  env?: Record<string, string>;
  /** The function's own stdout/stderr, line by line. */
  onLog?: (line: string) => void;
}

interface Inflight {
  id: string;
  event: unknown;
  deliveredAt?: number;
  timer?: NodeJS.Timeout;
  done: (r: { status: InvocationStatus; result?: unknown; error?: InvocationReport['error']; at: number }) => void;
}

interface Environment {
  index: number;
  proc: ChildProcess;
  spawnedAt: number;
  firstNextAt?: number;
  initCpuMs?: number;
  waiting?: ServerResponse;
  inflight?: Inflight;
  queued?: Inflight;
  initError?: { errorType: string; errorMessage: string };
  initPhases?: StartupReport;
  exited: boolean;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function parseError(body: Buffer): { errorType: string; errorMessage: string } {
  try {
    const e = JSON.parse(body.toString('utf8')) as { errorType?: unknown; errorMessage?: unknown };
    return { errorType: String(e.errorType ?? 'Unknown'), errorMessage: String(e.errorMessage ?? '') };
  } catch {
    return { errorType: 'Unknown', errorMessage: body.toString('utf8').slice(0, 500) };
  }
}

function traceId(): string {
  return `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')};Parent=${randomBytes(8).toString('hex')};Sampled=0`;
}

export class LambdaEmulator {
  private env?: Environment;
  private count = 0;
  readonly memoryMb: number;
  readonly timeoutS: number;
  readonly functionName: string;
  readonly runtime: RuntimeClient;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly options: EmulatorOptions,
  ) {
    this.memoryMb = options.memoryMb ?? 1024;
    this.timeoutS = options.timeoutS ?? 30;
    this.functionName = options.functionName ?? 'dais-function';
    this.runtime = options.runtime ?? 'dais';
  }

  static async start(options: EmulatorOptions): Promise<LambdaEmulator> {
    let emulator: LambdaEmulator | undefined;
    const server = createServer((req, res) => {
      emulator!.route(req, res).catch((e: Error) => {
        if (!res.headersSent) json(res, 500, { errorMessage: e.message, errorType: 'EmulatorError' });
      });
    });
    server.keepAliveTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    emulator = new LambdaEmulator(server, (server.address() as AddressInfo).port, options);
    return emulator;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const env = this.env;
    const url = req.url ?? '';
    if (req.method === 'GET' && url === `${PREFIX}/invocation/next`) {
      if (!env) return json(res, 500, { errorMessage: 'no execution environment', errorType: 'EmulatorError' });
      if (env.firstNextAt === undefined) {
        env.firstNextAt = performance.now();
        env.initCpuMs = processCpuMs(env.proc.pid);
      }
      env.waiting = res;
      this.deliver(env);
      return;
    }
    const body = await readBody(req);
    if (req.method === 'POST' && url === `${PREFIX}/init/error`) {
      if (env) {
        env.initError = parseError(body);
        env.queued?.done({ status: 'init-error', error: env.initError, at: performance.now() });
        env.queued = undefined;
      }
      return json(res, 202, { status: 'OK' });
    }
    const m = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
    if (req.method === 'POST' && m) {
      const inflight = env?.inflight;
      if (!inflight || inflight.id !== decodeURIComponent(m[1])) {
        return json(res, 400, { errorMessage: `Invalid request ID: ${m[1]}`, errorType: 'InvalidRequestID' });
      }
      const at = performance.now();
      env!.inflight = undefined;
      clearTimeout(inflight.timer);
      if (m[2] === 'error') {
        json(res, 202, { status: 'OK' });
        return inflight.done({ status: 'error', error: parseError(body), at });
      }
      if (body.byteLength > MAX_RESPONSE_BYTES) {
        json(res, 413, { errorMessage: `Exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).`, errorType: 'RequestEntityTooLarge' });
        return inflight.done({ status: 'error', error: { errorType: 'Function.ResponseSizeTooLarge', errorMessage: `Response payload size (${body.byteLength} bytes) exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).` }, at });
      }
      json(res, 202, { status: 'OK' });
      let result: unknown = body.toString('utf8');
      try {
        result = JSON.parse(result as string);
      } catch {
        // Lambda passes a non-JSON response through as it is.
      }
      return inflight.done({ status: 'success', result, at });
    }
    json(res, 404, { errorMessage: `no route ${req.method} ${url}`, errorType: 'NotFound' });
  }

  private deliver(env: Environment): void {
    const next = env.queued;
    const res = env.waiting;
    if (!next || !res) return;
    env.queued = undefined;
    env.waiting = undefined;
    env.inflight = next;
    const body = JSON.stringify(next.event);
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'lambda-runtime-aws-request-id': next.id,
      'lambda-runtime-deadline-ms': String(Date.now() + this.timeoutS * 1000),
      'lambda-runtime-invoked-function-arn': `arn:aws:lambda:us-east-1:000000000000:function:${this.functionName}`,
      'lambda-runtime-trace-id': traceId(),
    });
    res.end(body);
    next.deliveredAt = performance.now();
    next.timer = setTimeout(() => {
      if (env.inflight !== next) return;
      env.inflight = undefined;
      next.done({ status: 'timeout', error: { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${this.timeoutS.toFixed(2)} seconds` }, at: performance.now() });
    }, this.timeoutS * 1000);
  }

  private async spawnEnvironment(): Promise<Environment> {
    let script: string;
    let args: string[];
    if (this.runtime === 'aws-lambda-ric') {
      const ric = findAwsLambdaRic();
      if (!ric.path) throw new Error(ric.reason);
      script = ric.path;
      args = [this.options.handler ?? 'index.handler'];
    } else {
      script = await compiledBootstrap();
      args = [];
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      AWS_LAMBDA_RUNTIME_API: this.address,
      _HANDLER: this.options.handler ?? 'index.handler',
      LAMBDA_TASK_ROOT: this.options.taskRoot,
      AWS_LAMBDA_FUNCTION_NAME: this.functionName,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(this.memoryMb),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${this.functionName}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `local/[$LATEST]${randomBytes(16).toString('hex')}`,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      ...this.options.env,
    };
    const spawnedAt = performance.now();
    // The heap is capped below the function's memory, as Lambda's Node.js runtime does.
    const proc = spawn(process.execPath, [`--max-old-space-size=${Math.floor(this.memoryMb * 0.9)}`, script, ...args], {
      cwd: this.options.taskRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const environment: Environment = { index: ++this.count, proc, spawnedAt, exited: false };
    const log = this.options.onLog;
    for (const stream of [proc.stdout!, proc.stderr!]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) !== -1) {
          environment.initPhases ??= parseInitPhases(buf.slice(0, nl));
          log?.(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
      stream.on('end', () => {
        if (buf) log?.(buf);
      });
    }
    proc.on('exit', (code, signal) => {
      environment.exited = true;
      const reason = signal ? `signal: ${signal}` : `exit status ${code}`;
      const at = performance.now();
      if (environment.inflight) {
        const i = environment.inflight;
        environment.inflight = undefined;
        clearTimeout(i.timer);
        i.done({ status: 'crash', error: { errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${i.id} Error: Runtime exited with error: ${reason}` }, at });
      }
      if (environment.queued) {
        const q = environment.queued;
        environment.queued = undefined;
        q.done({ status: 'init-error', error: environment.initError ?? { errorType: 'Runtime.ExitError', errorMessage: `Runtime exited during INIT with error: ${reason}` }, at });
      }
    });
    return environment;
  }

  /** Sends one event; a fresh process (a cold start) when `cold` is set or no environment is alive. */
  async invoke(event: unknown, options: { cold?: boolean } = {}): Promise<InvocationReport> {
    const eventBytes = Buffer.byteLength(JSON.stringify(event) ?? '');
    if (eventBytes > MAX_REQUEST_BYTES) {
      // Lambda's Invoke API refuses it before any environment sees it: nothing runs, nothing is billed.
      return {
        requestId: randomUUID(),
        cold: false,
        environment: 0,
        status: 'error',
        durationMs: 0,
        billedDurationMs: 0,
        memorySizeMb: this.memoryMb,
        maxMemoryUsedMb: 0,
        error: { errorType: 'RequestEntityTooLargeException', errorMessage: `Request must be smaller than ${MAX_REQUEST_BYTES} bytes for the InvokeFunction operation (this event is ${eventBytes} bytes)` },
        lines: [],
      };
    }
    if (options.cold || !this.env || this.env.exited) await this.retire();
    const cold = !this.env;
    const env = this.env ?? (this.env = await this.spawnEnvironment());
    const id = randomUUID();
    let inflight: Inflight | undefined;
    const outcome = await new Promise<{ status: InvocationStatus; result?: unknown; error?: InvocationReport['error']; at: number }>((done) => {
      inflight = env.queued = { id, event, done };
      this.deliver(env);
    });
    const memorySizeMb = this.memoryMb;
    // The INIT line was written before the runtime asked for the event; its pipe may still be a turn behind.
    if (cold && !env.initPhases) await new Promise((r) => setTimeout(r, 20));
    const coldStartCpuMs = cold ? processCpuMs(env.proc.pid) : undefined;
    let maxMemoryUsedMb = peakRssMb(env.proc.pid);
    let { status, error } = outcome;
    const initDurationMs = cold ? (env.firstNextAt ?? outcome.at) - env.spawnedAt : undefined;
    const deliveredAt = inflight?.deliveredAt ?? outcome.at;
    const durationMs = status === 'timeout' ? this.timeoutS * 1000 : Math.max(0, outcome.at - deliveredAt);
    if (maxMemoryUsedMb > memorySizeMb && status !== 'crash') {
      // Lambda stops an environment that goes over its memory; here the peak is read after the fact.
      status = 'out-of-memory';
      error = { errorType: 'Runtime.OutOfMemory', errorMessage: `RequestId: ${id} Error: Runtime exited with error: signal: killed` };
      maxMemoryUsedMb = memorySizeMb;
    }
    if (status !== 'success' && status !== 'error') await this.retire();
    // Since 2025-08-01 Lambda bills the INIT phase of on-demand zip functions on managed runtimes.
    // From the printed (2-decimal) figures, so a reader of the REPORT line can check the sum.
    const billedDurationMs = Math.ceil(round2(round2(durationMs) + (initDurationMs === undefined ? 0 : round2(initDurationMs))));
    const lines: string[] = [];
    if (status === 'init-error') {
      lines.push(`INIT_REPORT Init Duration: ${initDurationMs!.toFixed(2)} ms\tPhase: init\tStatus: error\tError Type: ${error?.errorType ?? 'Unknown'}`);
    }
    lines.push(`START RequestId: ${id} Version: $LATEST`);
    lines.push(`END RequestId: ${id}`);
    let report = `REPORT RequestId: ${id}\tDuration: ${durationMs.toFixed(2)} ms\tBilled Duration: ${billedDurationMs} ms\tMemory Size: ${memorySizeMb} MB\tMax Memory Used: ${maxMemoryUsedMb} MB`;
    if (initDurationMs !== undefined) report += `\tInit Duration: ${initDurationMs.toFixed(2)} ms`;
    if (status === 'timeout') report += '\tStatus: timeout';
    else if (status !== 'success' && status !== 'error') report += `\tStatus: error\tError Type: ${error?.errorType}`;
    lines.push(report);
    return {
      requestId: id,
      cold,
      environment: env.index,
      status,
      initDurationMs: initDurationMs === undefined ? undefined : round2(initDurationMs),
      durationMs: round2(durationMs),
      billedDurationMs,
      memorySizeMb,
      maxMemoryUsedMb,
      coldStartMs: cold ? round2(outcome.at - env.spawnedAt) : undefined,
      initCpuMs: cold ? env.initCpuMs : undefined,
      coldStartCpuMs,
      initPhases: cold ? env.initPhases : undefined,
      result: outcome.result,
      error,
      lines,
    };
  }

  /** Ends the current execution environment (the next invocation is a cold start). */
  async retire(): Promise<void> {
    const env = this.env;
    this.env = undefined;
    if (!env || env.exited) return;
    await new Promise<void>((resolve) => {
      env.proc.once('exit', () => resolve());
      env.proc.kill('SIGKILL');
    });
  }

  async close(): Promise<void> {
    await this.retire();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface RunOptions extends EmulatorOptions {
  /** Events sent in turn (a single event is sent every time). */
  events: unknown[];
  cold: number;
  warm: number;
  onReport?: (report: InvocationReport) => void;
}

/**
 * `cold` fresh environments, one invocation each; then `warm` more invocations on the last environment
 * (Lambda reuses a warm environment for the next request).
 */
export async function runInvocations(options: RunOptions): Promise<{ reports: InvocationReport[]; summary: InvocationSummary }> {
  const emulator = await LambdaEmulator.start(options);
  const reports: InvocationReport[] = [];
  let n = 0;
  const nextEvent = () => options.events[n++ % options.events.length];
  try {
    for (let i = 0; i < options.cold; i++) {
      const r = await emulator.invoke(nextEvent(), { cold: true });
      reports.push(r);
      options.onReport?.(r);
    }
    for (let i = 0; i < options.warm; i++) {
      const r = await emulator.invoke(nextEvent());
      reports.push(r);
      options.onReport?.(r);
    }
  } finally {
    await emulator.close();
  }
  return { reports, summary: summarize(reports, emulator.memoryMb) };
}
