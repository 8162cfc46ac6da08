// The build context's package.json + package-lock.json: only the packages the bundled server loads from
// node_modules (onnxruntime-node, a native addon, cannot be bundled; sharp, when a model decodes images). The lock entries are cut out of dais'
// own package-lock.json, so `npm ci` in the image installs the exact versions and integrity hashes dais was
// tested with.

export interface LockPackage {
  version?: string;
  resolved?: string;
  integrity?: string;
  license?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  [key: string]: unknown;
}

export interface PackageLock {
  name?: string;
  version?: string;
  lockfileVersion: number;
  requires?: boolean;
  packages: Record<string, LockPackage>;
}

export interface ContextPackage {
  packageJson: { name: string; version: string; private: true; description: string; dependencies: Record<string, string> };
  lock: PackageLock;
}

/** Where npm would find `dep` when required from the package installed at `from` ('' = the root). */
export function resolveLockPath(packages: Record<string, LockPackage>, from: string, dep: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = base ? `${base}/node_modules/${dep}` : `node_modules/${dep}`;
    if (packages[candidate]) return candidate;
    if (!base) return undefined;
    // Climb out of the innermost node_modules/<name> (names may be scoped: @scope/name).
    const i = base.lastIndexOf('/node_modules/');
    base = i === -1 ? '' : base.slice(0, i);
  }
}

function runtimeDeps(p: LockPackage): Array<[string, boolean]> {
  const out: Array<[string, boolean]> = [];
  for (const d of Object.keys(p.dependencies ?? {})) out.push([d, false]);
  for (const d of Object.keys(p.optionalDependencies ?? {})) out.push([d, true]);
  for (const d of Object.keys(p.peerDependencies ?? {})) out.push([d, p.peerDependenciesMeta?.[d]?.optional === true]);
  return out;
}

/**
 * The package.json and lock for a project that depends on `roots` only, with every package the roots need
 * (transitively), at the paths and versions dais' own lock has them.
 */
export function contextPackage(daisLock: PackageLock, roots: string[], meta: { name: string; version: string; description: string }): ContextPackage {
  if (daisLock.lockfileVersion < 2 || !daisLock.packages) {
    throw new Error(`package-lock.json has lockfileVersion ${daisLock.lockfileVersion}; dais needs version 2 or 3 (npm 7+)`);
  }
  const all = daisLock.packages;
  const dependencies: Record<string, string> = {};
  const keep = new Set<string>();
  const queue: string[] = [];
  for (const r of roots) {
    const path = resolveLockPath(all, '', r);
    if (!path || !all[path].version) throw new Error(`${r} is not installed in dais' package-lock.json: run npm install`);
    dependencies[r] = all[path].version!;
    queue.push(path);
  }
  while (queue.length) {
    const path = queue.shift()!;
    if (keep.has(path)) continue;
    keep.add(path);
    for (const [dep, optional] of runtimeDeps(all[path])) {
      const found = resolveLockPath(all, path, dep);
      if (found) queue.push(found);
      else if (!optional) throw new Error(`${path} needs ${dep}, which dais' package-lock.json does not hold: run npm install`);
    }
  }
  const packages: Record<string, LockPackage> = {
    '': { name: meta.name, version: meta.version, dependencies: { ...dependencies } },
  };
  for (const path of [...keep].sort()) {
    // dev/devOptional describe dais' own tree; in the context every kept package is a production dependency.
    const { dev: _dev, devOptional: _devOptional, ...entry } = all[path];
    packages[path] = entry;
  }
  return {
    packageJson: { name: meta.name, version: meta.version, private: true, description: meta.description, dependencies },
    lock: { name: meta.name, version: meta.version, lockfileVersion: 3, requires: true, packages },
  };
}
