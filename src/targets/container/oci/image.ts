// An OCI image archive written without a container engine: layers assembled here, then an OCI image layout
// (oci-layout, index.json, blobs/sha256/…) in one tar, plus Docker's manifest.json so `docker load` reads
// it too. `skopeo inspect oci-archive:<file>` and `umoci unpack` read it as OCI.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar, { type Header } from 'tar-stream';
import { APP_DIR, DEFAULT_PORT, healthcheckScript, MODELS_DIR, SERVER_FILE } from '../dockerfile.ts';
import { hostArch, type ImageArch } from '../platform.ts';
import { parseBaseSpec, readBaseImage, type BaseImage } from './base-layout.ts';
import { LayerBuilder, writeLayer, type LayerBlob } from './layer.ts';
import type { SharpPackages } from '../../sharp-package.ts';
import { contextDecodesImages } from '../bundle.ts';
import { addHostNodeRuntime, addOnnxruntimePackages, addSharpPackages, imageSharp, NODE_PATH_IN_IMAGE, NONROOT_UID } from './runtime-files.ts';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
} as const;

export interface ImageOptions {
  /** The build context written by writeBuildContext: app/server.mjs and models/ are taken from it. */
  context: string;
  /** The .tar to write. */
  archive: string;
  arch: ImageArch;
  port?: number;
  /** name:tag, e.g. dais-digits:latest. */
  reference: string;
  /** A local OCI image layout to build on (`oci:<dir>[:<ref>]`); default: this machine's Node (distroless-style). */
  base?: string;
  /** Every timestamp in the image (seconds since 1970); default $SOURCE_DATE_EPOCH or 0. */
  sourceDateEpoch?: number;
  /** Models described in the image's labels. */
  models: Array<{ name: string; version: string }>;
  /** 1 (fast) to 9 (small); default 6, as gzip's own default. */
  gzipLevel?: number;
}

export interface ImageLayerReport {
  digest: string;
  size: number;
  uncompressedSize: number;
  createdBy: string;
  fromBase: boolean;
}

export interface ImageReport {
  archive: string;
  reference: string;
  /** The manifest's digest: what a registry and `skopeo inspect` call the image's digest. */
  digest: string;
  configDigest: string;
  arch: ImageArch;
  base: string;
  layers: ImageLayerReport[];
  /** Compressed bytes a registry stores and a node pulls: layers + config + manifest. */
  compressedSize: number;
  /** Bytes once unpacked (sum of the layer tars). */
  uncompressedSize: number;
  archiveSize: number;
}

export interface Blob {
  digest: string;
  size: number;
  /** A file to stream the bytes from, or the bytes. */
  file?: string;
  data?: Uint8Array;
}

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function jsonBlob(value: unknown): Blob & { data: Uint8Array } {
  const data = new TextEncoder().encode(JSON.stringify(value));
  return { digest: sha256(data), size: data.byteLength, data };
}

export function splitReference(ref: string): { name: string; tag: string } {
  const i = ref.lastIndexOf(':');
  if (i > 0 && !ref.slice(i).includes('/')) return { name: ref.slice(0, i), tag: ref.slice(i + 1) };
  return { name: ref, tag: 'latest' };
}

