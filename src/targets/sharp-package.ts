// sharp (the Node decoder of preprocess.image) copied into a built artefact's node_modules: its JavaScript, its
// dependencies and the prebuilt binary and libvips for one Linux platform, so the artefact decodes images with the
// same library `dais serve` uses. The device bundle and the Lambda function copy it only when a model declares an
// image step.
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

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

/**
 * Copies sharp and what it loads for `platform` into `nodeModules`; returns sharp's version. A missing platform
 * binary is reported through `fail` (each target throws its own error kind), naming the npm command that installs it.
 */
export function copySharp(nodeModules: string, platform: SharpPlatform, fail: (message: string) => Error): string {
  const sharp = sharpDir();
  const pkg = JSON.parse(readFileSync(join(sharp, 'package.json'), 'utf8')) as { version: string; dependencies?: Record<string, string> };
  const fromSharp = createRequire(join(sharp, 'package.json'));
  const native = [`@img/sharp-${platform}`, `@img/sharp-libvips-${platform}`];
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
    cpSync(dir, join(nodeModules, name), { recursive: true, dereference: true });
  }
  // src/ is sharp's C++ source, only needed to compile it from scratch.
  cpSync(sharp, join(nodeModules, 'sharp'), { recursive: true, dereference: true, filter: (f) => !f.startsWith(join(sharp, 'src')) });
  return pkg.version;
}
