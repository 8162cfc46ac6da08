// A minimal Node.js Lambda runtime, as `dais invoke` runs it in each fresh process: import the handler
// (INIT), then loop on the Runtime API (next → handler → response or error). Kept to node:http and a few
// lines so the emulator's cold start measures the bundle, not this file. esbuild compiles it to plain JS.
import { existsSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const api = process.env.AWS_LAMBDA_RUNTIME_API ?? '';
const [host, port] = api.split(':');
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const PREFIX = '/2018-06-01/runtime';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), method, path: PREFIX + path, agent, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function errorPayload(e: unknown, fallbackType: string): string {
  const err = e instanceof Error ? e : new Error(String(e));
  // Like Lambda's runtime, minus the stack trace: the caller of a function gets type and message only.
  return JSON.stringify({ errorType: err.name && err.name !== 'Error' ? err.name : fallbackType, errorMessage: err.message });
}

type Handler = (event: unknown, context: Record<string, unknown>) => Promise<unknown>;

async function loadHandler(): Promise<Handler> {
  const root = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
  const spec = process.env._HANDLER ?? 'index.handler';
  const dot = spec.lastIndexOf('.');
  const [file, name] = dot === -1 ? [spec, 'handler'] : [spec.slice(0, dot), spec.slice(dot + 1)];
  const path = ['.mjs', '.js', '.cjs'].map((ext) => join(root, file + ext)).find((p) => existsSync(p));
  if (!path) throw Object.assign(new Error(`Cannot find module '${file}' in ${root} (tried .mjs, .js, .cjs)`), { name: 'Runtime.ImportModuleError' });
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  const fn = mod[name] ?? (mod.default as Record<string, unknown> | undefined)?.[name];
  if (typeof fn !== 'function') throw Object.assign(new Error(`${file}.${name} is not a function`), { name: 'Runtime.HandlerNotFound' });
  return fn as Handler;
}

let handler: Handler;
try {
  handler = await loadHandler();
} catch (e) {
  await call('POST', '/init/error', errorPayload(e, 'Runtime.ImportModuleError'), { 'lambda-runtime-function-error-type': 'Runtime.ImportModuleError' });
  process.exit(1);
}

const header = (r: Reply, name: string) => {
  const v = r.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

for (;;) {
  const next = await call('GET', '/invocation/next');
  const id = header(next, 'lambda-runtime-aws-request-id') ?? '';
  const deadline = Number(header(next, 'lambda-runtime-deadline-ms'));
  const trace = header(next, 'lambda-runtime-trace-id');
  if (trace) process.env._X_AMZN_TRACE_ID = trace;
  const context = {
    awsRequestId: id,
    invokedFunctionArn: header(next, 'lambda-runtime-invoked-function-arn'),
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
  try {
    const result = await handler(JSON.parse(next.body), context);
    await call('POST', `/invocation/${id}/response`, JSON.stringify(result ?? null));
  } catch (e) {
    await call('POST', `/invocation/${id}/error`, errorPayload(e, 'Error'), { 'lambda-runtime-function-error-type': 'Unhandled' });
  }
}
