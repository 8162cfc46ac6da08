// The README written into each edge bundle: what is in it, how to serve or install it, and the one or two server
// settings that matter, stated for this bundle (threads or not, WebGPU or not) rather than in general.
import type { ModelMetadata } from '../../core/index.ts';
import type { BrowserBuildReport } from './browser-bundle.ts';
import type { DeviceBuildReport } from './device-bundle.ts';
import { formatBytes, type BuiltFile } from './files.ts';
import type { SampleRequest } from './model-source.ts';

function tensorTable(meta: ModelMetadata): string {
  const rows = [
    ...meta.inputs.map((t) => `| input | \`${t.name}\` | ${t.datatype} | [${t.shape.join(', ')}] |`),
    ...meta.outputs.map((t) => `| output | \`${t.name}\` | ${t.datatype} | [${t.shape.join(', ')}] |`),
  ];
  return ['| | name | datatype | shape (-1 = any) |', '|---|---|---|---|', ...rows].join('\n');
}

function fileTable(files: BuiltFile[], gzip: boolean): string {
  const shown = files.filter((f) => f.path !== 'README.md');
  const head = gzip ? ['| file | bytes | gzip |', '|---|---:|---:|'] : ['| file | bytes |', '|---|---:|'];
  const rows = shown.map((f) => (gzip ? `| \`${f.path}\` | ${formatBytes(f.bytes)} | ${formatBytes(f.gzipBytes)} |` : `| \`${f.path}\` | ${formatBytes(f.bytes)} |`));
  return [...head, ...rows].join('\n');
}

/** A sample request, with long data arrays cut so the README stays readable. */
function shortRequest(sample: SampleRequest): string {
  const body = structuredClone(sample.body) as { inputs?: { data?: unknown[] }[] };
  const text = JSON.stringify(body, (key, value) => (key === 'data' && Array.isArray(value) && value.length > 8 ? [...value.slice(0, 8), '…'] : value), 1);
  return text.replace(/\n\s*/g, ' ');
}

export function browserReadme(r: BrowserBuildReport, sample: SampleRequest): string {
  const m = r.model;
  const threads = r.runtime.threads;
  const wasmFile = r.runtime.files.find((f) => f.endsWith('.wasm'))!;
  const build =
    r.runtime.build === 'webgpu'
      ? "onnxruntime-web's WebGPU build: WebGPU where the browser has it, WebAssembly (SIMD) where it does not or for operators WebGPU lacks"
      : "onnxruntime-web's plain SIMD WebAssembly build (no WebGPU; rebuild with `--webgpu` to opt in)";
  const threadText =
    threads > 1
      ? `This bundle asks for **${threads} WebAssembly threads**. Browsers give threads (SharedArrayBuffer) only to
cross-origin-isolated pages, so serve every file with these two headers:

    Cross-Origin-Opener-Policy: same-origin
    Cross-Origin-Embedder-Policy: require-corp

Without them the SDK runs on one thread (it checks \`crossOriginIsolated\`) and still gives the same outputs. With
COEP set, anything the page loads from another origin must allow it (CORS or \`Cross-Origin-Resource-Policy\`).`
      : `This bundle runs WebAssembly on **one thread**, so it needs no COOP/COEP headers and works from any static host
(GitHub Pages, S3, a CDN, \`python3 -m http.server\`). For threads, rebuild with \`--threads N\` and serve with
\`Cross-Origin-Opener-Policy: same-origin\` and \`Cross-Origin-Embedder-Policy: require-corp\`.`;
  return `# ${m.name}: dais edge bundle (browser)

Model \`${m.name}\` version ${m.version}, runs in the page with onnxruntime-web ${r.runtime.onnxruntimeWeb}:
${build}. No server runs the model: the browser downloads it once and infers locally.

${tensorTable(m.metadata)}

## Files

${fileTable(r.files, true)}

The demo page downloads ${formatBytes(r.pageLoadGzipBytes)} gzip on first load (page, scripts, runtime, model, one sample
request); \`${wasmFile}\` is most of it and is cached by the browser after the first visit.

## Serve it

Any static file server. Two settings matter:

- \`.wasm\` as \`application/wasm\` (browsers compile it while it downloads; a wrong type makes onnxruntime-web
  fall back to a slower path or fail) and \`.mjs\`/\`.js\` as \`text/javascript\`. Check with
  \`curl -sI http://HOST/${wasmFile} | grep -i content-type\`. nginx: \`types { application/wasm wasm; }\`.
- Compression: serve \`.wasm\`, \`.js\`, \`.mjs\` and \`.onnx\` gzip- or brotli-compressed.

${threadText}

Open \`index.html\`: it builds an input form from the model's metadata, fills it from \`requests/\`, runs the model in
the page and shows the outputs and the latency. It does not work from \`file://\` (browsers refuse modules and
wasm there); use a server, e.g. \`python3 -m http.server 8000\` in this folder.

## Use it from your page

\`\`\`js
import { load } from './dais.js';
const model = await load();                  // downloads model.onnx and the runtime, starts a session
console.log(model.metadata());               // the same object as GET /v2/models/${m.name}
const response = await model.infer(request); // the same JSON as POST /v2/models/${m.name}/infer
\`\`\`

\`request\` and \`response\` are Open Inference Protocol (v2) JSON objects, exactly what the dais REST server takes and
returns, so client code moves between server and browser unchanged. For example (\`data\` cut short here):

    ${shortRequest(sample)}

Bad input rejects with an \`InferenceError\` whose \`code\` and \`status\` are the REST API's (e.g. \`SHAPE_MISMATCH\`, 400)
and whose message names the field. \`load({ modelUrl })\` loads another model file with the same runtime;
\`load({ webgpu: false })\` keeps a WebGPU bundle on WebAssembly; \`model.runtime\` says what was picked.

Built by dais: \`dais build <model> --target edge --platform browser\`${r.runtime.build === 'webgpu' ? ' --webgpu' : ''}${threads > 1 ? ` --threads ${threads}` : ''}.
`;
}

