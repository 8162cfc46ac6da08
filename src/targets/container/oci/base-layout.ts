// A base image from a local OCI image layout (`--base oci:<dir>[:<ref>]`, as `skopeo copy … oci:<dir>:<ref>`
// writes one): its config and layers are reused as they are; dais' layers go on top.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Writable } from 'node:stream';
import type { ImageArch } from '../platform.ts';

export interface BaseLayer {
  mediaType: string;
  digest: string;
  size: number;
  file: string;
  uncompressedSize: number;
  createdBy: string;
}

export interface BaseImage {
  /** The whole image config JSON. */
  config: Record<string, unknown> & { config?: Record<string, unknown> };
  diffIds: string[];
  history: unknown[];
  layers: BaseLayer[];
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { architecture?: string; os?: string; variant?: string };
  annotations?: Record<string, string>;
}

const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
/** Docker's layer media types carry the same bytes as OCI's; the manifest dais writes is OCI. */
const LAYER_TYPES: Record<string, string> = {
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'application/vnd.oci.image.layer.v1.tar',
};

export function parseBaseSpec(spec: string): { dir: string; ref?: string } {
  if (!spec.startsWith('oci:')) throw new Error(`--base '${spec}': give a local OCI image layout as oci:<dir>[:<ref>] (registries are not reachable from here)`);
  const rest = spec.slice(4);
  if (existsSync(join(rest, 'index.json'))) return { dir: rest };
  const i = rest.lastIndexOf(':');
  if (i > 0 && existsSync(join(rest.slice(0, i), 'index.json'))) return { dir: rest.slice(0, i), ref: rest.slice(i + 1) };
  throw new Error(`--base '${spec}': ${rest} holds no OCI image layout (no index.json); make one with skopeo copy docker://node:22-bookworm-slim oci:<dir>:22`);
}

async function readJson<T>(dir: string, digest: string, what: string): Promise<T> {
  const file = blobFile(dir, digest);
  const data = await readFile(file).catch(() => {
    throw new Error(`the base layout ${dir} lacks the ${what} blob ${digest}`);
  });
  const got = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  if (got !== digest) throw new Error(`the base layout's ${what} blob ${digest} is corrupt (its sha256 is ${got})`);
  return JSON.parse(data.toString('utf8')) as T;
}

function blobFile(dir: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  if (alg !== 'sha256' || !/^[a-f0-9]{64}$/.test(hex ?? '')) throw new Error(`unsupported digest ${digest}: only sha256 blobs are read`);
  return join(dir, 'blobs', 'sha256', hex);
}

/** Bytes of a layer once decompressed (for the size report); gzip only, others are counted as stored. */
async function uncompressedSize(file: string, mediaType: string, size: number): Promise<number> {
  if (!mediaType.endsWith('gzip')) return size;
  let n = 0;
  await pipeline(
    createReadStream(file),
    createGunzip(),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        n += chunk.length;
        cb();
      },
    }),
  );
  return n;
}

export async function readBaseImage(spec: string, arch: ImageArch): Promise<BaseImage> {
  const { dir, ref } = parseBaseSpec(spec);
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  const all = index.manifests ?? [];
  const refs = all.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter(Boolean);
  let desc: Descriptor | undefined;
  if (ref) desc = all.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref);
  else if (all.length === 1) desc = all[0];
  if (!desc) throw new Error(`--base ${spec}: ${ref ? `no image named '${ref}'` : 'several images'} in ${dir}; name one as oci:${dir}:<ref> (refs: ${refs.join(', ') || 'none'})`);
  if (desc.mediaType && INDEX_TYPES.includes(desc.mediaType)) {
    const nested = await readJson<{ manifests: Descriptor[] }>(dir, desc.digest, 'index');
    const pick = nested.manifests.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === arch);
    if (!pick) throw new Error(`--base ${spec} has no linux/${arch} image (it has ${nested.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(', ')})`);
    desc = pick;
  }
  const manifest = await readJson<{ config: Descriptor; layers: Descriptor[] }>(dir, desc.digest, 'manifest');
  const config = await readJson<BaseImage['config']>(dir, manifest.config.digest, 'config');
  if (config.architecture !== arch) throw new Error(`--base ${spec} is a ${String(config.architecture)} image, not ${arch}: pick the base for --arch ${arch}`);
  const diffIds = ((config.rootfs as { diff_ids?: string[] } | undefined)?.diff_ids ?? []).slice();
  if (diffIds.length !== manifest.layers.length) throw new Error(`--base ${spec}: its config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`);
  const history = ((config.history as unknown[] | undefined) ?? []).slice();
  const layerHistory = history.filter((h) => !(h as { empty_layer?: boolean }).empty_layer) as Array<{ created_by?: string }>;
  const layers: BaseLayer[] = [];
  for (const [i, l] of manifest.layers.entries()) {
    const file = blobFile(dir, l.digest);
    if (!existsSync(file)) throw new Error(`the base layout ${dir} lacks layer ${l.digest}`);
    if (statSync(file).size !== l.size) throw new Error(`the base layout's layer ${l.digest} has ${statSync(file).size} bytes, its manifest says ${l.size}`);
    const mediaType = LAYER_TYPES[l.mediaType ?? ''] ?? l.mediaType ?? 'application/vnd.oci.image.layer.v1.tar+gzip';
    layers.push({
      mediaType,
      digest: l.digest,
      size: l.size,
      file,
      uncompressedSize: await uncompressedSize(file, mediaType, l.size),
      createdBy: `base: ${layerHistory.length === manifest.layers.length ? (layerHistory[i].created_by ?? '') : l.digest}`,
    });
  }
  return { config, diffIds, history, layers };
}
