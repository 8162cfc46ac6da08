// The container target as a library: one options object in, a report out.
import { writeBuildContext, type ContextModel } from './context.ts';
import type { ImageArch } from './platform.ts';

export interface ContainerBuildOptions {
  /** A model file or a model repository folder. */
  model: string;
  /** The build context folder. */
  out: string;
  arch: ImageArch;
  port: number;
  nodeImage: string;
}

export interface ContainerBuildReport {
  out: string;
  arch: ImageArch;
  port: number;
  models: ContextModel[];
  files: string[];
}

export async function buildContainer(o: ContainerBuildOptions): Promise<ContainerBuildReport> {
  const ctx = await writeBuildContext(o);
  return { out: o.out, arch: o.arch, port: o.port, models: ctx.models, files: ctx.files };
}

export { generateDockerfile, generateDockerignore, DEFAULT_NODE_IMAGE, DEFAULT_PORT } from './dockerfile.ts';
