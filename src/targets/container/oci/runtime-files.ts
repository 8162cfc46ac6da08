// What an image needs besides the server bundle: Node itself with the shared libraries it, onnxruntime and sharp
// link against (read from this machine, found with ldd), a passwd/group naming a non-root user, and the
// onnxruntime packages (and sharp's, when the image decodes images) with only the target platform's binaries.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { DAIS_ROOT } from '../bundle.ts';
import { findSharp, shipsSharpFile, type SharpPackages, type SharpPlatform } from '../../sharp-package.ts';
import { ORT_ARCH, type ImageArch } from '../platform.ts';
import type { LayerBuilder } from './layer.ts';

/** distroless' convention for its "nonroot" user. */
export const NONROOT_UID = 65532;
export const NODE_PATH_IN_IMAGE = '/usr/local/bin/node';

export interface SharedLibrary {
  /** The name the binary asks for, e.g. libstdc++.so.6. */
  name: string;
  /** Where the loader found it on this machine. */
  path: string;
}

/** Parses `ldd` output; throws naming any library the loader cannot find. */
export function parseLdd(output: string, binary: string): SharedLibrary[] {
  const libs: SharedLibrary[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('linux-vdso') || line.startsWith('linux-gate')) continue;
    if (/statically linked/.test(line)) continue;
    const arrow = /^(\S+)\s+=>\s+(not found|\S+)/.exec(line);
    if (arrow) {
      if (arrow[2] === 'not found') throw new Error(`${binary} needs ${arrow[1]}, which this machine does not have`);
      libs.push({ name: arrow[1], path: arrow[2] });
      continue;
    }
    const direct = /^(\/\S+)/.exec(line); // the ELF interpreter, e.g. /lib64/ld-linux-x86-64.so.2
    if (direct) libs.push({ name: posix.basename(direct[1]), path: direct[1] });
  }
  return libs;
}

export function sharedLibraries(binary: string): SharedLibrary[] {
  const r = spawnSync('ldd', [binary], { encoding: 'utf8' });
  if (r.error) throw new Error(`ldd is needed to find the libraries ${binary} links against (apt-get install libc-bin): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ldd ${binary} failed: ${(r.stderr || r.stdout).trim()}`);
  return parseLdd(r.stdout, binary);
}

/**
 * Adds a host file at the same path, keeping symlinks as symlinks (Debian's /lib → usr/lib,
 * libstdc++.so.6 → libstdc++.so.6.0.30), so the dynamic loader finds what it found here.
 */
export function addHostPath(layer: LayerBuilder, hostPath: string, depth = 0): void {
  if (depth > 16) throw new Error(`too many symlinks under ${hostPath}`);
  const parts = resolve(hostPath).split('/').filter(Boolean);
  let real = '/';
  for (const part of parts.slice(0, -1)) {
    const p = join(real, part);
    if (lstatSync(p).isSymbolicLink()) {
      layer.symlink(p, readlinkSync(p));
      real = realpathSync(p);
      layer.dir(real);
    } else {
      real = p;
      if (!layer.has(p)) layer.dir(p);
    }
  }
  const leaf = join(real, parts[parts.length - 1]);
  const st = lstatSync(leaf);
  if (st.isSymbolicLink()) {
    const target = readlinkSync(leaf);
    layer.symlink(leaf, target);
    addHostPath(layer, resolve(dirname(leaf), target), depth + 1);
  } else if (st.isFile()) {
    layer.file(leaf, { source: leaf, size: st.size }, st.mode & 0o111 ? 0o755 : 0o644);
  } else {
    throw new Error(`${leaf} is neither a file nor a symlink`);
  }
}

/** onnxruntime-node's folder in dais' node_modules, and the napi-v* folders its binaries sit in. */
export function onnxruntimeNodeDir(): string {
  return packageDir(join(DAIS_ROOT, 'package.json'), 'onnxruntime-node');
}

