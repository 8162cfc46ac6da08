// `dais build <model> --target kserve ...`: the serving runtime's image (no model inside: KServe mounts it at
// /mnt/models), optionally a modelcar image holding the model, and the KServe / Kubernetes manifests.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeBuildContext } from '../targets/container/context.ts';
import { DEFAULT_NODE_IMAGE } from '../targets/container/dockerfile.ts';
import { defaultTag } from '../targets/container/index.ts';
import { k8sName, toYaml } from '../targets/container/k8s.ts';
import { measureServingMemory, memoryResources } from '../targets/container/memory.ts';
import { buildImage, checkImagePlan, type ImageReport } from '../targets/container/oci/image.ts';
import { buildModelcar } from '../targets/container/oci/modelcar.ts';
import { parseArch } from '../targets/container/platform.ts';
import { KSERVE_DEFAULTS, kserveManifests, type KServeOptions } from '../targets/kserve/manifests.ts';
import { CliError, flags, intFlag, numberFlag, parseFlags } from './command.ts';

export const help = `Usage: dais build <model.onnx | model.h5 | repository-dir> --target kserve --out <dir> [options]

dais as a KServe serving runtime. Writes to <dir>/kserve/:
  servingruntime.yaml, clusterservingruntime.yaml   the runtime (serving.kserve.io/v1alpha1): ONNX models,
                         protocols v2 and grpc-v2, container kserve-container with --model_name={{.Name}}
  inferenceservice.yaml  an InferenceService using it (modelFormat, runtime, protocolVersion v2, storageUri,
                         replicas, scale metric, canaryTrafficPercent, logger)
  deployment.yaml        the same server without KServe (model at /mnt/models from a volume)
  hpa-queue.yaml         HorizontalPodAutoscaler on queue length + the prometheus-adapter rule it needs
  keda-scaledobject.yaml KEDA ScaledObject with a prometheus trigger on the same signal
Memory requests/limits come from the server's peak RSS, measured by running it here on the model.

Options:
  --out <dir>               where to write (required)
  --image <file.tar>        also write the runtime's OCI image archive (no model inside), built without Docker
  --modelcar <file.tar>     also write a modelcar: an OCI image holding only the model under /models
                            (storageUri oci://<modelcar-tag>)
  --modelcar-base oci:<dir>[:ref]  base of the modelcar (KServe's modelcar sidecar needs a shell: e.g. busybox)
  --tag <name:tag>          the runtime image's name (default dais-kserve:latest)
  --modelcar-tag <name:tag> the modelcar's name (default dais-<model>-modelcar:latest)
  --storage-uri <uri>       the InferenceService's storageUri (default: oci://<modelcar-tag> with --modelcar,
                            else pvc://<name>-models)
  --name <name>             the InferenceService's (and the served model's) name (default: the model's)
  --runtime-name <name>     the ServingRuntime's name (default ${KSERVE_DEFAULTS.runtimeName})
  --arch <amd64|arm64>      target CPU (default: this machine's)
  --cpu <cores>             CPU request per pod (default ${KSERVE_DEFAULTS.cpu})
  --min-replicas <n>        (default ${KSERVE_DEFAULTS.minReplicas}; 0 lets KServe scale to zero)
  --max-replicas <n>        (default ${KSERVE_DEFAULTS.maxReplicas})
  --scale-target <n>        requests in flight per pod KServe's autoscaler keeps (default ${KSERVE_DEFAULTS.scaleTarget})
  --canary-percent <0-100>  canaryTrafficPercent: share of traffic the newest revision gets (default ${KSERVE_DEFAULTS.canaryTrafficPercent})
  --logger-url <url>        KServe logger sink (default ${KSERVE_DEFAULTS.loggerUrl}, KServe's documented example)
  --queue-target <n>        mean requests waiting per pod at which the HPA / KEDA add pods (default ${KSERVE_DEFAULTS.queueTarget})
  --prometheus-url <url>    the Prometheus KEDA queries (default ${KSERVE_DEFAULTS.prometheusUrl})
  --memory-budget <MiB>     serve a repository of several models within this budget (dais serve --memory-budget)
  --json                    print the build report as JSON
  -h, --help                show this help
`;

export interface KServeBuildReport {
  out: string;
  files: string[];
  name: string;
  models: { name: string; version: string }[];
  memory: KServeOptions['memory'];
  image?: ImageReport;
  modelcar?: ImageReport;
}

/** The kserve target's flags (`dais build` reads which take no value from here). */
export const FLAGS = flags({
  string: ['out', 'image', 'modelcar', 'modelcar-base', 'tag', 'modelcar-tag', 'storage-uri', 'name', 'runtime-name', 'arch', 'cpu', 'min-replicas', 'max-replicas', 'scale-target', 'canary-percent', 'logger-url', 'queue-target', 'prometheus-url', 'memory-budget'],
  boolean: ['json'],
});

