// Container: the OCI image `dais build --target container --image` writes, measured from the archive itself:
// each layer's compressed size (what a registry stores and a node pulls) and unpacked size (disk on the node).
// The image runs the same `dais serve` the server sweep measures, so its latency and throughput are those.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { BenchModel } from './requests.ts';
import { runDais } from './cli-runner.ts';

export interface ContainerBench {
  archiveBytes: number;
  compressedBytes: number;
  unpackedBytes: number;
  layers: { digest: string; compressedBytes: number; unpackedBytes: number }[];
  platform: string;
}

/** The entries of a tar file (ustar headers, 512-byte blocks). */
export function tarEntries(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, n: number) => h.subarray(a, a + n).toString('utf8').replace(/\0.*$/s, '');
    const name = (str(345, 155) ? `${str(345, 155)}/` : '') + str(0, 100);
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    if (type === '0' || type === '\0') out.set(name, buf.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export function measureOciArchive(file: string): ContainerBench {
  const buf = readFileSync(file);
  const entries = tarEntries(buf);
  const blob = (digest: string) => {
    const b = entries.get(`blobs/${digest.replace(':', '/')}`);
    if (!b) throw new Error(`${file}: blob ${digest} missing`);
    return b;
  };
  const index = JSON.parse(entries.get('index.json')!.toString('utf8'));
  const desc = index.manifests[0];
  const manifest = JSON.parse(blob(desc.digest).toString('utf8'));
  const layers = (manifest.layers as { digest: string; size: number; mediaType: string }[]).map((l) => {
    const data = blob(l.digest);
    const unpacked = l.mediaType.endsWith('gzip') ? gunzipSync(data).length : data.length;
    return { digest: l.digest, compressedBytes: l.size, unpackedBytes: unpacked };
  });
  return {
    archiveBytes: statSync(file).size,
    compressedBytes: layers.reduce((s, l) => s + l.compressedBytes, 0),
    unpackedBytes: layers.reduce((s, l) => s + l.unpackedBytes, 0),
    layers,
    platform: desc.platform ? `${desc.platform.os}/${desc.platform.architecture}` : 'unknown',
  };
}

export async function benchContainer(m: BenchModel, progress?: (l: string) => void): Promise<ContainerBench | { skipped: string }> {
  const out = mkdtempSync(join(tmpdir(), 'dais-bench-container-'));
  try {
    progress?.(`container: dais build ${m.path} --target container --image`);
    const img = join(out, 'image.tar');
    const b = await runDais(['build', m.path, '--target', 'container', '--out', join(out, 'context'), '--image', img]);
    if (b.code !== 0) return { skipped: `dais build --target container --image failed: ${b.stderr.trim().split('\n').pop()}` };
    const c = measureOciArchive(img);
    progress?.(`  container: ${c.platform} image ${(c.compressedBytes / 1e6).toFixed(1)} MB compressed, ${(c.unpackedBytes / 1e6).toFixed(1)} MB unpacked`);
    return c;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