/** The folder of package `name` as seen from `from` (a file); works when the package's exports hide package.json. */
export function packageDir(from: string, name: string): string {
  let dir = dirname(createRequire(from).resolve(name));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === name) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the folder of package ${name}`);
    dir = up;
  }
}

export function onnxruntimeBinaryDir(arch: ImageArch): string {
  const bin = join(onnxruntimeNodeDir(), 'bin');
  const napi = readdirSync(bin).filter((d) => /^napi-v\d+$/.test(d)).sort();
  for (const n of napi) {
    const d = join(bin, n, 'linux', ORT_ARCH[arch]);
    if (existsSync(join(d, 'onnxruntime_binding.node'))) return d;
  }
  throw new Error(`onnxruntime-node in ${bin} has no linux/${ORT_ARCH[arch]} binary: reinstall it (npm ci)`);
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.isFile() ? [p] : [];
  });
}

/**
 * node_modules for the bundle: onnxruntime-node (package.json, dist/, the target's binary) and
 * onnxruntime-common. Its install-time dependencies (adm-zip, global-agent) are never loaded by the server.
 */
export function addOnnxruntimePackages(layer: LayerBuilder, nodeModulesInImage: string, arch: ImageArch): void {
  const ortDir = onnxruntimeNodeDir();
  const commonDir = packageDir(join(ortDir, 'package.json'), 'onnxruntime-common');
  const binDir = onnxruntimeBinaryDir(arch);
  const add = (pkgDir: string, name: string, keep: (rel: string) => boolean) => {
    for (const f of walk(pkgDir)) {
      const rel = relative(pkgDir, f);
      if (!keep(rel)) continue;
      layer.file(posix.join(nodeModulesInImage, name, rel), { source: f, size: statSync(f).size }, 0o644);
    }
  };
  const binRel = relative(ortDir, binDir);
  add(ortDir, 'onnxruntime-node', (rel) => rel === 'package.json' || rel.startsWith('dist/') || rel.startsWith(binRel + '/') || /^(LICENSE|README)/i.test(rel));
  add(commonDir, 'onnxruntime-common', (rel) => rel === 'package.json' || rel.startsWith('dist/') || /^(LICENSE|README)/i.test(rel));
}

/** sharp and its packages for the image's platform, as installed with dais; refuses naming the fix when absent. */
export function imageSharp(arch: ImageArch): SharpPackages {
  return findSharp(`linux-${ORT_ARCH[arch]}` as SharpPlatform, (m) => new Error(`${m}; or give --base oci:<dir> and build the image on a linux/${arch} machine`));
}

/** Files under a folder, symlinks followed (as npm's copy would hold them). */
function walkFollowing(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    const st = statSync(p);
    return st.isDirectory() ? walkFollowing(p) : st.isFile() ? [p] : [];
  });
}

/** node_modules for sharp: its JavaScript, its dependencies, the platform's addon and libvips. */
export function addSharpPackages(layer: LayerBuilder, nodeModulesInImage: string, sharp: SharpPackages): void {
  for (const pkg of sharp.packages) {
    for (const f of walkFollowing(pkg.dir)) {
      if (!shipsSharpFile(pkg, f)) continue;
      layer.file(posix.join(nodeModulesInImage, pkg.name, relative(pkg.dir, f).split('\\').join('/')), { source: f, size: statSync(f).size }, 0o644);
    }
  }
}

/** sharp's native files as installed here (what ldd reads for the libraries they need). */
export function sharpBinaries(sharp: SharpPackages): string[] {
  return sharp.binaries.map((b) => {
    const [scope, name, ...rest] = b.split('/');
    return join(sharp.packages.find((p) => p.name === `${scope}/${name}`)!.dir, ...rest);
  });
}

export interface NodeRuntime {
  nodeBinary: string;
  libraries: SharedLibrary[];
}

/**
 * The runtime layer of the default (distroless-style) base: Node, its libraries and onnxruntime's (and sharp's,
 * when given), /etc, /tmp.
 */
export function addHostNodeRuntime(layer: LayerBuilder, arch: ImageArch, sharp?: SharpPackages): NodeRuntime {
  const node = realpathSync(process.execPath);
  layer.file(NODE_PATH_IN_IMAGE, { source: node, size: statSync(node).size }, 0o755);
  const ortBin = onnxruntimeBinaryDir(arch);
  const sharpFiles = sharp ? sharpBinaries(sharp) : [];
  const binaries = [node, ...readdirSync(ortBin).map((f) => join(ortBin, f)), ...sharpFiles];
  // onnxruntime's and libvips' own libraries ship in node_modules beside their bindings (found through $ORIGIN).
  const shipped = new Set([...readdirSync(ortBin).map((f) => join(ortBin, f)), ...sharpFiles].map((f) => realpathSync(f)));
  const libraries = new Map<string, SharedLibrary>();
  for (const b of binaries) {
    for (const lib of sharedLibraries(b)) {
      if (shipped.has(realpathSync(lib.path))) continue;
      libraries.set(lib.path, lib);
    }
  }
  for (const p of [...libraries.keys()].sort()) addHostPath(layer, p);
  const text = (s: string) => ({ data: new TextEncoder().encode(s) });
  layer.file('/etc/passwd', text(`root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT_UID}:${NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n`));
  layer.file('/etc/group', text(`root:x:0:\nnonroot:x:${NONROOT_UID}:\n`));
  // glibc reads this for name lookups; files first so 'localhost' resolves from /etc/hosts.
  layer.file('/etc/nsswitch.conf', text('hosts: files dns\n'));
  layer.dir('/home/nonroot', 0o700, NONROOT_UID, NONROOT_UID);
  layer.dir('/root', 0o700);
  layer.dir('/tmp', 0o1777);
  return { nodeBinary: node, libraries: [...libraries.values()].sort((a, b) => (a.path < b.path ? -1 : 1)) };
}
