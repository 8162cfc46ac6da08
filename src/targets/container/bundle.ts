// The server an image runs: `dais serve` bundled by esbuild into one ES module, so the image needs no tsx,
// no TypeScript and no dais sources. Native and WebAssembly packages stay outside the bundle.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP_DIR, MODELS_DIR } from './dockerfile.ts';

export const DAIS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Loaded from node_modules at run time: onnxruntime-node is a native addon, and onnxruntime-common must be
 * the very copy it requires (or its Tensor class differs).
 */
export const BUNDLE_EXTERNALS = ['onnxruntime-node', 'onnxruntime-common'];

/**
 * Replaced by a stub: h5wasm (4 MB of WebAssembly) is only reached for Keras files, which the build converts
 * to ONNX beforehand, so a served repository never needs it.
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
 * The container's entry: `dais serve <MODELS_DIR> --host 0.0.0.0 [arguments given to the container]`.
 * The serve command reads $PORT, installs the SIGTERM handler and returns 0 once drained; process.exit
 * then ends PID 1 even if a library left a handle open. Kept as source text because it imports the CLI,
 * which src/targets may not: the arrow points from cli to targets, and this file is only esbuild's input.
 */
export const ENTRY_SOURCE = `import { command } from './serve.ts';
import { CliError } from './command.ts';

const argv = [process.env.DAIS_MODEL_REPOSITORY ?? ${JSON.stringify(MODELS_DIR)}, '--host', '0.0.0.0', ...process.argv.slice(2)];
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
}

export async function bundleServer(): Promise<BundleResult> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    stdin: { contents: ENTRY_SOURCE, resolveDir: join(DAIS_ROOT, 'src', 'cli'), loader: 'ts', sourcefile: 'container-entry.ts' },
    absWorkingDir: DAIS_ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: BUNDLE_EXTERNALS,
    plugins: [stubPlugin],
    // CommonJS dependencies call require() for Node built-ins; an ES module bundle has no require of its own.
    banner: { js: "import { createRequire as __daisCreateRequire } from 'node:module';\nconst require = __daisCreateRequire(import.meta.url);" },
    legalComments: 'eof',
    write: false,
    metafile: true,
    logLevel: 'silent',
    outfile: join(APP_DIR, 'server.mjs'),
  });
  return { code: result.outputFiles[0].contents, inputs: Object.keys(result.metafile.inputs).sort() };
}
