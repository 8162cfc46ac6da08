// `dais build <model> --target lambda ...`: flags, checks and the printed report; bundle.ts does the work.
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { buildLambda, type LambdaBuildOptions, type LambdaBuildResult } from './bundle.ts';
import { LAMBDA_LIMITS, LambdaLimitError, mb, withQuantizeCommand } from './limits.ts';
import { LAMBDA_RUNTIMES, type LambdaArch, type LambdaRuntime } from './sam.ts';

export const help = `Usage: dais build <model.onnx | model.h5 | model-dir | repository-dir> --target lambda --out <dir> [options]

Builds an AWS Lambda function answering the Open Inference Protocol (v2) through a function URL, API Gateway
(HTTP API or REST API), an ALB, or direct invocation with a v2 request object. Writes to <dir>:
  function/        the function's files: index.mjs (handler, bundled and minified), models/, and
                   onnxruntime/ (the native binding for --arch only)
  function.zip     the deployment package, checked against Lambda's limits (50 MB zipped for a direct
                   upload, 250 MB unzipped)
  template.yaml    AWS SAM template: function, memory, architecture, timeout, function URL, and optionally
                   provisioned/reserved concurrency and a keep-warm schedule (deploy: sam deploy --guided)
  Dockerfile       the container-image variant (public.ecr.aws/lambda/nodejs), for models over the zip limits

Options:
  --out <dir>                  where to write (required)
  --name <name>                the model's name when building one model (default: its folder's name)
  --arch <x86_64|arm64>        Lambda architecture (default x86_64); only that onnxruntime binary is packed
  --runtime <${LAMBDA_RUNTIMES.join('|')}>   (default nodejs22.x)
  --memory <MB>                128 to 10240 (default 1024; 1769 MB = one vCPU)
  --timeout <s>                1 to 900 (default 30)
  --provisioned <n>            provisioned concurrency: n environments kept initialised (billed while on)
  --reserved <n>               reserved concurrency: at most n environments at once
  --keep-warm <minutes>        a schedule pinging the function every <minutes> (it answers without inferring)
  --url-auth <iam|none>        function URL auth: iam = signed requests only (default), none = public
  --package <zip|image>        zip (default) or a container image (up to 10 GB; template uses PackageType Image)
  --via-s3                     the zip is deployed through S3 (as sam deploy does): skip the 50 MB direct-upload limit
  --lazy                       open the model on the first invocation instead of during INIT (for models whose
                               load would pass Lambda's 10 s INIT limit)
  --no-warmup                  skip the run on zeros during INIT that spares the first caller onnxruntime's
                               first-run setup
  --strict                     refuse the build when the measured cold start passes a limit (below)
  --no-init-check              skip the cold start the build measures: one fresh process in the emulator
                               (as dais invoke) answering each model's largest sample request (requests/
                               beside the model, else zeros at batch 1); over --memory, over the 10 s INIT
                               limit, or a request or answer over 6 MB is a warning (an error with --strict)
  --no-minify                  keep the handler readable
  --json                       print the build report as JSON
  -h, --help                   show this help

Examples:
  dais build examples/mlp --target lambda --out dist/mlp-lambda
  dais invoke dist/mlp-lambda --event examples/mlp/requests/single.json --cold 5 --warm 20
  cd dist/mlp-lambda && sam deploy --guided
`;

