// The server an image runs: `dais serve` bundled by esbuild into one ES module, so the image needs no tsx,
// no TypeScript and no dais sources. Native and WebAssembly packages stay outside the bundle.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lazySharpPlugin } from '../sharp-package.ts';
import { APP_DIR, MODELS_DIR } from './dockerfile.ts';

export const DAIS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Loaded from node_modules at run time: onnxruntime-node is a native addon, and onnxruntime-common must be
 * the very copy it requires (or its Tensor class differs).
 */
export const BUNDLE_EXTERNALS = ['onnxruntime-node', 'onnxruntime-common'];

/**
 * Replaced by a stub: h5wasm (4 MB of WebAssembly) is only reached for Keras files, which the build converts
 * to ONNX beforehand, so a served repository never needs it. A KServe runtime image (bundleServer's `keras`) keeps
 * it: its models arrive at run time from storageUri, .h5/.keras files included.
 */
export const BUNDLE_STUBBED = ['h5wasm'];

const STUB_SOURCE = `const message = 'this image serves ONNX models: dais build converts Keras files to ONNX; rebuild the image from the .h5/.keras file';
export default new Proxy({}, { get() { throw new Error(message); } });
`;

const stubPlugin = {
  name: 'dais-stub',
  setup(build: import('esbuild').PluginBuild) {
    const filter = new RegExp(`^(${BUNDLE_STUBBED.join('|')})(/|$)`);
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'dais-stub' }));
    build.onLoad({ filter: /.*/, namespace: 'dais-stub' }, () => ({ contents: STUB_SOURCE, loader: 'js' }));
  },
};

/** The packages the image must hold in node_modules for the bundle to run. */
export const RUNTIME_PACKAGES = ['onnxruntime-node'];

/**
 * Added to RUNTIME_PACKAGES when a model declares preprocess.image (or the image serves models that arrive at run
 * time): sharp, the decoder `dais serve` uses, with its prebuilt libvips. The bundle reaches it lazily, so an image
 * without it starts as long as no model needs it.
 */
export const IMAGE_DECODER_PACKAGE = 'sharp';

/** Whether a build context's package.json names sharp: what the image, and the server measured from it, must ship. */
export function contextDecodesImages(context: string): boolean {
  const pkg = join(context, 'package.json');
  if (!existsSync(pkg)) return false;
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { dependencies?: Record<string, string> }).dependencies?.[IMAGE_DECODER_PACKAGE] !== undefined;
}

/** Where KServe puts a model for its server: what the storage initializer downloaded, or a modelcar's files. */
export const KSERVE_MODEL_DIR = '/mnt/models';

/**
 * The container's entry: `dais serve <models> --host 0.0.0.0 [arguments given to the container]`, where <models>
 * is $DAIS_MODEL_REPOSITORY, else KServe's /mnt/models when it exists or $STORAGE_URI is set (KServe's contract
 * for custom containers), else the image's own MODELS_DIR.
 * The serve command reads $PORT, installs the SIGTERM handler and returns 0 once drained; process.exit
 * then ends PID 1 even if a library left a handle open. Kept as source text because it imports the CLI,
 * which src/targets may not: the arrow points from cli to targets, and this file is only esbuild's input.
 */
export const ENTRY_SOURCE = `import { existsSync, readFileSync } from 'node:fs';
import { command } from './serve.ts';
import { CliError } from './command.ts';

const kserve = process.env.STORAGE_URI || existsSync(${JSON.stringify(KSERVE_MODEL_DIR)});
const models = process.env.DAIS_MODEL_REPOSITORY ?? (kserve ? ${JSON.stringify(KSERVE_MODEL_DIR)} : ${JSON.stringify(MODELS_DIR)});
const argv = [models, '--host', '0.0.0.0', ...process.argv.slice(2)];
let code = 1;
try {
  code = await command.run(argv);
} catch (e) {
  const err = e as Error & { code?: string };
  process.stderr.write('dais serve: ' + (e instanceof CliError || !err.code ? '' : err.code + ': ') + err.message + '\\n');
}
process.exit(code);
`;

export interface BundleResult {
  /** The bundle's JavaScript. */
  code: Uint8Array;
  /** Source files that went in, relative to the dais root. */
  inputs: string[];
  /** Files the sources read beside themselves at run time (e.g. the gRPC .proto), to put beside the bundle. */
  assets: Array<{ name: string; source: string }>;
}

/** `join(dirname(fileURLToPath(import.meta.url)), 'x')` and `new URL('./x', import.meta.url)`: a file read beside the module. */
const ASSET_PATTERNS = [/join\(\s*dirname\(\s*fileURLToPath\(\s*import\.meta\.url\s*\)\s*\)\s*,\s*['"]([^'"/]+)['"]\s*\)/g, /new URL\(\s*['"]\.\/([^'"/]+)['"]\s*,\s*import\.meta\.url\s*\)/g];

/**
 * Finds the files dais' own sources load relative to themselves. In the bundle import.meta.url is the
 * bundle's, so each such file must sit beside it under the same name.
 */
export async function findAssets(inputs: string[]): Promise<BundleResult['assets']> {
  const assets = new Map<string, string>();
  for (const rel of inputs.filter((i) => i.startsWith('src/') && i.endsWith('.ts'))) {
    const file = join(DAIS_ROOT, rel);
    if (!existsSync(file)) continue; // the entry, given to esbuild as text
    const text = await readFile(file, 'utf8');
    for (const re of ASSET_PATTERNS) {
      for (const m of text.matchAll(re)) {
        const source = join(dirname(file), m[1]);
        if (!existsSync(source)) continue;
        const had = assets.get(m[1]);
        if (had && had !== source) throw new Error(`two sources read a file named ${m[1]} beside themselves (${had}, ${source}); the bundle can hold one`);
        assets.set(m[1], source);
      }
    }
  }
  return [...assets].map(([name, source]) => ({ name, source })).sort((a, b) => (a.name < b.name ? -1 : 1));
}

export interface BundleOptions {
  /** Bundle h5wasm instead of stubbing it, so the server reads Keras files itself (the KServe runtime image). */
  keras?: boolean;
}

export async function bundleServer(options: BundleOptions = {}): Promise<BundleResult> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    stdin: { contents: ENTRY_SOURCE, resolveDir: join(DAIS_ROOT, 'src', 'cli'), loader: 'ts', sourcefile: 'container-entry.ts' },
    absWorkingDir: DAIS_ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: BUNDLE_EXTERNALS,
    plugins: options.keras ? [lazySharpPlugin] : [stubPlugin, lazySharpPlugin],
    // CommonJS dependencies call require() for Node built-ins; an ES module bundle has no require of its own.
    banner: { js: "import { createRequire as __daisCreateRequire } from 'node:module';\nconst require = __daisCreateRequire(import.meta.url);" },
    legalComments: 'eof',
    write: false,
    metafile: true,
    logLevel: 'silent',
    outfile: join(APP_DIR, 'server.mjs'),
  });
  const inputs = Object.keys(result.metafile.inputs).sort();
  return { code: result.outputFiles[0].contents, inputs, assets: await findAssets(inputs) };
}
