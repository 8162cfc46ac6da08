// The container target as a library: one options object in, a report out.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DEFAULT_K8S, k8sName, manifests, toYaml, type K8sOptions } from './k8s.ts';
import { measureServingMemory, memoryResources, type MemoryMeasurement, type MemoryResources } from './memory.ts';
import { sampleRequests } from '../samples.ts';
import { writeBuildContext, type ContextModel } from './context.ts';
import { compareWithNaive, type NaiveComparison } from './naive.ts';
import { buildImage, checkImagePlan, type ImageReport } from './oci/image.ts';
import type { ImageArch } from './platform.ts';

export interface ContainerBuildOptions {
  /** A model file or a model repository folder. */
  model: string;
  /** The build context folder. */
  out: string;
  arch: ImageArch;
  port: number;
  nodeImage: string;
  /** Also write an OCI image archive here. */
  image?: string;
  /** `oci:<dir>[:<ref>]`: base of the image archive (default: this machine's Node, distroless-style). */
  base?: string;
  /** name:tag of the image archive (default dais-<model or repository>:latest). */
  tag?: string;
  gzipLevel?: number;
  /** Also write Kubernetes and KServe manifests (k8s/, kserve/), sized from the measured memory. */
  k8s?: Partial<Pick<K8sOptions, 'cpu' | 'minReplicas' | 'maxReplicas' | 'targetCpuPercent' | 'drainTimeoutS'>>;
}

export interface ContainerBuildReport {
  out: string;
  arch: ImageArch;
  port: number;
  models: ContextModel[];
  files: string[];
  image?: ImageReport & { naive: NaiveComparison };
  k8s?: {
    files: string[];
    name: string;
    image: string;
    memory: MemoryResources;
    readyMs: number;
    /** The peak while loading, the resident size once ready, the peak while answering the samples (memory.ts). */
    phases: Pick<MemoryMeasurement, 'loadPeakRssBytes' | 'readyRssBytes' | 'answerPeakRssBytes'>;
    answered: MemoryMeasurement['answered'];
  };
}

/** dais-<name>: the model's name for one model, the repository folder's otherwise; lowercase as references must be. */
export function defaultTag(models: ContextModel[], modelPath: string): string {
  const names = [...new Set(models.map((m) => m.name))];
  const raw = names.length === 1 ? names[0] : basename(modelPath);
  const clean = raw.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+|[._-]+$/g, '') || 'model';
  return `dais-${clean}:latest`;
}

export async function buildContainer(o: ContainerBuildOptions): Promise<ContainerBuildReport> {
  if (o.image) checkImagePlan({ reference: o.tag ?? 'dais-model:latest', base: o.base, arch: o.arch });
  const ctx = await writeBuildContext(o);
  const report: ContainerBuildReport = { out: o.out, arch: o.arch, port: o.port, models: ctx.models, files: ctx.files };
  if (o.image) {
    const image = await buildImage({
      context: o.out,
      archive: o.image,
      arch: o.arch,
      port: o.port,
      reference: o.tag ?? defaultTag(ctx.models, o.model),
      base: o.base,
      models: ctx.models,
      gzipLevel: o.gzipLevel,
    });
    report.image = { ...image, naive: compareWithNaive(image.compressedSize, o.arch) };
  }
  if (o.k8s) {
    const samples = new Map<string, string>();
    for (const m of ctx.models) {
      const [largest] = await sampleRequests(m.source);
      if (largest && !samples.has(m.name)) samples.set(m.name, largest.file);
    }
    const measured = await measureServingMemory(o.out, undefined, samples);
    const image = o.tag ?? defaultTag(ctx.models, o.model);
    const k: K8sOptions = {
      ...DEFAULT_K8S,
      ...o.k8s,
      name: k8sName(image),
      image,
      port: o.port,
      memory: memoryResources(measured.peakRssBytes),
      models: [...new Set(ctx.models.map((m) => m.name))],
    };
    if (k.minReplicas > k.maxReplicas) throw new Error(`--min-replicas ${k.minReplicas} is above --max-replicas ${k.maxReplicas}`);
    const files: string[] = [];
    for (const d of ['k8s', 'kserve']) await rm(join(o.out, d), { recursive: true, force: true });
    for (const f of manifests(k)) {
      await mkdir(dirname(join(o.out, f.path)), { recursive: true });
      await writeFile(join(o.out, f.path), toYaml(f.objects));
      files.push(f.path);
    }
    const phases = { loadPeakRssBytes: measured.loadPeakRssBytes, readyRssBytes: measured.readyRssBytes, answerPeakRssBytes: measured.answerPeakRssBytes };
    report.k8s = { files, name: k.name, image, memory: k.memory, readyMs: measured.readyMs, phases, answered: measured.answered };
  }
  return report;
}

export { generateDockerfile, generateDockerignore, DEFAULT_NODE_IMAGE, DEFAULT_PORT } from './dockerfile.ts';
export { buildImage, type ImageReport } from './oci/image.ts';
