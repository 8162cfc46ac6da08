// `--platform linux-x64 | linux-arm64`: a folder to copy onto a small Linux machine. The v2 server and a `predict`
// command bundled into one file with esbuild, onnxruntime-node with only that platform's native library (the npm
// package carries all five platforms, ~290 MB), the models as ONNX, a systemd unit and an install script.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { requestFromJson, type ModelMetadata } from '../../core/index.ts';
import { ServedModelVersion } from '../../runtime/served-model.ts';
import { onnxruntimeNode } from '../../runtime/onnxruntime-node.ts';
import { listFiles, type BuiltFile } from './files.ts';
import { EdgeBuildError, type EdgeModelSource } from './model-source.ts';
import { deviceReadme } from './readme.ts';
import { tokenizerPlugin, type DeclaredSteps } from './declared-steps.ts';
import { copySharp, lazySharpPlugin } from '../sharp-package.ts';

export const DEVICE_PLATFORMS = ['linux-x64', 'linux-arm64'] as const;
export type DevicePlatform = (typeof DEVICE_PLATFORMS)[number];

export const NODE_ENGINE = '>=20';

export interface DeviceBuildOptions {
  sources: EdgeModelSource[];
  outDir: string;
  platform: DevicePlatform;
  threads?: number;
  port: number;
  host?: string;
  maxMemoryMb?: number;
  /** From checkDeviceModels when the caller already ran it, in the order of `sources`. */
  metadata?: ModelMetadata[];
}

export interface DeviceBuildReport {
  platform: DevicePlatform;
  outDir: string;
  models: { name: string; version: string; bytes: number; metadata: ModelMetadata; notes: string[] }[];
  onnxruntimeNode: string;
  nodeEngine: string;
  unit: string;
  host: string;
  port: number;
  threads?: number;
  memoryMaxMb?: number;
  files: BuiltFile[];
  totalBytes: number;
  runtimeBytes: number;
  modelBytes: number;
  serverBytes: number;
}

const require = createRequire(import.meta.url);
const HERE = dirname(fileURLToPath(import.meta.url));

function packageDir(name: string): string {
  // Neither package exports its package.json, so walk up from the resolved entry.
  let dir = dirname(require.resolve(name));
  while (!readdirSync(dir).includes('package.json') || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== name) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the ${name} package folder`);
    dir = up;
  }
  return dir;
}

function copyJs(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) if (f.endsWith('.js') || f === 'package.json') copyFileSync(join(from, f), join(to, f));
}

/** onnxruntime-node's JavaScript, its one native library for `platform`, and onnxruntime-common: all it loads at run time. */
function copyRuntime(outDir: string, platform: DevicePlatform): string {
  const arch = platform.split('-')[1];
  const node = packageDir('onnxruntime-node');
  const common = packageDir('onnxruntime-common');
  const pkg = JSON.parse(readFileSync(join(node, 'package.json'), 'utf8')) as { version: string; binary?: { napi_versions?: number[] } };
  const napi = readdirSync(join(node, 'bin')).find((d) => d.startsWith('napi-v'));
  const native = join(node, 'bin', napi ?? 'napi-v6', 'linux', arch);
  let binaries: string[];
  try {
    binaries = readdirSync(native);
  } catch {
    throw new EdgeBuildError(`this onnxruntime-node installation has no ${platform} binary (looked in ${native}); reinstall it with npm on a machine that downloads all platforms`);
  }
  const nm = join(outDir, 'node_modules');
  const dst = join(nm, 'onnxruntime-node');
  mkdirSync(join(dst, 'bin', napi ?? 'napi-v6', 'linux', arch), { recursive: true });
  // The package's install script downloads CUDA/TensorRT add-ons; the device never runs npm, so it is dropped.
  const { scripts: _s, devDependencies: _d, ...manifest } = JSON.parse(readFileSync(join(node, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dst, 'package.json'), `${JSON.stringify({ ...manifest, dependencies: { 'onnxruntime-common': manifest.version } }, null, 2)}\n`);
  copyJs(join(node, 'dist'), join(dst, 'dist'));
  for (const b of binaries) copyFileSync(join(native, b), join(dst, 'bin', napi ?? 'napi-v6', 'linux', arch, b));
  const cdst = join(nm, 'onnxruntime-common');
  mkdirSync(cdst, { recursive: true });
  copyFileSync(join(common, 'package.json'), join(cdst, 'package.json'));
  copyJs(join(common, 'dist', 'cjs'), join(cdst, 'dist', 'cjs'));
  copyJs(join(common, 'dist', 'esm'), join(cdst, 'dist', 'esm'));
  return pkg.version;
}

/** models/<name>/processing.json (config.yaml's preprocess/postprocess) and the labels and tokenizer files. */
function writeSteps(dir: string, steps: DeclaredSteps): void {
  if (steps.preprocess !== undefined || steps.postprocess !== undefined) {
    writeFileSync(join(dir, 'processing.json'), `${JSON.stringify({ preprocess: steps.preprocess, postprocess: steps.postprocess }, null, 2)}\n`);
  }
  if (steps.labels) writeFileSync(join(dir, steps.labels.file), steps.labels.text);
  if (steps.tokenizer) {
    writeFileSync(join(dir, steps.tokenizer.file), steps.tokenizer.json);
    if (steps.tokenizer.config !== undefined) writeFileSync(join(dir, 'tokenizer_config.json'), steps.tokenizer.config);
  }
}

async function bundleServer(outDir: string, withText: boolean): Promise<void> {
  try {
    await esbuild.build({
      entryPoints: [join(HERE, 'device', 'main.ts')],
      outfile: join(outDir, 'dais-edge.mjs'),
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      external: ['onnxruntime-node'],
      plugins: [tokenizerPlugin(withText), lazySharpPlugin],
      legalComments: 'eof',
      logLevel: 'silent',
      // CommonJS dependencies bundled into an ES module still call require() for Node's built-ins.
      banner: { js: "#!/usr/bin/env node\nimport { createRequire as __daisCreateRequire } from 'node:module';\nconst require = __daisCreateRequire(import.meta.url);" },
    });
  } catch (e) {
    throw new EdgeBuildError(`esbuild could not bundle the device server: ${(e as Error).message.split('\n')[0]}`);
  }
  chmodSync(join(outDir, 'dais-edge.mjs'), 0o755);
}

/** Loads each model here and runs its samples: a model that cannot run fails the build, not the device. */
export async function checkDeviceModels(sources: EdgeModelSource[]): Promise<ModelMetadata[]> {
  const out: ModelMetadata[] = [];
  for (const s of sources) out.push(await check(s));
  return out;
}

async function check(source: EdgeModelSource): Promise<ModelMetadata> {
  let model: ServedModelVersion;
  try {
    model = await ServedModelVersion.load(source.onnx, { name: source.name, version: source.version, backend: onnxruntimeNode });
  } catch (e) {
    throw new EdgeBuildError(`${source.path}: onnxruntime-node cannot load this model: ${(e as Error).message}`);
  }
  try {
    for (const s of source.samples) {
      try {
        await model.infer(requestFromJson(s.body));
      } catch (e) {
        throw new EdgeBuildError(`${source.path}: sample request ${s.file} failed: ${(e as Error).message}`);
      }
    }
    return model.metadata();
  } finally {
    await model.dispose();
  }
}

export function unitName(sources: readonly { name: string }[]): string {
  return `dais-edge-${sources.map((s) => s.name).join('-')}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
}

