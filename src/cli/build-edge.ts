// `dais build <model> --target edge ...`: flags, checks and the printed report; the builders do the work.
import { buildEdge, PLATFORMS, type EdgeBuildResult, type EdgePlatform } from '../targets/edge/build.ts';
import { formatBytes } from '../targets/edge/files.ts';
import { CliError, flags, intFlag, parseFlags } from './command.ts';

export const help = `Usage: dais build <model.onnx | model.h5 | repository-dir> --target edge --out <dir> [options]

Builds an edge deployment of a model.

  --platform browser      (default) a static site: index.html (a demo page), dais.js (an ES-module SDK taking and
                          returning v2 JSON), onnxruntime-web's WebAssembly runtime, the model and a README.
  --platform linux-x64    a device bundle for a small Linux machine: the dais v2 server and a 'predict' command
  --platform linux-arm64  (Raspberry Pi class) with only that platform's onnxruntime binary, a systemd unit and
                          an install script. Needs Node.js 20+ on the device. A repository folder packs every model.

Options:
  --out <dir>             where to write the bundle (required; must be empty or absent, or use --force)
  --max-memory <MB>       measure the model's peak memory when loaded and run (in a child process) and refuse to
                          build when it is over MB; device bundles also get MemoryMax=MB in their systemd unit
  --webgpu                browser: ship onnxruntime-web's WebGPU build (WebGPU first, wasm fallback); larger
  --threads <n>           browser: WebAssembly threads (needs COOP/COEP headers, see the bundle's README);
                          devices: onnxruntime intra-op threads. Default 1 in browsers, the runtime's own on devices
  --name <name>           the model's name (default: from the file or repository folder)
  --request <file.json>   a sample v2 request to ship and check at build time (repeatable; default: the
                          model's requests/*.json when it sits in a repository laid out like examples/)
  --port <n>              devices: the port the systemd unit listens on (default 8080)
  --host <addr>           devices: the address it listens on (default 127.0.0.1, this device only; 0.0.0.0 for
                          the network: the edge server has no authentication)
  --force                 replace the contents of a non-empty --out folder
  --json                  print the build report as JSON
  -h, --help              show this help

Examples:
  dais build examples/digits/1/model.onnx --target edge --out dist/digits-web
  dais build examples --target edge --platform linux-arm64 --out dist/pi --max-memory 256
`;

/** The edge target's flags (`dais build` reads which take no value from here). */
export const FLAGS = flags({ string: ['out', 'platform', 'max-memory', 'threads', 'name', 'port', 'host'], boolean: ['webgpu', 'force', 'json'], multiple: ['request'] });

function summary(r: EdgeBuildResult): string {
  const b = r.build;
  const lines: string[] = [];
  if (b.platform === 'browser') {
    lines.push(`built a browser bundle of '${b.model.name}' in ${b.outDir}`);
    lines.push(`  runtime: onnxruntime-web ${b.runtime.onnxruntimeWeb} (${b.runtime.build}), ${b.runtime.threads} thread${b.runtime.threads === 1 ? '' : 's'}`);
    for (const f of b.files) lines.push(`  ${f.path.padEnd(40)} ${formatBytes(f.bytes).padStart(10)}  gzip ${formatBytes(f.gzipBytes).padStart(10)}`);
    lines.push(`  total ${formatBytes(b.totalBytes)}, gzip ${formatBytes(b.totalGzipBytes)}; first page load downloads ${formatBytes(b.pageLoadGzipBytes)} gzip`);
    for (const c of b.checked) lines.push(`  checked ${c.request} on onnxruntime-web in Node: ${c.ms.toFixed(1)} ms`);
    if (b.runtime.crossOriginIsolationRequired) lines.push('  threads need COOP/COEP headers: see README.md');
    lines.push(`  try: cd ${b.outDir} && python3 -m http.server 8000   then open http://127.0.0.1:8000/`);
  } else {
    lines.push(`built a ${b.platform} device bundle of ${b.models.map((m) => `'${m.name}'`).join(', ')} in ${b.outDir}`);
    lines.push(`  onnxruntime-node ${b.onnxruntimeNode} (${b.platform} binary only); needs Node.js ${b.nodeEngine} on the device`);
    lines.push(`  size ${formatBytes(b.totalBytes)} in ${b.files.length} files (runtime binary ${formatBytes(b.runtimeBytes)}, models ${formatBytes(b.modelBytes)}, server ${formatBytes(b.serverBytes)})`);
    lines.push(`  install on the device: sudo ./install.sh   (systemd unit ${b.unit}, port ${b.port})`);
    lines.push(`  try here: node ${b.outDir}/dais-edge.mjs predict ${b.models[0].name} <request.json>`);
  }
  if (r.memory) {
    lines.push(`  memory: peak ${r.memory.peakMb.toFixed(0)} MB ${r.memory.measure}, within --max-memory ${r.memory.budgetMb} MB`);
  }
  return `${lines.join('\n')}\n`;
}

export async function runBuild(model: string, argv: string[]): Promise<number> {
  const v = parseFlags('build --target edge', argv, FLAGS).values;
  const platform = (v.platform ?? 'browser') as EdgePlatform;
  if (!PLATFORMS.includes(platform)) throw new CliError(`--platform must be one of ${PLATFORMS.join(', ')}, got '${v.platform}'`);
  if (v.webgpu && platform !== 'browser') throw new CliError('--webgpu applies to --platform browser only (device bundles run onnxruntime-node on the CPU)');
  const maxMemoryMb = intFlag('max-memory', v['max-memory'], undefined, 1, 1024 * 1024);
  const threads = intFlag('threads', v.threads, undefined, 1, 256);
  const port = intFlag('port', v.port, undefined, 1, 65535);
  if ((port !== undefined || v.host !== undefined) && platform === 'browser') throw new CliError('--port and --host apply to device bundles (--platform linux-x64 | linux-arm64)');
  if (!v.out) throw new CliError('--out <dir> is required: the folder to write the bundle into');
  const result = await buildEdge(model, { platform, out: v.out, force: v.force, maxMemoryMb, webgpu: v.webgpu, threads, name: v.name, requests: v.request, port, host: v.host });
  process.stdout.write(v.json ? `${JSON.stringify(result, null, 2)}\n` : summary(result));
  return 0;
}