export async function buildKServe(model: string, argv: string[]): Promise<KServeBuildReport> {
  const v = parseFlags('build --target kserve', argv, FLAGS).values;
  if (!v.out) throw new CliError('--out <dir> is required: the folder to write the manifests (and images) to');
  if (v['modelcar-base'] && !v.modelcar) throw new CliError('--modelcar-base describes the modelcar: add --modelcar <file.tar>');
  const arch = parseArch(v.arch);
  const tag = v.tag ?? 'dais-kserve:latest';
  if (v.image) checkImagePlan({ reference: tag, arch });
  const out = resolve(v.out);
  const ctxDir = join(out, 'context');
  // keras: the runtime serves whatever storageUri holds, .h5/.keras included (SUPPORTED_MODEL_FORMATS); and
  // imageDecoder: any of those models may declare preprocess.image, so sharp ships always (docs/kserve.md: its size).
  const ctx = await writeBuildContext({ model: resolve(model), out: ctxDir, arch, port: KSERVE_DEFAULTS.httpPort, nodeImage: DEFAULT_NODE_IMAGE, keras: true, imageDecoder: true });
  const names = [...new Set(ctx.models.map((m) => m.name))];
  const name = k8sName(v.name ?? (names.length === 1 ? names[0] : `dais-${names.length}-models`));
  const report: KServeBuildReport = { out, files: [], name, models: ctx.models.map((m) => ({ name: m.name, version: m.version })), memory: memoryResources(0) };
  const modelcarTag = v['modelcar-tag'] ?? defaultTag(ctx.models, model).replace(/:latest$/, '-modelcar:latest');
  if (v.modelcar) {
    report.modelcar = await buildModelcar({ models: join(ctxDir, 'models'), archive: resolve(v.modelcar), reference: modelcarTag, arch, base: v['modelcar-base'], modelNames: names });
  }
  const measured = await measureServingMemory(ctxDir);
  const budget = intFlag('memory-budget', v['memory-budget'], undefined, 1, 16 << 20);
  const o: KServeOptions = {
    ...KSERVE_DEFAULTS,
    name,
    runtimeName: k8sName(v['runtime-name'] ?? KSERVE_DEFAULTS.runtimeName),
    image: tag,
    modelName: names.length === 1 ? name : names[0],
    modelFormat: 'onnx', // Keras files are converted to ONNX in the build context
    storageUri: v['storage-uri'] ?? (v.modelcar ? `oci://${modelcarTag}` : `pvc://${name}-models`),
    memory: memoryResources(measured.peakRssBytes + (budget ?? 0) * 1024 * 1024),
    cpu: numberFlag('cpu', v.cpu, KSERVE_DEFAULTS.cpu, 0.1, 256, false),
    minReplicas: intFlag('min-replicas', v['min-replicas'], KSERVE_DEFAULTS.minReplicas, 0, 1000),
    maxReplicas: intFlag('max-replicas', v['max-replicas'], KSERVE_DEFAULTS.maxReplicas, 1, 1000),
    scaleTarget: intFlag('scale-target', v['scale-target'], KSERVE_DEFAULTS.scaleTarget, 1, 10_000),
    canaryTrafficPercent: intFlag('canary-percent', v['canary-percent'], KSERVE_DEFAULTS.canaryTrafficPercent, 0, 100),
    loggerUrl: v['logger-url'] ?? KSERVE_DEFAULTS.loggerUrl,
    queueTarget: numberFlag('queue-target', v['queue-target'], KSERVE_DEFAULTS.queueTarget, 0.001, 10_000, false),
    prometheusUrl: v['prometheus-url'] ?? KSERVE_DEFAULTS.prometheusUrl,
    memoryBudgetMb: budget,
  };
  if (o.minReplicas > o.maxReplicas) throw new CliError(`--min-replicas ${o.minReplicas} is above --max-replicas ${o.maxReplicas}`);
  report.memory = o.memory;
  await rm(join(out, 'kserve'), { recursive: true, force: true });
  for (const f of kserveManifests(o)) {
    await mkdir(dirname(join(out, f.path)), { recursive: true });
    await writeFile(join(out, f.path), toYaml(f.objects));
    report.files.push(f.path);
  }
  if (v.image) {
    // One image, any model: the runtime's image holds no model (KServe mounts it at /mnt/models).
    await rm(join(ctxDir, 'models'), { recursive: true, force: true });
    await mkdir(join(ctxDir, 'models'));
    report.image = await buildImage({ context: ctxDir, archive: resolve(v.image), arch, port: o.httpPort, reference: tag, models: [] });
  }
  return report;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export async function runBuild(model: string, argv: string[]): Promise<number> {
  let r: KServeBuildReport;
  try {
    r = await buildKServe(model, argv);
  } catch (e) {
    process.stderr.write(`dais build: ${(e as Error).message}\n`);
    return 1;
  }
  if (argv.includes('--json')) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  const lines = [`wrote ${r.files.join(', ')} in ${r.out} (${r.models.map((m) => `${m.name} v${m.version}`).join(', ')})`];
  lines.push(`  memory: request ${r.memory.request}, limit ${r.memory.limit} (from the measured peak RSS)`);
  if (r.image) lines.push(`wrote runtime image ${r.image.archive}: ${r.image.reference}, ${mb(r.image.compressedSize)} compressed`);
  if (r.modelcar) lines.push(`wrote modelcar ${r.modelcar.archive}: ${r.modelcar.reference}, ${mb(r.modelcar.compressedSize)} compressed`);
  lines.push(`  kubectl apply -f ${r.out}/kserve/servingruntime.yaml -f ${r.out}/kserve/inferenceservice.yaml`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
