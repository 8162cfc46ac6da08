// Sizes of what a build wrote: raw bytes and gzip (what a static server or CDN sends compressed), per file.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface BuiltFile {
  /** Relative to the bundle's root, '/'-separated. */
  path: string;
  bytes: number;
  gzipBytes: number;
}

function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((e) => {
      const p = join(dir, e);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
}

// The runtime's .wasm is 14-27 MB and the same in every bundle: gzip it once per process, keyed by content.
const gzipMemo = new Map<string, number>();

export function gzipSize(bytes: Uint8Array): number {
  if (bytes.length < 1024 * 1024) return gzipSync(bytes).length;
  const key = createHash('sha1').update(bytes).digest('hex');
  let n = gzipMemo.get(key);
  if (n === undefined) gzipMemo.set(key, (n = gzipSync(bytes).length));
  return n;
}

/** Every file under `root`; gzip sizes only where `gzip` is set (device bundles are copied, not downloaded). */
export function listFiles(root: string, gzip: boolean): BuiltFile[] {
  return walk(root).map((p) => {
    const bytes = statSync(p).size;
    return { path: relative(root, p).split('\\').join('/'), bytes, gzipBytes: gzip ? gzipSize(readFileSync(p)) : 0 };
  });
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
