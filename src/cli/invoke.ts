// `dais invoke <bundle-dir>`: runs a built Lambda function here, under a local Runtime API, and prints
// Lambda's own START/END/REPORT lines with a cold/warm summary.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { unzipSync } from 'fflate';
import { BUILD_INFO_FILE, type BuildInfo } from '../targets/lambda/bundle.ts';
import { HTTP_EVENT_KINDS, httpEvent, type HttpEventKind } from '../targets/lambda/sample-events.ts';
import { runInvocations, type RuntimeClient } from '../targets/lambda/emulator.ts';
import type { InvocationReport, InvocationSummary } from '../targets/lambda/invocation-report.ts';
import { CliError, flags, intFlag, parseFlags, type Command } from './command.ts';
import { checkJsonDepth } from '../core/request-guard.ts';

const help = `Usage: dais invoke <bundle-dir | function.zip> [options]

Runs a function built by 'dais build --target lambda' on this machine the way Lambda runs it: a local Lambda
Runtime API on 127.0.0.1, a fresh Node.js process for each cold start (INIT: the handler module loads and the
model session opens), then warm invocations on the last process. Prints Lambda's START, END and REPORT lines
(Duration, Billed Duration, Memory Size, Max Memory Used from the process's peak RSS, Init Duration) and a
cold/warm summary.

Options:
  --event <file.json>      the event: a v2 inference request (direct invocation), or a function URL, API Gateway
                           or ALB event; a JSON array is sent one event per invocation, in turn
                           (default: a function URL GET /v2/health/ready)
  --as <kind>              wrap a v2 request given with --event in an HTTP event for POST /v2/models/<model>/infer:
                           function-url, http-api-v2, rest-api-v1, alb or alb-multi-value
  --model <name>           the model for --as (default: the bundle's only model)
  --cold <n>               cold starts, each in a fresh process (default 1)
  --warm <m>               warm invocations after the last cold start (default 0)
  --memory <MB>            Memory Size (default: the build's, else 1024); over it, the invocation fails as on Lambda
  --timeout <s>            function timeout (default: the build's, else 30)
  --runtime <dais|ric>     the runtime client in the process: dais's own bootstrap (default), or AWS's
                           aws-lambda-ric, as Lambda container images run it
  --quiet                  no per-invocation lines, only the summary
  --json                   print every report and the summary as JSON
  -h, --help               show this help

Examples:
  dais invoke dist/mlp-lambda --event examples/mlp/requests/single.json --cold 10 --warm 50
  dais invoke dist/mlp-lambda/function.zip --runtime ric --event my-function-url-event.json
`;

const HEALTH_EVENT = {
  version: '2.0',
  routeKey: '$default',
  rawPath: '/v2/health/ready',
  rawQueryString: '',
  headers: { host: 'local.lambda-url.us-east-1.on.aws' },
  requestContext: { domainName: 'local.lambda-url.us-east-1.on.aws', http: { method: 'GET', path: '/v2/health/ready' }, stage: '$default' },
  isBase64Encoded: false,
};

interface Bundle {
  taskRoot: string;
  info?: BuildInfo;
  cleanup?: () => Promise<void>;
}

function readInfo(path: string): BuildInfo | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as BuildInfo;
  } catch {
    return undefined;
  }
}

