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

With --image, also writes an OCI image archive, built here without Docker: by default a distroless-style
image (this machine's Node binary, the shared libraries it and onnxruntime link against, a non-root user),
reproducible (same inputs, same digest; timestamps from $SOURCE_DATE_EPOCH or 0).

Options:
  --out <dir>             where to write the build context (required)
  --arch <amd64|arm64>    target CPU (default: this machine's); the image keeps only that onnxruntime binary
  --port <n>              port the server listens on inside the container, as $PORT (default ${DEFAULT_PORT})
  --node-image <ref>      base image of the Dockerfile (default ${DEFAULT_NODE_IMAGE})
  --image <file.tar>      write an OCI image archive (docker load, podman load, skopeo oci-archive:)
  --base oci:<dir>[:ref]  build the archive on a local OCI image layout holding Node (e.g. made with
                          skopeo copy docker://node:22-bookworm-slim oci:<dir>:22); needed for another --arch
  --tag <name:tag>        the archive's image name (default dais-<model>:latest)
  --gzip-level <1-9>      layer compression: 1 is fastest, 9 smallest (default 6)
  --json                  print the build report as JSON
  -h, --help              show this help

Examples:
  dais build examples --target container --out dist/ctx && docker build -t my-models dist/ctx
  dais build examples --target container --out dist/ctx --image dist/img.tar && docker load -i dist/img.tar
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
        image: { type: 'string' },
        base: { type: 'string' },
        tag: { type: 'string' },
        'gzip-level': { type: 'string' },
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

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

function printReport(r: ContainerBuildReport): void {
  const lines = [`wrote build context ${r.out} (${r.models.map((m) => `${m.name} v${m.version}`).join(', ')})`];
  lines.push(`  docker build --platform linux/${r.arch} -t <name> ${r.out} && docker run -p ${r.port}:${r.port} <name>`);
  const img = r.image;
  if (img) {
    lines.push(`wrote image ${img.archive}: ${img.reference} linux/${img.arch}, digest ${img.digest}`);
    lines.push(`  size: ${mb(img.compressedSize)} compressed (what a registry stores), ${mb(img.uncompressedSize)} unpacked; base: ${img.base}`);
    for (const l of img.layers) lines.push(`    ${mb(l.size).padStart(9)} ${mb(l.uncompressedSize).padStart(9)}  ${l.createdBy}`);
    const n = img.naive;
    lines.push(
      `  naive FROM ${n.baseImage} + npm install: base alone ${mb(n.baseCompressedBytes)} compressed (${n.baseSource}) + ${mb(n.nodeModulesBytes)} node_modules; ` +
        `this image is ${(100 * n.imageToNaiveBaseRatio).toFixed(0)}% of the base alone`,
    );
    lines.push(`  docker load -i ${img.archive}   or   skopeo inspect oci-archive:${img.archive}`);
  }
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
    if (!v.image && (v.base || v.tag)) throw new Error('--base and --tag describe the image archive: add --image <file.tar>');
    report = await buildContainer({
      model: resolve(model),
      out: resolve(v.out),
      arch: parseArch(v.arch),
      port: intOption('port', v.port, DEFAULT_PORT, 1, 65535),
      nodeImage: v['node-image'] ?? DEFAULT_NODE_IMAGE,
      image: v.image ? resolve(v.image) : undefined,
      base: v.base,
      tag: v.tag,
      gzipLevel: intOption('gzip-level', v['gzip-level'], 6, 1, 9),
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
