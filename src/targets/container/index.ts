// The container target as a library: one options object in, a report out.
import { basename } from 'node:path';
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
}

export interface ContainerBuildReport {
  out: string;
  arch: ImageArch;
  port: number;
  models: ContextModel[];
  files: string[];
  image?: ImageReport & { naive: NaiveComparison };
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
  return report;
}

export { generateDockerfile, generateDockerignore, DEFAULT_NODE_IMAGE, DEFAULT_PORT } from './dockerfile.ts';
export { buildImage, type ImageReport } from './oci/image.ts';
