// `dais build <model> --target lambda ...`: flags, checks and the printed report; bundle.ts does the work.
import { relative } from 'node:path';
import { buildLambda, type LambdaBuildOptions, type LambdaBuildResult } from '../targets/lambda/bundle.ts';
import { LAMBDA_LIMITS, LambdaLimitError, mb, withQuantizeCommand } from '../targets/lambda/limits.ts';
import { LAMBDA_RUNTIMES, type LambdaArch, type LambdaRuntime } from '../targets/lambda/sam.ts';
import { CliError, flags, intFlag, parseFlags } from './command.ts';

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

/** The lambda target's flags (`dais build` reads which take no value from here). */
export const FLAGS = flags({
  string: ['out', 'name', 'arch', 'runtime', 'memory', 'timeout', 'provisioned', 'reserved', 'keep-warm', 'url-auth', 'package'],
  boolean: ['via-s3', 'lazy', 'no-minify', 'no-warmup', 'strict', 'no-init-check', 'json'],
});

export function parseArch(value: string | undefined): LambdaArch {
  if (value === undefined || value === 'x86_64' || value === 'x64' || value === 'amd64') return 'x86_64';
  if (value === 'arm64' || value === 'aarch64') return 'arm64';
  throw new CliError(`--arch must be x86_64 or arm64 (Lambda's names), got '${value}'`);
}

export function parseBuildFlags(model: string, argv: string[]): LambdaBuildOptions & { json: boolean } {
  const v = parseFlags('build --target lambda', argv, FLAGS).values;
  if (!v.out) throw new CliError("--out <dir> is required: the folder to write function/, function.zip and template.yaml to");
  const runtime = (v.runtime ?? 'nodejs22.x') as LambdaRuntime;
  if (!LAMBDA_RUNTIMES.includes(runtime)) throw new CliError(`--runtime must be one of ${LAMBDA_RUNTIMES.join(', ')}, got '${v.runtime}'`);
  const pkg = v.package ?? 'zip';
  if (pkg !== 'zip' && pkg !== 'image') throw new CliError(`--package must be zip or image, got '${pkg}'`);
  const auth = v['url-auth'] ?? 'iam';
  if (auth !== 'iam' && auth !== 'none') throw new CliError(`--url-auth must be iam or none, got '${auth}'`);
  const provisioned = intFlag('provisioned', v.provisioned, undefined, 1, 10_000);
  const reserved = intFlag('reserved', v.reserved, undefined, 0, 10_000);
  if (provisioned !== undefined && reserved !== undefined && provisioned > reserved) {
    throw new CliError(`--provisioned ${provisioned} is more than --reserved ${reserved}: Lambda cannot keep more environments ready than it may run`);
  }
  return {
    model,
    out: v.out,
    name: v.name,
    arch: parseArch(v.arch),
    runtime,
    memoryMb: intFlag('memory', v.memory, 1024, 128, 10_240),
    timeoutS: intFlag('timeout', v.timeout, 30, 1, 900),
    provisioned,
    reserved,
    keepWarmMinutes: intFlag('keep-warm', v['keep-warm'], undefined, 1, 60),
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

/** What the processing line counts: the tokenizer library and sharp, each only when a model's steps need it. */
function processingParts(r: LambdaBuildResult): string {
  const parts = [];
  if (r.files.includes('function/tokenizer.mjs')) parts.push('tokenizer.mjs (Hugging Face tokenizers)');
  if (r.files.includes('function/image-decoder.mjs')) parts.push(`image-decoder.mjs + node_modules/ (sharp with libvips, linux ${r.onnxruntime.arch})`);
  return parts.join(', ');
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
    ...(r.sizes.processingBytes ? [`  declared processing      ${mb(r.sizes.processingBytes)}  ${processingParts(r)}`] : []),
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
