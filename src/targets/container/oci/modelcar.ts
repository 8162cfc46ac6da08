// A modelcar: an OCI image that holds only a model repository under /models, for KServe's OCI storage
// (storageUri: oci://<image>). The model then ships, caches and deduplicates on nodes as an image layer, and a
// new model version is a new small image, not a new server image. Written without a container engine, as the
// server image is. KServe starts the modelcar as a sidecar that links its /models into the server's
// /mnt/models with `sh -c 'ln … && sleep …'`, so for KServe build it on a base that has a shell (`--modelcar-base
// oci:<dir>` holding e.g. busybox); without a base it is models only (FROM scratch), which image volumes
// (`podman --mount type=image`, Kubernetes image volumes) and `podman image mount` read as they are.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import type { ImageArch } from '../platform.ts';
import { parseBaseSpec, readBaseImage } from './base-layout.ts';
import { checkReference, jsonBlob, MEDIA, sourceDateEpoch, splitReference, writeArchive, type Blob, type ImageReport } from './image.ts';
import { LayerBuilder, writeLayer } from './layer.ts';

/** Where a modelcar holds the model: KServe links this folder to /mnt/models. */
export const MODELCAR_MODELS_DIR = '/models';

export interface ModelcarOptions {
  /** The model repository folder to put in the image (the build context's models/). */
  models: string;
  archive: string;
  reference: string;
  arch: ImageArch;
  /** `oci:<dir>[:<ref>]`: a base with a shell (busybox) for KServe's modelcar sidecar; default none. */
  base?: string;
  gzipLevel?: number;
  /** Described in the image's labels. */
  modelNames: string[];
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

export async function buildModelcar(o: ModelcarOptions): Promise<ImageReport> {
  checkReference(o.reference);
  if (o.base) parseBaseSpec(o.base);
  if (!existsSync(o.models)) throw new Error(`${o.models} does not exist: nothing to put in the modelcar`);
  const epoch = sourceDateEpoch();
  const mtime = new Date(epoch * 1000);
  const created = mtime.toISOString().replace(/\.000Z$/, 'Z');
  const base = o.base ? await readBaseImage(o.base, o.arch) : undefined;
  const work = await mkdtemp(join(tmpdir(), 'dais-modelcar-'));
  try {
    // Readable by any user: the server reading it through /mnt/models runs as non-root.
    const layer = new LayerBuilder(`dais: ${MODELCAR_MODELS_DIR} (${o.modelNames.join(', ')})`);
    layer.dir(MODELCAR_MODELS_DIR);
    for (const f of filesUnder(o.models)) layer.file(posix.join(MODELCAR_MODELS_DIR, relative(o.models, f).split('\\').join('/')), { source: f, size: statSync(f).size });
    const blob = await writeLayer(layer, { dir: work, mtime, gzipLevel: o.gzipLevel });
    const baseConfig = (base?.config.config ?? {}) as Record<string, unknown>;
    const config = jsonBlob({
      ...(base ? base.config : {}),
      created,
      architecture: o.arch,
      os: 'linux',
      config: {
        ...baseConfig,
        Labels: { ...((baseConfig.Labels as Record<string, string> | null) ?? {}), 'org.opencontainers.image.title': splitReference(o.reference).name, 'ai.dais.modelcar': o.modelNames.join(',') },
      },
      rootfs: { type: 'layers', diff_ids: [...(base?.diffIds ?? []), blob.diffId] },
      history: [...(base?.history ?? []), { created, created_by: blob.createdBy }],
    });
    const layers = [...(base?.layers ?? []).map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, file: l.file, uncompressedSize: l.uncompressedSize, createdBy: l.createdBy, fromBase: true })), { mediaType: blob.mediaType, digest: blob.digest, size: blob.size, file: blob.file, uncompressedSize: blob.uncompressedSize, createdBy: blob.createdBy, fromBase: false }];
    const manifest = jsonBlob({ schemaVersion: 2, mediaType: MEDIA.manifest, config: { mediaType: MEDIA.config, digest: config.digest, size: config.size }, layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })) });
    const { name, tag } = splitReference(o.reference);
    const index = jsonBlob({
      schemaVersion: 2,
      mediaType: MEDIA.index,
      manifests: [{ mediaType: MEDIA.manifest, digest: manifest.digest, size: manifest.size, platform: { architecture: o.arch, os: 'linux' }, annotations: { 'io.containerd.image.name': `${name}:${tag}`, 'org.opencontainers.image.ref.name': tag } }],
    });
    const path = (digest: string) => `blobs/sha256/${digest.slice('sha256:'.length)}`;
    const files: Array<{ name: string; blob: Blob }> = [
      { name: 'oci-layout', blob: jsonBlob({ imageLayoutVersion: '1.0.0' }) },
      { name: 'index.json', blob: index },
      { name: 'manifest.json', blob: jsonBlob([{ Config: path(config.digest), RepoTags: [`${name}:${tag}`], Layers: layers.map((l) => path(l.digest)) }]) },
      { name: path(config.digest), blob: config },
      { name: path(manifest.digest), blob: manifest },
      ...layers.map((l) => ({ name: path(l.digest), blob: { digest: l.digest, size: l.size, file: l.file } })),
    ];
    await mkdir(dirname(o.archive), { recursive: true });
    const tmp = `${o.archive}.${process.pid}.partial`;
    await writeArchive(tmp, [...new Map(files.map((f) => [f.name, f])).values()], mtime);
    await rename(tmp, o.archive);
    return {
      archive: o.archive,
      reference: `${name}:${tag}`,
      digest: manifest.digest,
      configDigest: config.digest,
      arch: o.arch,
      base: o.base ?? 'none (models only)',
      layers: layers.map((l) => ({ digest: l.digest, size: l.size, uncompressedSize: l.uncompressedSize, createdBy: l.createdBy, fromBase: l.fromBase })),
      compressedSize: layers.reduce((s, l) => s + l.size, 0) + config.size + manifest.size,
      uncompressedSize: layers.reduce((s, l) => s + l.uncompressedSize, 0),
      archiveSize: statSync(o.archive).size,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