async function extract(zipPath: string): Promise<Bundle> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(new Uint8Array(await readFile(zipPath)));
  } catch (e) {
    throw new CliError(`${zipPath} is not a readable zip: ${(e as Error).message}`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'dais-invoke-'));
  for (const [name, data] of Object.entries(files)) {
    if (name.endsWith('/')) continue;
    const target = resolve(dir, name);
    if (!target.startsWith(dir + '/')) throw new CliError(`${zipPath} holds an entry outside its folder: ${name}`);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, data);
  }
  return { taskRoot: dir, info: readInfo(join(dirname(zipPath), BUILD_INFO_FILE)), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The folder Lambda would unpack the function into (LAMBDA_TASK_ROOT), from a build folder, function/ or a zip. */
export async function locateBundle(path: string): Promise<Bundle> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new CliError(`no such file or directory: ${path}`);
  if (abs.endsWith('.zip')) return extract(abs);
  if (existsSync(join(abs, 'function', 'index.mjs'))) return { taskRoot: join(abs, 'function'), info: readInfo(join(abs, BUILD_INFO_FILE)) };
  if (existsSync(join(abs, 'index.mjs'))) return { taskRoot: abs, info: readInfo(join(dirname(abs), BUILD_INFO_FILE)) };
  if (existsSync(join(abs, 'function.zip'))) return extract(join(abs, 'function.zip'));
  throw new CliError(`${path} holds no Lambda function: expected the --out folder of 'dais build --target lambda' (function/index.mjs or function.zip)`);
}

const MAX_EVENT_DEPTH = 1000;

function readEvents(file: string | undefined): unknown[] {
  if (!file) return [HEALTH_EVENT];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`--event ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    // The emulator serialises each event with JSON.stringify, which recurses: thousands of levels overflow the stack
    // inside its HTTP callback, and the invocation would wait for ever. Deeper than any v2 request needs.
    checkJsonDepth(text, MAX_EVENT_DEPTH);
  } catch {
    throw new CliError(`--event ${file} nests arrays/objects more than ${MAX_EVENT_DEPTH} levels deep: no Lambda event or v2 request does`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new CliError(`--event ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0) throw new CliError(`--event ${file} is an empty array: give at least one event`);
    return parsed;
  }
  return [parsed];
}

const fmt = (x: number) => (Number.isFinite(x) ? `${x.toFixed(x < 10 ? 2 : 1)} ms` : 'n/a');

export function formatSummary(s: InvocationSummary): string {
  const lines: string[] = [];
  if (s.cold.count) {
    lines.push(
      `Cold starts: ${s.cold.count} (fresh process each)`,
      `  Init Duration      p50 ${fmt(s.cold.initP50)}   p95 ${fmt(s.cold.initP95)}`,
      `  first Duration     p50 ${fmt(s.cold.durationP50)}   p95 ${fmt(s.cold.durationP95)}`,
      `  start → response   p50 ${fmt(s.cold.coldStartP50)}   p95 ${fmt(s.cold.coldStartP95)}`,
    );
    const p = s.cold.initPhasesP50;
    if (p) lines.push(`  INIT phases p50    process ${fmt(p.process * 1e3)}, imports ${fmt(p.imports * 1e3)}, model load ${fmt(p.model_load * 1e3)}, warmup ${fmt(p.warmup * 1e3)} (the function's INIT log line)`);
    if (Number.isFinite(s.cold.initCpuP50)) lines.push(`  CPU time           INIT p50 ${fmt(s.cold.initCpuP50)}, start → response p50 ${fmt(s.cold.coldStartCpuP50)} (10 ms steps; steadier than wall time on a busy machine)`);
  }
  if (s.warm.count) lines.push(`Warm invocations: ${s.warm.count}`, `  Duration           p50 ${fmt(s.warm.durationP50)}   p95 ${fmt(s.warm.durationP95)}`);
  lines.push(`Max Memory Used: ${s.maxMemoryUsedMb} MB of ${s.memorySizeMb} MB`);
  if (s.failures) lines.push(`Failed invocations: ${s.failures}`);
  return `${lines.join('\n')}\n`;
}

