// `dais build <model> --target container ...`: flags, checks and the printed report; the builders do the work.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildContainer, type ContainerBuildReport } from './index.ts';
import { DEFAULT_NODE_IMAGE, DEFAULT_PORT } from './dockerfile.ts';
import { parseArch } from './platform.ts';

export const help = `Usage: dais build <model.onnx | model.h5 | repository-dir> --target container --out <dir> [options]

Writes a Docker build context for a model server speaking the Open Inference Protocol (v2): a multi-stage
Dockerfile on the official Node.js LTS slim image, .dockerignore, package.json + lock (onnxruntime-node
only), app/server.mjs (dais serve, bundled) and models/ (the model repository; Keras files become ONNX).

Options:
  --out <dir>             where to write the build context (required)
  --arch <amd64|arm64>    target CPU (default: this machine's); the image keeps only that onnxruntime binary
  --port <n>              port the server listens on inside the container, as $PORT (default ${DEFAULT_PORT})
  --node-image <ref>      base image of the Dockerfile (default ${DEFAULT_NODE_IMAGE})
  --json                  print the build report as JSON
  -h, --help              show this help

Then: docker build -t my-model <dir> && docker run -p 8080:8080 my-model
`;

function flags(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: 'string' },
        arch: { type: 'string' },
        port: { type: 'string' },
        'node-image': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw new Error(`${(e as Error).message.split('\n')[0]} (see 'dais build --target container --help')`);
  }
}

function intOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got '${value}'`);
  return n;
}

function printReport(r: ContainerBuildReport): void {
  const lines = [`wrote build context ${r.out} (${r.models.map((m) => `${m.name} v${m.version}`).join(', ')})`];
  lines.push(`  docker build --platform linux/${r.arch} -t <name> ${r.out} && docker run -p ${r.port}:${r.port} <name>`);
  process.stdout.write(lines.join('\n') + '\n');
}

/** Entry called by `dais build`; returns the exit code, and reports bad input in one line. */
export async function runBuild(model: string, argv: string[]): Promise<number> {
  let report: ContainerBuildReport;
  let json = false;
  try {
    const v = flags(argv);
    json = v.json === true;
    if (!v.out) throw new Error('--out <dir> is required: the folder to write the build context to');
    report = await buildContainer({
      model: resolve(model),
      out: resolve(v.out),
      arch: parseArch(v.arch),
      port: intOption('port', v.port, DEFAULT_PORT, 1, 65535),
      nodeImage: v['node-image'] ?? DEFAULT_NODE_IMAGE,
    });
  } catch (e) {
    process.stderr.write(`dais build: ${(e as Error).message}\n`);
    if (process.env.DAIS_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else printReport(report);
  return 0;
}
