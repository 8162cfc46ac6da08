// One image layer: a tar of files, folders and symlinks, written reproducibly (entries sorted by path, fixed
// mtime, uid/gid numbers without names) and gzipped, with both digests an image needs: the blob's (sha256
// of the .tar.gz, in the manifest) and the diff_id (sha256 of the plain tar, in the config).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

export type LayerEntry =
  | { type: 'dir'; path: string; mode: number; uid: number; gid: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'file'; path: string; mode: number; uid: number; gid: number; source: string; size: number }
  | { type: 'file'; path: string; mode: number; uid: number; gid: number; data: Uint8Array; size: number };

export interface LayerBlob {
  /** sha256:… of the compressed blob. */
  digest: string;
  /** sha256:… of the uncompressed tar. */
  diffId: string;
  size: number;
  uncompressedSize: number;
  /** Where the blob was written. */
  file: string;
  mediaType: string;
  /** What the layer holds, for the image history. */
  createdBy: string;
}

export const LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Normalises an absolute or relative path to a tar member name: no leading '/', no '.' parts. */
export function memberName(p: string): string {
  const parts = p.split('/').filter((s) => s && s !== '.');
  if (parts.some((s) => s === '..')) throw new Error(`layer path ${p} leaves the root`);
  return parts.join('/');
}

/** Collects entries; parents are added as folders (0755, root) unless given explicitly. */
export class LayerBuilder {
  private readonly entries = new Map<string, LayerEntry>();

  constructor(readonly createdBy: string) {}

  dir(path: string, mode = 0o755, uid = 0, gid = 0): this {
    const name = memberName(path);
    if (!name) return this;
    this.parents(name);
    const had = this.entries.get(name);
    if (had && had.type !== 'dir') throw new Error(`layer: ${name} is already a ${had.type}`);
    this.entries.set(name, { type: 'dir', path: name, mode, uid, gid });
    return this;
  }

  file(path: string, content: { source: string; size: number } | { data: Uint8Array }, mode = 0o644, uid = 0, gid = 0): this {
    const name = memberName(path);
    this.parents(name);
    const size = 'data' in content ? content.data.byteLength : content.size;
    this.entries.set(name, { type: 'file', path: name, mode, uid, gid, size, ...content } as LayerEntry);
    return this;
  }

  symlink(path: string, target: string): this {
    const name = memberName(path);
    this.parents(name);
    this.entries.set(name, { type: 'symlink', path: name, target });
    return this;
  }

  has(path: string): boolean {
    return this.entries.has(memberName(path));
  }

  private parents(name: string): void {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const had = this.entries.get(p);
      if (!had) this.entries.set(p, { type: 'dir', path: p, mode: 0o755, uid: 0, gid: 0 });
      else if (had.type !== 'dir') throw new Error(`layer: ${p} is a ${had.type}, not a folder, so ${name} cannot go under it`);
    }
  }

  /** Sorted by bytes of the path, so the tar is the same whatever order things were added in. */
  sorted(): LayerEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  uncompressedFiles(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.type === 'file') n += e.size;
    return n;
  }
}

function hashing(hash: ReturnType<typeof createHash>, count: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      count.n += chunk.length;
      cb(null, chunk);
    },
  });
}

function packEntries(entries: LayerEntry[], mtime: Date): Readable {
  const pack = tar.pack();
  (async () => {
    for (const e of entries) {
      const common = { name: e.path, mtime, uname: '', gname: '' };
      if (e.type === 'dir') {
        await new Promise<void>((res, rej) => pack.entry({ ...common, name: e.path + '/', type: 'directory', mode: e.mode, uid: e.uid, gid: e.gid }, (err) => (err ? rej(err) : res())));
      } else if (e.type === 'symlink') {
        await new Promise<void>((res, rej) => pack.entry({ ...common, type: 'symlink', linkname: e.target, mode: 0o777, uid: 0, gid: 0 }, (err) => (err ? rej(err) : res())));
      } else if ('data' in e) {
        await new Promise<void>((res, rej) => pack.entry({ ...common, type: 'file', size: e.size, mode: e.mode, uid: e.uid, gid: e.gid }, Buffer.from(e.data), (err) => (err ? rej(err) : res())));
      } else {
        const st = await stat(e.source);
        if (st.size !== e.size) throw new Error(`${e.source} changed size while the layer was written`);
        await new Promise<void>((res, rej) => {
          const sink = pack.entry({ ...common, type: 'file', size: e.size, mode: e.mode, uid: e.uid, gid: e.gid }, (err) => (err ? rej(err) : res()));
          pipeline(createReadStream(e.source), sink).catch(rej);
        });
      }
    }
    pack.finalize();
  })().catch((err) => pack.destroy(err));
  return pack as unknown as Readable;
}

export interface WriteLayerOptions {
  /** Folder for the blob (written as <dir>/<hex digest>). */
  dir: string;
  /** Every entry's mtime: SOURCE_DATE_EPOCH by convention, 0 by default. */
  mtime: Date;
  gzipLevel?: number;
}

/** Writes the layer as a gzip blob named by its digest and returns both digests. */
export async function writeLayer(layer: LayerBuilder, o: WriteLayerOptions): Promise<LayerBlob> {
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  const tarCount = { n: 0 };
  const gzCount = { n: 0 };
  const tmp = join(o.dir, `.layer-${process.pid}-${Math.random().toString(36).slice(2)}`);
  // node's gzip header carries no file name and mtime 0, so the same tar always gives the same bytes.
  await pipeline(packEntries(layer.sorted(), o.mtime), hashing(tarHash, tarCount), createGzip({ level: o.gzipLevel ?? 6 }), hashing(gzHash, gzCount), createWriteStream(tmp));
  const hex = gzHash.digest('hex');
  const file = join(o.dir, hex);
  await rename(tmp, file);
  return {
    digest: `sha256:${hex}`,
    diffId: `sha256:${tarHash.digest('hex')}`,
    size: gzCount.n,
    uncompressedSize: tarCount.n,
    file,
    mediaType: LAYER_MEDIA_TYPE,
    createdBy: layer.createdBy,
  };
}