export const command: Command = {
  name: 'invoke',
  summary: 'Run a built Lambda function locally (Runtime API emulator): REPORT lines, cold/warm timings',
  help,
  async run(argv) {
    const { values: v, positionals } = parseFlags('invoke', argv, flags({ string: ['event', 'cold', 'warm', 'memory', 'timeout', 'runtime', 'as', 'model'], boolean: ['quiet', 'json'] }));
    if (positionals.length !== 1) throw new CliError("give one bundle folder (the --out of 'dais build --target lambda') or a function.zip");
    const runtimeName = v.runtime ?? 'dais';
    if (runtimeName !== 'dais' && runtimeName !== 'ric' && runtimeName !== 'aws-lambda-ric') throw new CliError(`--runtime must be dais or ric, got '${runtimeName}'`);
    const runtime: RuntimeClient = runtimeName === 'dais' ? 'dais' : 'aws-lambda-ric';
    let events = readEvents(v.event);
    const kind = v.as as HttpEventKind | undefined;
    if (kind !== undefined && !HTTP_EVENT_KINDS.includes(kind)) throw new CliError(`--as must be one of ${HTTP_EVENT_KINDS.join(', ')}, got '${kind}'`);
    if (kind && !v.event) throw new CliError('--as wraps the v2 request given with --event: pass --event <request.json> too');
    const cold = intFlag('cold', v.cold, 1, 0, 1000);
    const warm = intFlag('warm', v.warm, 0, 0, 100_000);
    if (cold + warm === 0) throw new CliError('nothing to do: --cold and --warm are both 0');
    const bundle = await locateBundle(positionals[0]);
    try {
      const info = bundle.info;
      const here = process.arch === 'x64' ? 'x86_64' : process.arch;
      if (info && info.arch !== here) {
        throw new CliError(`the function was built for ${info.arch} and this machine is ${here}: rebuild with --arch ${here} to run it here`);
      }
      if (kind) {
        const names = [...new Set(info?.models.map((m) => m.name) ?? [])];
        const model = v.model ?? (names.length === 1 ? names[0] : undefined);
        if (!model) throw new CliError(`--as needs --model <name>: the bundle holds ${names.length ? names.join(', ') : 'no build info (dais-lambda.json)'}`);
        events = events.map((e) => httpEvent(kind, { method: 'POST', path: `/v2/models/${encodeURIComponent(model)}/infer`, body: JSON.stringify(e) }));
      }
      const memoryMb = intFlag('memory', v.memory, info?.memoryMb ?? 1024, 128, 10_240);
      const timeoutS = intFlag('timeout', v.timeout, info?.timeoutS ?? 30, 1, 900);
      const quiet = v.quiet || v.json;
      const out = (s: string) => process.stdout.write(`${s}\n`);
      if (!v.event && !v.json) out('(no --event: sending a function URL GET /v2/health/ready; pass --event <request.json> to time inference)');
      const { reports, summary } = await runInvocations({
        taskRoot: bundle.taskRoot,
        memoryMb,
        timeoutS,
        runtime,
        events,
        cold,
        warm,
        onLog: (line) => (v.json ? process.stderr.write(`${line}\n`) : quiet ? undefined : out(line)),
        onReport: (r: InvocationReport) => {
          if (quiet) return;
          for (const l of r.lines) out(l);
          if (r.error) out(`  ${r.error.errorType}: ${r.error.errorMessage}`);
        },
      });
      if (v.json) {
        out(JSON.stringify({ runtime, memoryMb, reports, summary }, null, 2));
      } else {
        const last = reports[reports.length - 1];
        if (!quiet && last?.result !== undefined) {
          const text = JSON.stringify(last.result);
          out(`Response: ${text.length > 600 ? `${text.slice(0, 600)}… (${text.length} characters)` : text}`);
        }
        out('');
        process.stdout.write(formatSummary(summary));
      }
      const failed = reports.filter((r) => r.status !== 'success');
      if (failed.length) {
        const f = failed[0];
        throw new CliError(`${failed.length} of ${reports.length} invocations failed; first: ${f.status}: ${f.error?.errorType}: ${f.error?.errorMessage}`);
      }
      return 0;
    } finally {
      await bundle.cleanup?.();
    }
  },
};
