// What the image is compared with: the naive way, `FROM node:22` + `COPY . .` + `npm install`.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DAIS_ROOT } from './bundle.ts';
import type { ImageArch } from './platform.ts';

/**
 * Compressed size of the full (not slim) official image of the same Node release, as Docker Hub listed it
 * (hub.docker.com/_/node/tags?name=22.23.4, read 2026-11): node:22.23.4-bookworm.
 */
export const NAIVE_BASE = {
  image: 'node:22.23.4-bookworm',
  compressedBytes: { amd64: 389.5e6, arm64: 381.1e6 } as Record<ImageArch, number>,
  source: 'Docker Hub tag list for node 22.23.4 (hub.docker.com/_/node/tags?name=22.23.4), read 2026-11',
};

export interface NaiveComparison {
  baseImage: string;
  baseCompressedBytes: number;
  baseSource: string;
  /** dais' own node_modules as installed here (what `npm install` of the project puts in the image), measured. */
  nodeModulesBytes: number;
  /** The naive image is at least the base's compressed size: node_modules only adds to it. */
  imageToNaiveBaseRatio: number;
}

/** Apparent size of every file under dir (symlinks not followed). */
export function treeBytes(dir: string): number {
  let n = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += treeBytes(p);
    else if (e.isFile()) n += lstatSync(p).size;
  }
  return n;
}

export function compareWithNaive(imageCompressedBytes: number, arch: ImageArch): NaiveComparison {
  const base = NAIVE_BASE.compressedBytes[arch];
  return {
    baseImage: NAIVE_BASE.image,
    baseCompressedBytes: base,
    baseSource: NAIVE_BASE.source,
    nodeModulesBytes: treeBytes(join(DAIS_ROOT, 'node_modules')),
    imageToNaiveBaseRatio: imageCompressedBytes / base,
  };
}
