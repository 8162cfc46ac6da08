// sharp (the Node decoder of preprocess.image) shipped in a built artefact's node_modules: its JavaScript, its
// dependencies and the prebuilt binary and libvips for one Linux platform, so the artefact decodes images with the
// same library `dais serve` uses. The device bundle, the Lambda function and the container image ship it only when a
// model declares an image step (the KServe runtime image always: its models arrive at run time), and each bundles
// the server with sharp left outside and reached lazily (lazySharpPlugin).
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import type { Plugin } from 'esbuild';

export type SharpPlatform = 'linux-x64' | 'linux-arm64';

const require = createRequire(import.meta.url);

function sharpDir(): string {
  // sharp does not export its package.json: walk up from its resolved entry.
  let dir = dirname(require.resolve('sharp'));
  while (!readdirSync(dir).includes('package.json') || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== 'sharp') {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the sharp package folder');
    dir = up;
  }
  return dir;
}

export interface SharpPackages {
  version: string;
  /** Each package to ship: its name (the folder under node_modules/) and where it is installed here. */
  packages: Array<{ name: string; dir: string }>;
  /** The platform's native files (sharp's addon, libvips), relative to node_modules/: what a base's libraries must serve. */
  binaries: string[];
}

/**
 * sharp and what it loads for `platform`, as installed with dais. A missing platform binary is reported through
 * `fail` (each target throws its own error kind), naming the npm command that installs it.
 */
export function findSharp(platform: SharpPlatform, fail: (message: string) => Error): SharpPackages {
  const sharp = sharpDir();
  const pkg = JSON.parse(readFileSync(join(sharp, 'package.json'), 'utf8')) as { version: string; dependencies?: Record<string, string> };
  const fromSharp = createRequire(join(sharp, 'package.json'));
  const native = [`@img/sharp-${platform}`, `@img/sharp-libvips-${platform}`];
  const packages = [{ name: 'sharp', dir: sharp }];
  for (const name of [...Object.keys(pkg.dependencies ?? {}), ...native]) {
    // Packages spell their package.json export differently (@img/sharp-* export it as './package').
    const dir = [`${name}/package.json`, `${name}/package`].flatMap((spec) => {
      try {
        return [dirname(fromSharp.resolve(spec))];
      } catch {
        return [];
      }
    })[0];
    if (!dir) {
      throw fail(
        native.includes(name)
          ? `a model declares preprocess.image, which needs sharp's ${platform} binary (${name}), and this installation has none: install it (npm install --os=linux --cpu=${platform.split('-')[1]} --libc=glibc sharp@${pkg.version}) or build for the machine's own platform`
          : `sharp's dependency ${name} is not installed`,
      );
    }
    packages.push({ name, dir });
  }
  const binaries = native.flatMap((name) => {
    const lib = join(packages.find((p) => p.name === name)!.dir, 'lib');
    return readdirSync(lib)
      .filter((f) => /\.node$|\.so(\.\d+)*$/.test(f))
      .map((f) => `${name}/lib/${f}`);
  });
  return { version: pkg.version, packages, binaries };
}

/** Whether a file of a shipped package goes in: sharp's src/ is its C++ source, only needed to compile it from scratch. */
export function shipsSharpFile(pkg: { name: string; dir: string }, file: string): boolean {
  return !(pkg.name === 'sharp' && (file === join(pkg.dir, 'src') || file.startsWith(join(pkg.dir, 'src') + sep)));
}

/** Copies sharp and what it loads for `platform` into `nodeModules`; returns sharp's version. */
export function copySharp(nodeModules: string, platform: SharpPlatform, fail: (message: string) => Error): string {
  const found = findSharp(platform, fail);
  for (const p of found.packages) cpSync(p.dir, join(nodeModules, p.name), { recursive: true, dereference: true, filter: (f) => shipsSharpFile(p, f) });
  return found.version;
}

/**
 * sharp is loaded only when a model with an image step loads (it travels in node_modules only then): an ES import
 * of an external package would be hoisted to the top of the bundle and fail where sharp is absent, so sharp is
 * reached through the bundle banner's require(), which runs when the image decoder's module is first imported.
 */
export const lazySharpPlugin: Plugin = {
  name: 'dais-lazy-sharp',
  setup(build) {
    build.onResolve({ filter: /^sharp$/ }, (a) => (a.namespace === 'dais-lazy-sharp' ? { path: 'sharp', external: true } : { path: 'sharp', namespace: 'dais-lazy-sharp' }));
    build.onLoad({ filter: /.*/, namespace: 'dais-lazy-sharp' }, () => ({ contents: "module.exports = require('sharp');", loader: 'js' }));
  },
};