/** Checks a name:tag the way Docker's reference grammar does, naming the fix. */
export function checkReference(ref: string): void {
  const { name, tag } = splitReference(ref);
  if (!/^[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/.test(name.replace(/^[a-zA-Z0-9.-]+(:\d+)?\//, (h) => (h.includes('.') || h.includes(':') ? '' : h)))) {
    throw new Error(`--tag '${ref}': an image name is lowercase letters, digits and . _ - separated by /, e.g. dais-digits:1`);
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw new Error(`--tag '${ref}': a tag is up to 128 letters, digits, _ . -`);
}

function walkFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? walkFiles(p) : e.isFile() ? [p] : [];
  });
}

/** The layers dais adds on any base: onnxruntime (and sharp), the server, the models (most often changed last). */
function appLayers(o: ImageOptions, arch: ImageArch, sharp: SharpPackages | undefined): LayerBuilder[] {
  const deps = new LayerBuilder(`dais: ${APP_DIR}/node_modules (${sharp ? `onnxruntime-node, sharp ${sharp.version}, linux/${arch} binaries` : `onnxruntime-node, linux/${arch} binary`} only)`);
  addOnnxruntimePackages(deps, `${APP_DIR}/node_modules`, arch);
  if (sharp) addSharpPackages(deps, `${APP_DIR}/node_modules`, sharp);
  const server = join(o.context, 'app', SERVER_FILE);
  if (!existsSync(server)) throw new Error(`${server} is missing: write the build context first`);
  const app = new LayerBuilder(`dais: ${APP_DIR}/${SERVER_FILE} (dais serve, bundled) and the files it reads`);
  for (const f of walkFiles(join(o.context, 'app'))) app.file(posix.join(APP_DIR, relative(join(o.context, 'app'), f)), { source: f, size: statSync(f).size });
  const models = new LayerBuilder(`dais: ${MODELS_DIR} (${o.models.map((m) => `${m.name} v${m.version}`).join(', ')})`);
  const modelsDir = join(o.context, 'models');
  models.dir(MODELS_DIR);
  for (const f of walkFiles(modelsDir)) models.file(posix.join(MODELS_DIR, relative(modelsDir, f).split('\\').join('/')), { source: f, size: statSync(f).size });
  return [deps, app, models];
}

function imageConfig(o: ImageOptions, base: BaseImage | undefined, diffIds: string[], history: unknown[], created: string): Record<string, unknown> {
  const port = o.port ?? DEFAULT_PORT;
  const node = base ? 'node' : NODE_PATH_IN_IMAGE;
  const baseConfig = (base?.config.config ?? {}) as Record<string, unknown>;
  const baseEnv = ((baseConfig.Env as string[] | undefined) ?? ['PATH=/usr/local/bin:/usr/bin:/bin']).filter((e) => !/^(PORT|NODE_ENV|ORT_DISABLE_TELEMETRY)=/.test(e));
  const models = o.models.map((m) => `${m.name}:${m.version}`).join(',');
  return {
    ...(base ? base.config : {}),
    created,
    architecture: o.arch,
    os: 'linux',
    config: {
      ...baseConfig,
      User: `${NONROOT_UID}:${NONROOT_UID}`,
      // onnxruntime ≥ 1.29 sends usage telemetry from Linux builds unless ORT_DISABLE_TELEMETRY is set.
      Env: [...baseEnv, 'NODE_ENV=production', `PORT=${port}`, 'ORT_DISABLE_TELEMETRY=1'],
      // The base's Cmd (the node image's is ["node"]) would become arguments of the server: cleared.
      Entrypoint: [node, `${APP_DIR}/${SERVER_FILE}`],
      Cmd: null,
      WorkingDir: APP_DIR,
      ExposedPorts: { [`${port}/tcp`]: {} },
      StopSignal: 'SIGTERM',
      // Docker's extension to the image config; the OCI runtime spec has no health check.
      Healthcheck: { Test: ['CMD', node, '-e', healthcheckScript()], Interval: 10e9, Timeout: 3e9, StartPeriod: 30e9, Retries: 3 },
      Labels: {
        ...((baseConfig.Labels as Record<string, string> | null) ?? {}),
        'org.opencontainers.image.title': splitReference(o.reference).name,
        'org.opencontainers.image.description': 'dais: models served over the Open Inference Protocol (v2)',
        'ai.dais.models': models,
      },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history,
  };
}

export async function writeArchive(path: string, files: Array<{ name: string; blob: Blob }>, mtime: Date): Promise<void> {
  const pack = tar.pack();
  const out = createWriteStream(path);
  const done = pipeline(pack, out);
  const dirs = new Set<string>();
  const entry = (header: Partial<Header> & { name: string }, data?: Buffer) =>
    new Promise<void>((res, rej) => {
      const cb = (err?: Error | null) => (err ? rej(err) : res());
      if (data) pack.entry(header, data, cb);
      else pack.entry(header, cb);
    });
  for (const { name, blob } of files) {
    for (let d = posix.dirname(name); d !== '.' && !dirs.has(d); d = posix.dirname(d)) dirs.add(d);
  }
  const members = [...[...dirs].map((d) => ({ name: d, blob: undefined as Blob | undefined })), ...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const common = { mtime, uid: 0, gid: 0, uname: '', gname: '' };
  for (const m of members) {
    if (!m.blob) await entry({ ...common, name: m.name, type: 'directory', mode: 0o755 });
    else if (m.blob.data) await entry({ ...common, name: m.name, type: 'file', mode: 0o644, size: m.blob.size }, Buffer.from(m.blob.data));
    else {
      const file = m.blob.file!;
      await new Promise<void>((res, rej) => {
        const sink = pack.entry({ ...common, name: m.name, type: 'file', mode: 0o644, size: m.blob!.size }, (err) => (err ? rej(err) : res()));
        pipeline(createReadStream(file), sink).catch(rej);
      });
    }
  }
  pack.finalize();
  await done;
}

/** The checks that need no work done, so bad flags fail before the build context is written. */
export function checkImagePlan(o: Pick<ImageOptions, 'reference' | 'base' | 'arch'>): void {
  checkReference(o.reference);
  if (o.base) parseBaseSpec(o.base);
  else if (hostArch() !== o.arch) {
    throw new Error(
      `the default base copies this machine's Node (${process.arch}), so it cannot make a ${o.arch} image: ` +
        `give --base oci:<dir> holding a linux/${o.arch} Node image (e.g. skopeo copy --override-arch ${o.arch} docker://node:22-bookworm-slim oci:<dir>:22)`,
    );
  }
}

export function sourceDateEpoch(): number {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, got '${v}'`);
  return n;
}

export async function buildImage(o: ImageOptions): Promise<ImageReport> {
  const epoch = o.sourceDateEpoch ?? sourceDateEpoch();
  const mtime = new Date(epoch * 1000);
  const created = mtime.toISOString().replace(/\.000Z$/, 'Z');
  checkImagePlan(o);
  // sharp when the context's package.json names it (a model declares preprocess.image, or the image serves models
  // that arrive at run time): the packages the Dockerfile route installs with npm ci, taken from dais' own.
  const sharp = contextDecodesImages(o.context) ? imageSharp(o.arch) : undefined;
  const base = o.base ? await readBaseImage(o.base, o.arch) : undefined;
  const work = await mkdtemp(join(tmpdir(), 'dais-image-'));
  try {
    const builders: LayerBuilder[] = [];
    if (!base) {
      const runtime = new LayerBuilder(`dais: Node ${process.version} from this machine, the shared libraries it and onnxruntime${sharp ? ' and sharp' : ''} need, /etc/passwd (nonroot ${NONROOT_UID})`);
      addHostNodeRuntime(runtime, o.arch, sharp);
      builders.push(runtime);
    }
    builders.push(...appLayers(o, o.arch, sharp));
    // Compressed in parallel (zlib runs on libuv's thread pool); the order of the result is the layer order.
    const ours: LayerBlob[] = await Promise.all(builders.map((b) => writeLayer(b, { dir: work, mtime, gzipLevel: o.gzipLevel })));

    const history = [...(base?.history ?? []), ...ours.map((l) => ({ created, created_by: l.createdBy }))];
    const diffIds = [...(base?.diffIds ?? []), ...ours.map((l) => l.diffId)];
    const config = jsonBlob(imageConfig(o, base, diffIds, history, created));
    const layerDescriptors = [
      ...(base?.layers ?? []).map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      ...ours.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ];
    const manifest = jsonBlob({ schemaVersion: 2, mediaType: MEDIA.manifest, config: { mediaType: MEDIA.config, digest: config.digest, size: config.size }, layers: layerDescriptors });
    const { name, tag } = splitReference(o.reference);
    const index = jsonBlob({
      schemaVersion: 2,
      mediaType: MEDIA.index,
      manifests: [
        {
          mediaType: MEDIA.manifest,
          digest: manifest.digest,
          size: manifest.size,
          platform: { architecture: o.arch, os: 'linux' },
          annotations: { 'io.containerd.image.name': `${name}:${tag}`, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    });
    const blobPath = (digest: string) => `blobs/sha256/${digest.slice('sha256:'.length)}`;
    const dockerManifest = jsonBlob([{ Config: blobPath(config.digest), RepoTags: [`${name}:${tag}`], Layers: layerDescriptors.map((l) => blobPath(l.digest)) }]);
    const files: Array<{ name: string; blob: Blob }> = [
      { name: 'oci-layout', blob: jsonBlob({ imageLayoutVersion: '1.0.0' }) },
      { name: 'index.json', blob: index },
      { name: 'manifest.json', blob: dockerManifest },
      { name: blobPath(config.digest), blob: config },
      { name: blobPath(manifest.digest), blob: manifest },
      ...(base?.layers ?? []).map((l) => ({ name: blobPath(l.digest), blob: { digest: l.digest, size: l.size, file: l.file } })),
      ...ours.map((l) => ({ name: blobPath(l.digest), blob: { digest: l.digest, size: l.size, file: l.file } })),
    ];
    // The same layer twice (a base that already holds it) is one blob.
    const unique = [...new Map(files.map((f) => [f.name, f])).values()];
    await mkdir(dirname(o.archive), { recursive: true });
    const tmpArchive = `${o.archive}.${process.pid}.partial`;
    await writeArchive(tmpArchive, unique, mtime);
    await rename(tmpArchive, o.archive);

    const layers: ImageLayerReport[] = [
      ...(base?.layers ?? []).map((l) => ({ digest: l.digest, size: l.size, uncompressedSize: l.uncompressedSize, createdBy: l.createdBy, fromBase: true })),
      ...ours.map((l) => ({ digest: l.digest, size: l.size, uncompressedSize: l.uncompressedSize, createdBy: l.createdBy, fromBase: false })),
    ];
    return {
      archive: o.archive,
      reference: `${name}:${tag}`,
      digest: manifest.digest,
      configDigest: config.digest,
      arch: o.arch,
      base: o.base ?? `distroless-style: Node ${process.version} from this machine`,
      layers,
      compressedSize: layers.reduce((s, l) => s + l.size, 0) + config.size + manifest.size,
      uncompressedSize: layers.reduce((s, l) => s + l.uncompressedSize, 0),
      archiveSize: statSync(o.archive).size,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Writes an image archive's OCI layout into a folder (what umoci and `--base oci:<dir>` read). */
export async function extractArchive(archive: string, dir: string): Promise<void> {
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const target = join(dir, header.name);
      if (!target.startsWith(dir)) return next(new Error(`${header.name} leaves ${dir}`));
      if (header.type === 'directory') {
        mkdir(target, { recursive: true }).then(() => {
          stream.resume();
          next();
        }, next);
        return;
      }
      mkdir(dirname(target), { recursive: true })
        .then(() => pipeline(stream, createWriteStream(target)))
        .then(() => next(), next);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  await pipeline(createReadStream(archive), extract);
  await done;
}
