// Entry of a device bundle (bundled as dais-edge.mjs): the dais v2 server over the models in ./models, or a
// one-shot `predict` that reads a v2 request and prints the response. Models were converted to ONNX at build time,
// so the device carries no converter: only this file, onnxruntime-node and that platform's native library.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  createV2App,
  encodeInferResponse,
  errorBody,
  InferenceError,
  requestFromJson,
  toInferenceError,
  type ModelEndpoint,
  type ModelRegistry,
} from '../../../core/index.ts';
import { ServedModelVersion } from '../../../runtime/served-model.ts';
import { onnxruntimeNode } from '../../../runtime/onnxruntime-node.ts';
import { startHttpServer } from '../../../node/http-server.ts';
import { DAIS_VERSION } from '../../../core/version.ts';
import { processingSpecOf } from '../../../core/processing/spec.ts';
import { embeddingsRoute } from '../../../core/processing/embeddings-route.ts';
import { processingFor } from '../../../layout/processing-files.ts';
import { byVersion, isVersionFolder } from '../../../layout/repository.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVER_VERSION = DAIS_VERSION;

const HELP = `Usage:
  node dais-edge.mjs [serve] [--host 127.0.0.1] [--port 8080] [--threads N] [--models DIR]
  node dais-edge.mjs predict <model> <request.json | -> [--threads N] [--models DIR]

serve    answers the Open Inference Protocol (v2) over HTTP: GET /v2/health/ready, GET /v2/models/<model>,
         POST /v2/models/<model>/infer (JSON, or binary tensors with Inference-Header-Content-Length)
predict  runs one v2 JSON request ('-' reads stdin) and prints the v2 JSON response

--models DIR  the model repository (default: ./models beside this file), laid out <model>/<version>/model.onnx
`;

class DeviceRepository implements ModelRegistry {
  private draining = false;
  constructor(private readonly models: Map<string, ServedModelVersion>) {}
  isReady(): boolean {
    return !this.draining && [...this.models.values()].every((m) => m.isReady());
  }
  resolve(name: string, version?: string): ModelEndpoint {
    const m = this.models.get(name);
    if (!m) throw new InferenceError('MODEL_NOT_FOUND', `model '${name}' is not on this device; models: ${[...this.models.keys()].join(', ')}`);
    if (version !== undefined && version !== m.version) throw new InferenceError('VERSION_NOT_FOUND', `model '${name}' has no version '${version}'; versions: ${m.version}`);
    return m;
  }
  names(): string[] {
    return [...this.models.keys()];
  }
  async close(): Promise<void> {
    this.draining = true;
    for (const m of this.models.values()) await m.dispose();
  }
}

/** <dir>/<model>/<version>/model.onnx; the highest version of each model. */
function modelFiles(dir: string): { name: string; version: string; path: string }[] {
  if (!existsSync(dir)) throw new Error(`no model repository at ${dir}`);
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const versions = readdirSync(join(dir, name))
        .filter((v) => isVersionFolder(v) && existsSync(join(dir, name, v, 'model.onnx')))
        .sort(byVersion);
      const v = versions.at(-1);
      return v ? [{ name, version: v, path: join(dir, name, v, 'model.onnx') }] : [];
    });
}

async function loadModels(dir: string, threads: number | undefined, only?: string): Promise<DeviceRepository> {
  const files = modelFiles(dir).filter((f) => only === undefined || f.name === only);
  if (files.length === 0) throw new Error(only ? `model '${only}' is not in ${dir}; models: ${modelFiles(dir).map((f) => f.name).join(', ')}` : `${dir} holds no model`);
  const models = new Map<string, ServedModelVersion>();
  for (const f of files) {
    const model = await ServedModelVersion.load(new Uint8Array(readFileSync(f.path)), {
      name: f.name,
      version: f.version,
      backend: onnxruntimeNode,
      sessionOptions: threads ? { intraOpThreads: threads } : undefined,
      processing: await declaredProcessing(join(dir, f.name)),
    });
    models.set(f.name, model);
  }
  return new DeviceRepository(models);
}

/** <model>/processing.json (config.yaml's preprocess/postprocess, written by the build) and the files it names. */
async function declaredProcessing(modelDir: string) {
  const file = join(modelDir, 'processing.json');
  const raw = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { preprocess?: unknown; postprocess?: unknown }) : undefined;
  const problems: string[] = [];
  const spec = raw ? processingSpecOf(raw.preprocess, raw.postprocess, problems) : undefined;
  if (problems.length) throw new Error(`${file}: ${problems.join('; ')}`);
  return processingFor(modelDir, spec);
}

function threadsOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`--threads must be a whole number from 1 to 256, got '${v}'`);
  return n;
}

async function serveCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { host: { type: 'string' }, port: { type: 'string' }, threads: { type: 'string' }, models: { type: 'string' } }, strict: true });
  const port = Number(values.port ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got '${values.port}'`);
  const repo = await loadModels(values.models ?? join(HERE, 'models'), threadsOf(values.threads));
  const handler = createV2App({ registry: repo, routes: [embeddingsRoute(repo)], server: { name: 'dais-edge', version: SERVER_VERSION, extensions: ['binary_tensor_data', 'model_configuration'] } });
  const http = await startHttpServer({ handler, host: values.host ?? '127.0.0.1', port });
  process.stdout.write(`dais-edge serving ${repo.names().join(', ')} on ${http.url}\n`);
  const stop = (signal: string) => {
    process.stdout.write(`${signal}: shutting down\n`);
    void http.close().then(() => repo.close()).then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

async function predictCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { threads: { type: 'string' }, models: { type: 'string' } }, allowPositionals: true, strict: true });
  const [name, file] = positionals;
  if (!name || !file) throw new Error('predict needs a model name and a request file (or - for stdin): node dais-edge.mjs predict <model> <request.json>');
  const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new InferenceError('INVALID_JSON', `${file === '-' ? 'stdin' : file} is not valid JSON: ${(e as Error).message}`);
  }
  const repo = await loadModels(values.models ?? join(HERE, 'models'), threadsOf(values.threads), name);
  try {
    const response = await repo.resolve(name).infer(requestFromJson(parsed));
    process.stdout.write(`${encodeInferResponse(response).body as string}\n`);
  } finally {
    await repo.close();
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return;
  }
  const [first, ...rest] = argv;
  if (first === 'predict') return predictCommand(rest);
  if (first === 'serve') return serveCommand(rest);
  return serveCommand(argv);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  // Protocol errors print as the REST API's error body; anything else as one line. Never a stack trace.
  if (e instanceof InferenceError) process.stderr.write(`${JSON.stringify(errorBody(toInferenceError(e)))}\n`);
  else process.stderr.write(`dais-edge: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