export function deviceReadme(r: DeviceBuildReport): string {
  const names = r.models.map((m) => m.name);
  const first = r.models[0];
  const arch = r.platform === 'linux-x64' ? 'x86-64 (Intel/AMD)' : 'arm64 (Raspberry Pi 4/5 with a 64-bit OS, Jetson, Graviton)';
  const sizes = `${formatBytes(r.totalBytes)}: onnxruntime ${formatBytes(r.runtimeBytes)}, model${r.models.length > 1 ? 's' : ''} ${formatBytes(r.modelBytes)}, server ${formatBytes(r.serverBytes)}`;
  const url = `http://${r.host === '0.0.0.0' ? '127.0.0.1' : r.host}:${r.port}`;
  const models = r.models.map((m) => `### ${m.name} (version ${m.version}, ${formatBytes(m.bytes)})\n\n${tensorTable(m.metadata)}`).join('\n\n');
  return `# dais edge bundle for ${r.platform}: ${names.join(', ')}

A self-contained Open Inference Protocol (v2) server for ${arch} Linux: the dais server and a \`predict\` command
in one file (\`dais-edge.mjs\`), onnxruntime-node ${r.onnxruntimeNode} with only the ${r.platform} native library, and
the model${r.models.length > 1 ? 's' : ''} as ONNX. No npm install, no compiler, no Python on the device. Size ${sizes}.

Needs **Node.js 20 or newer** on the device (\`node --version\`; Debian 13 and Ubuntu 24.04 ship it, older releases
can take it from nodejs.org) and glibc Linux.

## Install as a service

    sudo ./install.sh

copies the bundle to \`/opt/${r.unit}\`, installs \`${r.unit}.service\` (systemd; runs as a dynamic unprivileged user
with a read-only system${r.memoryMaxMb ? `, \`MemoryMax=${r.memoryMaxMb}M\`` : ''}) and starts it. Then:

    curl -s ${url}/v2/health/ready
    curl -s ${url}/v2/models/${first.name}
    curl -s -X POST -H 'content-type: application/json' -d @requests/${first.name}/<request>.json ${url}/v2/models/${first.name}/infer

The service listens on ${r.host}:${r.port}.${r.host === '127.0.0.1' ? ' That is this device only: applications on the device call it. To answer the network, rebuild with `--host 0.0.0.0` (or edit `--host` in the unit) and put it behind a firewall or a proxy with authentication: the edge server has none.' : ' It answers the whole network and has no authentication: keep it behind a firewall or a proxy.'}
Logs: \`journalctl -u ${r.unit}\`. Options: \`./install.sh --prefix DIR --unit-dir DIR --no-start\`.

## Run without installing

    node dais-edge.mjs serve --port ${r.port}                     # v2 REST server (JSON and binary tensors)
    node dais-edge.mjs predict ${first.name} request.json         # one request, response on stdout ('-' = stdin)

## Models

${models}

## Files

${fileTable(r.files, false)}

Built by dais: \`dais build <model> --target edge --platform ${r.platform}\`.
`;
}