export function systemdUnit(o: { unit: string; names: string[]; host: string; port: number; threads?: number; memoryMaxMb?: number }): string {
  const args = ['serve', '--host', o.host, '--port', String(o.port), ...(o.threads ? ['--threads', String(o.threads)] : [])];
  return `# ${o.unit}.service: written by dais; install.sh fills in @PREFIX@ and @NODE@.
[Unit]
Description=dais edge: Open Inference Protocol (v2) server for ${o.names.join(', ')}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=@NODE@ @PREFIX@/dais-edge.mjs ${args.join(' ')}
WorkingDirectory=@PREFIX@
Environment=NODE_ENV=production ORT_DISABLE_TELEMETRY=1
Restart=on-failure
RestartSec=2
${o.memoryMaxMb ? `# The budget the build was checked against (dais build --max-memory ${o.memoryMaxMb}).\nMemoryMax=${o.memoryMaxMb}M\n` : ''}DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
LockPersonality=yes

[Install]
WantedBy=multi-user.target
`;
}

export function installScript(o: { unit: string; platform: DevicePlatform; host: string; port: number }): string {
  const machine = o.platform === 'linux-x64' ? 'x86_64' : 'aarch64|arm64';
  return `#!/bin/sh
# Installs this dais edge bundle as the systemd service ${o.unit}. On the device, as root:
#   sudo ./install.sh                   copy to /opt/${o.unit}, install and start the service
#   ./install.sh --prefix DIR --unit-dir DIR --no-start   (staging, tests, images built offline)
set -eu

PREFIX=/opt/${o.unit}
UNIT_DIR=/etc/systemd/system
START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --unit-dir) UNIT_DIR="$2"; shift 2 ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
done

fail() { echo "install.sh: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)

case "$(uname -s)-$(uname -m)" in
  Linux-${machine.replace('|', '|Linux-')}) ;;
  *) fail "this bundle is for ${o.platform} but this machine is $(uname -s) $(uname -m); build one with: dais build <model> --target edge --platform linux-$(uname -m | sed 's/x86_64/x64/; s/aarch64/arm64/')" ;;
esac

