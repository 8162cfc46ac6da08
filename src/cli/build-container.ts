// `dais build <model> --target container ...`: flags, checks and the printed report; the builders do the work.
import { basename, resolve } from 'node:path';
import { buildContainer, type ContainerBuildReport } from '../targets/container/index.ts';
import { DEFAULT_NODE_IMAGE, DEFAULT_PORT } from '../targets/container/dockerfile.ts';
import { DEFAULT_K8S } from '../targets/container/k8s.ts';
import { parseArch } from '../targets/container/platform.ts';
import { CliError, flags, intFlag, parseFlags } from './command.ts';

export const help = `Usage: dais build <model.onnx | model.h5 | repository-dir> --target container --out <dir> [options]

Writes a Docker build context for a model server speaking the Open Inference Protocol (v2): a multi-stage
Dockerfile on the official Node.js LTS slim image, .dockerignore, package.json + lock (onnxruntime-node,
and sharp when a model declares preprocess.image), app/server.mjs (dais serve, bundled) and models/ (the model
repository; Keras files become ONNX).

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
  --k8s                   also write Kubernetes manifests (k8s/: Deployment, Service, HorizontalPodAutoscaler,
                          PodDisruptionBudget, kustomization.yaml) and a KServe InferenceService (kserve/);
                          memory requests/limits come from the server's peak RSS, measured by running it here
                          and answering each model's largest sample request (requests/ beside the model,
                          else zeros at batch 1)
  --cpu <cores>           --k8s: CPU request per pod (default ${DEFAULT_K8S.cpu}); the autoscaler targets ${DEFAULT_K8S.targetCpuPercent}% of it
  --min-replicas <n>      --k8s: fewest pods (default ${DEFAULT_K8S.minReplicas}, so a node drain keeps one serving)
  --max-replicas <n>      --k8s: most pods (default ${DEFAULT_K8S.maxReplicas})
  --json                  print the build report as JSON
  -h, --help              show this help

Examples:
  dais build examples --target container --out dist/ctx && docker build -t my-models dist/ctx
  dais build examples --target container --out dist/ctx --image dist/img.tar && docker load -i dist/img.tar
`;

/** The container target's flags (`dais build` reads which take no value from here). */
export const FLAGS = flags({ string: ['out', 'arch', 'port', 'node-image', 'image', 'base', 'tag', 'gzip-level', 'cpu', 'min-replicas', 'max-replicas'], boolean: ['k8s', 'json'] });

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

function cpuOption(value: string | undefined): number {
  if (value === undefined) return DEFAULT_K8S.cpu;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 256 || Math.round(n * 1000) !== n * 1000) throw new CliError(`--cpu must be a number of cores from 0.1 to 256 (e.g. 0.5, 2), got '${value}'`);
  return n;
}

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
  if (r.k8s) {
    const m = r.k8s.memory;
    lines.push(`wrote ${r.k8s.files.join(', ')} for image ${r.k8s.image}`);
    const answered = r.k8s.answered.map((a) => `${a.model} (${a.request === 'zeros at batch 1' ? a.request : basename(a.request)}: HTTP ${a.status}, ${mb(a.responseBytes)} answer)`).join(', ');
    const ph = r.k8s.phases;
    const phases = `loading ${mb(ph.loadPeakRssBytes)} (ready in ${(r.k8s.readyMs / 1000).toFixed(1)} s, ${mb(ph.readyRssBytes)} resident)` + (ph.answerPeakRssBytes === undefined ? '' : `, answering ${mb(ph.answerPeakRssBytes)}`);
    lines.push(`  memory: measured peak RSS ${mb(m.measuredPeakRssBytes)} — ${phases} — after answering ${answered} → request ${m.request}, limit ${m.limit}`);
    for (const a of r.k8s.answered) if (a.status !== 200) lines.push(`  warning: ${a.model} answered its sample request with HTTP ${a.status}: the peak may leave out a real answer`);
    lines.push(`  kubectl apply -k ${r.out}/k8s   or, with KServe:   kubectl apply -f ${r.out}/kserve/inferenceservice.yaml`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

/** Entry called by `dais build`; returns the exit code, and reports bad input in one line. */
export async function runBuild(model: string, argv: string[]): Promise<number> {
  let report: ContainerBuildReport;
  let json = false;
  try {
    const v = parseFlags('build --target container', argv, FLAGS).values;
    json = v.json === true;
    if (!v.out) throw new CliError('--out <dir> is required: the folder to write the build context to');
    if (!v.image && v.base) throw new CliError('--base describes the image archive: add --image <file.tar>');
    if (!v.image && !v.k8s && v.tag) throw new CliError('--tag names the image archive (and the manifests\' image): add --image <file.tar> or --k8s');
    if (!v.k8s && (v.cpu || v['min-replicas'] || v['max-replicas'])) throw new CliError('--cpu, --min-replicas and --max-replicas size the Kubernetes manifests: add --k8s');
    report = await buildContainer({
      model: resolve(model),
      out: resolve(v.out),
      arch: parseArch(v.arch),
      port: intFlag('port', v.port, DEFAULT_PORT, 1, 65535),
      nodeImage: v['node-image'] ?? DEFAULT_NODE_IMAGE,
      image: v.image ? resolve(v.image) : undefined,
      base: v.base,
      tag: v.tag,
      gzipLevel: intFlag('gzip-level', v['gzip-level'], 6, 1, 9),
      k8s: v.k8s
        ? {
            cpu: cpuOption(v.cpu),
            minReplicas: intFlag('min-replicas', v['min-replicas'], DEFAULT_K8S.minReplicas, 1, 1000),
            maxReplicas: intFlag('max-replicas', v['max-replicas'], DEFAULT_K8S.maxReplicas, 1, 1000),
          }
        : undefined,
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