function intOption(name: string, value: string | undefined, fallback: number | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got '${value}'`);
  return n;
}

export function parseArch(value: string | undefined): LambdaArch {
  if (value === undefined || value === 'x86_64' || value === 'x64' || value === 'amd64') return 'x86_64';
  if (value === 'arm64' || value === 'aarch64') return 'arm64';
  throw new Error(`--arch must be x86_64 or arm64 (Lambda's names), got '${value}'`);
}

export function parseBuildFlags(model: string, argv: string[]): LambdaBuildOptions & { json: boolean } {
  let v;
  try {
    v = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: 'string' },
        name: { type: 'string' },
        arch: { type: 'string' },
        runtime: { type: 'string' },
        memory: { type: 'string' },
        timeout: { type: 'string' },
        provisioned: { type: 'string' },
        reserved: { type: 'string' },
        'keep-warm': { type: 'string' },
        'url-auth': { type: 'string' },
        package: { type: 'string' },
        'via-s3': { type: 'boolean' },
        lazy: { type: 'boolean' },
        'no-minify': { type: 'boolean' },
        'no-warmup': { type: 'boolean' },
        strict: { type: 'boolean' },
        'no-init-check': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw new Error(`${(e as Error).message.split('\n')[0]} (see 'dais build --target lambda --help')`);
  }
  if (!v.out) throw new Error("--out <dir> is required: the folder to write function/, function.zip and template.yaml to");
  const runtime = (v.runtime ?? 'nodejs22.x') as LambdaRuntime;
  if (!LAMBDA_RUNTIMES.includes(runtime)) throw new Error(`--runtime must be one of ${LAMBDA_RUNTIMES.join(', ')}, got '${v.runtime}'`);
  const pkg = v.package ?? 'zip';
  if (pkg !== 'zip' && pkg !== 'image') throw new Error(`--package must be zip or image, got '${pkg}'`);
  const auth = v['url-auth'] ?? 'iam';
  if (auth !== 'iam' && auth !== 'none') throw new Error(`--url-auth must be iam or none, got '${auth}'`);
  const provisioned = intOption('provisioned', v.provisioned, undefined, 1, 10_000);
  const reserved = intOption('reserved', v.reserved, undefined, 0, 10_000);
  if (provisioned !== undefined && reserved !== undefined && provisioned > reserved) {
    throw new Error(`--provisioned ${provisioned} is more than --reserved ${reserved}: Lambda cannot keep more environments ready than it may run`);
  }
  return {
    model,
    out: v.out,
    name: v.name,
    arch: parseArch(v.arch),
    runtime,
    memoryMb: intOption('memory', v.memory, 1024, 128, 10_240)!,
    timeoutS: intOption('timeout', v.timeout, 30, 1, 900)!,
    provisioned,
    reserved,
    keepWarmMinutes: intOption('keep-warm', v['keep-warm'], undefined, 1, 60),
    urlAuth: auth === 'none' ? 'NONE' : 'AWS_IAM',
    packageType: pkg,
    viaS3: v['via-s3'] ?? false,
    lazy: v.lazy ?? false,
    minify: !v['no-minify'],
    warmup: !v['no-warmup'],
    strict: v.strict ?? false,
    initCheck: !v['no-init-check'],
    json: v.json ?? false,
  };
}

export function formatReport(r: LambdaBuildResult, options: LambdaBuildOptions): string {
  const fromHere = relative(process.cwd(), r.out) || '.';
  const rel = fromHere.startsWith('..') ? r.out : fromHere;
  const models = r.models.map((m) => `${m.name} v${m.version}`).join(', ');
  const lines = [
    `Lambda function (${options.runtime}, ${options.arch}, ${options.memoryMb} MB) for ${models} → ${rel}/`,
    `  function/index.mjs       ${mb(r.sizes.handlerBytes)}  handler: dais core + onnxruntime-node JS${options.minify === false ? '' : ', minified'}`,
    `  function/onnxruntime/    ${mb(r.sizes.runtimeBytes)}  onnxruntime ${r.onnxruntime.version}, linux ${r.onnxruntime.arch} only`,
    `  function/models/         ${mb(r.sizes.modelBytes)}`,
    `  unzipped                 ${mb(r.sizes.unzippedBytes)} of Lambda's 250 MB (${((r.sizes.unzippedBytes / LAMBDA_LIMITS.unzippedBytes) * 100).toFixed(0)}%)`,
  ];
  if (r.sizes.zipBytes !== undefined) {
    lines.push(`  function.zip             ${mb(r.sizes.zipBytes)} of Lambda's 50 MB for a direct upload (${((r.sizes.zipBytes / LAMBDA_LIMITS.zipDirectUploadBytes) * 100).toFixed(0)}%)`);
  }
  lines.push('  template.yaml, Dockerfile');
  const c = r.initCheck;
  if (c) {
    const answers = c.responseBytes.filter((n) => !Number.isNaN(n));
    lines.push(
      `  cold start here          INIT ${c.initMs === undefined ? '?' : `${(c.initMs / 1000).toFixed(2)} s`} of Lambda's 10 s, peak ${c.maxMemoryUsedMb} MB of --memory ${options.memoryMb}` +
        (answers.length ? `, largest answer ${sizeText(Math.max(...answers))} of 6 MB` : ''),
    );
    for (const p of c.problems) lines.push(`  warning: ${p}`);
  }
  for (const m of r.models) for (const n of m.notes) lines.push(`  note (${m.name}): ${n}`);
  const deploy = options.packageType === 'image' ? `cd ${rel} && sam build && sam deploy --guided   (sam build builds the image with Docker)` : `cd ${rel} && sam deploy --guided`;
  lines.push('', `Try it here:  dais invoke ${rel} --event <request.json> --cold 5 --warm 20`, `Deploy:       ${deploy}`);
  return `${lines.join('\n')}\n`;
}

/** KB under a megabyte, where mb() would print 0.0. */
function sizeText(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : mb(bytes);
}

export async function runBuild(model: string, argv: string[]): Promise<number> {
  const { json, ...options } = parseBuildFlags(model, argv);
  let result;
  try {
    result = await buildLambda(options);
  } catch (e) {
    // The command line as typed (the model may be an optimized temporary copy by now).
    throw e instanceof LambdaLimitError ? withQuantizeCommand(e, process.argv.slice(2)) : e;
  }
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result, options));
  return 0;
}