NODE=\${NODE:-$(command -v node || true)}
[ -n "$NODE" ] || fail "Node.js 20 or newer is needed (apt-get install nodejs on Debian 13 / Ubuntu 24.04; older releases: nodejs.org)"
"$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \\
  || fail "Node.js 20 or newer is needed; $NODE is $("$NODE" --version)"

mkdir -p "$PREFIX" "$UNIT_DIR"
cp -R "$here/dais-edge.mjs" "$here/package.json" "$here/node_modules" "$here/models" "$here/README.md" "$PREFIX/"
[ -d "$here/requests" ] && cp -R "$here/requests" "$PREFIX/"
sed -e "s#@PREFIX@#$PREFIX#g" -e "s#@NODE@#$NODE#g" "$here/${o.unit}.service" > "$UNIT_DIR/${o.unit}.service"
echo "installed to $PREFIX; unit $UNIT_DIR/${o.unit}.service"

# The bundle must load its runtime here before it is started as a service.
"$NODE" "$PREFIX/dais-edge.mjs" --help >/dev/null || fail "$PREFIX/dais-edge.mjs does not start with $NODE"

if [ "$START" = 1 ]; then
  systemctl daemon-reload
  systemctl enable --now ${o.unit}.service
  echo "started; check: curl -s http://${o.host === '0.0.0.0' ? '127.0.0.1' : o.host}:${o.port}/v2/health/ready"
fi
`;
}

function sum(files: BuiltFile[], pred: (f: BuiltFile) => boolean): number {
  return files.filter(pred).reduce((s, f) => s + f.bytes, 0);
}

export async function buildDeviceBundle(o: DeviceBuildOptions): Promise<DeviceBuildReport> {
  const host = o.host ?? '127.0.0.1';
  const metadata = o.metadata ?? (await checkDeviceModels(o.sources));
  const models: DeviceBuildReport['models'] = o.sources.map((s, i) => ({ name: s.name, version: s.version, bytes: s.onnx.length, metadata: metadata[i], notes: s.notes }));

  for (const s of o.sources) {
    mkdirSync(join(o.outDir, 'models', s.name, s.version), { recursive: true });
    writeFileSync(join(o.outDir, 'models', s.name, s.version, 'model.onnx'), s.onnx);
    if (s.samples.length) mkdirSync(join(o.outDir, 'requests', s.name), { recursive: true });
    for (const r of s.samples) writeFileSync(join(o.outDir, 'requests', s.name, r.file), `${JSON.stringify(r.body)}\n`);
    if (s.steps) writeSteps(join(o.outDir, 'models', s.name), s.steps);
  }
  const ortVersion = copyRuntime(o.outDir, o.platform);
  const sharpVersion = o.sources.some((s) => s.steps?.spec.image) ? copySharp(join(o.outDir, 'node_modules'), o.platform, (m) => new EdgeBuildError(m)) : undefined;
  await bundleServer(o.outDir, o.sources.some((s) => s.steps?.spec.text));
  const unit = unitName(o.sources);
  writeFileSync(
    join(o.outDir, 'package.json'),
    `${JSON.stringify({ name: unit, private: true, type: 'module', engines: { node: NODE_ENGINE }, os: ['linux'], cpu: [o.platform.split('-')[1]], bin: { 'dais-edge': 'dais-edge.mjs' }, dependencies: { 'onnxruntime-node': ortVersion, ...(sharpVersion ? { sharp: sharpVersion } : {}) } }, null, 2)}\n`,
  );
  writeFileSync(join(o.outDir, `${unit}.service`), systemdUnit({ unit, names: o.sources.map((s) => s.name), host, port: o.port, threads: o.threads, memoryMaxMb: o.maxMemoryMb }));
  writeFileSync(join(o.outDir, 'install.sh'), installScript({ unit, platform: o.platform, host, port: o.port }));
  chmodSync(join(o.outDir, 'install.sh'), 0o755);

  const report: DeviceBuildReport = {
    platform: o.platform,
    outDir: o.outDir,
    models,
    onnxruntimeNode: ortVersion,
    nodeEngine: NODE_ENGINE,
    unit,
    host,
    port: o.port,
    threads: o.threads,
    memoryMaxMb: o.maxMemoryMb,
    files: [],
    totalBytes: 0,
    runtimeBytes: 0,
    modelBytes: 0,
    serverBytes: 0,
  };
  const count = () => {
    const files = listFiles(o.outDir, false);
    report.files = files;
    report.totalBytes = sum(files, () => true);
    report.runtimeBytes = sum(files, (f) => f.path.startsWith('node_modules/'));
    report.modelBytes = sum(files, (f) => f.path.startsWith('models/'));
    report.serverBytes = sum(files, (f) => f.path === 'dais-edge.mjs');
  };
  count();
  writeFileSync(join(o.outDir, 'README.md'), deviceReadme(report));
  count();
  return report;
}
