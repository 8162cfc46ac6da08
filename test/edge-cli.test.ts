// `dais build --target edge`: the CLI wiring (help, one-line errors, exit codes, --json), refusals of bad flags and
// inputs, and the --max-memory budget: measured in a child process, refused with a message that names the figure,
// the budget and the quantization command, accepted when the budget covers the measured peak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { help, runBuild } from '../src/cli/build-edge.ts';
import { buildEdge } from '../src/targets/edge/build.ts';
import { measurePeakMemory } from '../src/targets/edge/memory-budget.ts';
import { EdgeBuildError, loadModelSources, modelNameFor } from '../src/targets/edge/model-source.ts';
import { examples } from './edge-support.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';
import { UserError } from '../src/core/errors.ts';

const DAIS = join(REPO_ROOT, 'bin', 'dais.js');

function dais(args: string[]) {
  return spawnSync(process.execPath, [DAIS, ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'dais-edge-cli-'));
}

const maintenance = join(EXAMPLES_DIR, 'maintenance', '1', 'model.onnx');
const digits = join(EXAMPLES_DIR, 'digits', '1', 'model.onnx');

test('the edge target is listed by dais build --help, and its own help names the platforms and flags', () => {
  const list = dais(['build', '--help']);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /^\s+edge\s+Browser static site/m);
  for (const s of ['--platform browser', 'linux-x64', 'linux-arm64', '--max-memory', '--webgpu', '--threads', '--out', '--force', '--json']) assert.ok(help.includes(s), s);
});

test('--json prints the build report; the second build into the same folder needs --force', async () => {
  const out = tmp();
  try {
    const r = dais(['build', maintenance, '--target', 'edge', '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { build: { platform: string; model: { name: string }; totalGzipBytes: number; files: { path: string }[] } };
    assert.equal(report.build.platform, 'browser');
    assert.equal(report.build.model.name, 'maintenance');
    assert.ok(report.build.totalGzipBytes > 1_000_000, 'the wasm runtime is most of it');
    assert.deepEqual(
      report.build.files.map((f) => f.path).filter((p) => !p.startsWith('requests/')),
      ['README.md', 'dais.js', 'demo.js', 'index.html', 'model.onnx', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'],
    );
    await assert.rejects(runBuild(maintenance, ['--out', out]), { message: `--out ${out} is not empty; choose another folder or pass --force to replace its contents` });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('bad flags and inputs are refused with one line naming the cause', async () => {
  const out = join(tmp(), 'x');
  const cases: [string, string[], RegExp][] = [
    ['platform', [maintenance, '--out', out, '--platform', 'win32'], /--platform must be one of browser, linux-x64, linux-arm64, got 'win32'/],
    ['webgpu on a device', [maintenance, '--out', out, '--platform', 'linux-x64', '--webgpu'], /--webgpu applies to --platform browser only/],
    ['memory', [maintenance, '--out', out, '--max-memory', 'lots'], /--max-memory must be an integer from 1 to \d+, got 'lots'/],
    ['threads', [maintenance, '--out', out, '--threads', '0'], /--threads must be an integer from 1 to 256, got '0'/],
    ['port on browser', [maintenance, '--out', out, '--port', '80'], /--port and --host apply to device bundles/],
    ['no out', [maintenance], /--out <dir> is required/],
    ['unknown flag', [maintenance, '--out', out, '--gpu'], /Unknown option '--gpu'.*see 'dais build --target edge --help'/],
    ['misspelled flag', [maintenance, '--out', out, '--platfrom', 'linux-x64'], /Unknown option '--platfrom': did you mean --platform\? \(see 'dais build --target edge --help'\)/],
    ['missing model', ['nope.onnx', '--out', out], /no such model file or repository: nope\.onnx/],
    ['many models in a browser bundle', [EXAMPLES_DIR, '--out', out], /holds \d+ models \(digits, .*\); a browser bundle holds one: give one model, e\.g\. .*model\.onnx/],
    ['bad name', [maintenance, '--out', out, '--name', 'a b'], /--name 'a b' may hold only letters/],
  ];
  for (const [what, [model, ...argv], message] of cases) {
    await assert.rejects(runBuild(model, argv), (e: unknown) => e instanceof UserError && message.test(e.message), what);
  }
  assert.ok(!existsSync(out), 'nothing written');
});

test('a model the browser runtime cannot load fails the build with the runtime named', async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'broken.onnx'), 'not a model');
    await assert.rejects(
      buildEdge(join(dir, 'broken.onnx'), { platform: 'browser', out: join(dir, 'out') }),
      (e: unknown) => e instanceof EdgeBuildError && /onnxruntime-web \S+ \(the browser runtime\) cannot load this model/.test(e.message),
    );
    assert.ok(!existsSync(join(dir, 'out')), '--out untouched');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sample request that does not fit the model fails the build', async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }));
    await assert.rejects(
      buildEdge(maintenance, { platform: 'browser', out: join(dir, 'out'), requests: [join(dir, 'bad.json')] }),
      (e: unknown) => e instanceof EdgeBuildError && /sample request bad\.json failed on onnxruntime-web: input 'input' has shape \[1, 2\]/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('model names come from the repository layout, and a model without samples gets a zeros request', async () => {
  assert.equal(modelNameFor('examples/digits/1/model.onnx'), 'digits');
  assert.equal(modelNameFor('/x/my net.onnx'), 'my_net');
  const dir = tmp();
  try {
    const { copyFileSync } = await import('node:fs');
    copyFileSync(digits, join(dir, 'lonely.onnx'));
    const { build } = await buildEdge(join(dir, 'lonely.onnx'), { platform: 'browser', out: join(dir, 'out') });
    assert.equal(build.platform, 'browser');
    assert.deepEqual(readdirSync(join(dir, 'out', 'requests')), ['zeros.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--max-memory: refused below the measured peak with the figure, the budget and the fix; accepted above it', async () => {
  const [source] = await loadModelSources(digits, { allowMany: false });
  const m = await measurePeakMemory([source], { platform: 'linux-x64' });
  // A real process: node itself plus onnxruntime and the model, well over node's own size and under a gigabyte.
  assert.ok(m.processPeakMb > m.nodeBaselineMb + 5 && m.processPeakMb < 1024, `peak ${m.processPeakMb} MB, node ${m.nodeBaselineMb} MB`);
  assert.ok(m.runs >= 2 * 3, 'each sample request ran three times');

  const under = Math.floor(m.peakMb * 0.6);
  const r = dais(['build', digits, '--target', 'edge', '--platform', 'linux-x64', '--out', join(tmp(), 'refused'), '--max-memory', String(under)]);
  assert.equal(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, 'one line, no stack trace');
  assert.match(
    lines[0],
    new RegExp(
      `^dais build: model 'digits' needs \\d+ MB at peak \\(resident in one onnxruntime-node process loading the model and running its sample requests\\), ` +
        `over --max-memory ${under} MB\\. Shrink it with 'dais optimize (\\S+)model\\.onnx --quantize int8-weights --out \\1model\\.int8\\.onnx' and build \\1model\\.int8\\.onnx, or raise --max-memory\\.$`,
    ),
  );

  const out = tmp();
  try {
    const over = Math.ceil(m.peakMb * 1.5);
    const { memory, build } = await buildEdge(digits, { platform: 'linux-x64', out, maxMemoryMb: over });
    assert.ok(memory && memory.peakMb <= over && memory.budgetMb === over);
    assert.equal(build.platform, 'linux-x64');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('--max-memory for the browser counts what onnxruntime-web and the model add to a bare process', async () => {
  const ex = examples().find((e) => e.name === 'maintenance')!;
  const out = join(tmp(), 'refused');
  await assert.rejects(
    buildEdge(ex.model, { platform: 'browser', out, maxMemoryMb: 1 }),
    (e: unknown) => e instanceof EdgeBuildError && /needs \d+ MB at peak \(added by onnxruntime-web's WebAssembly runtime and the model on top of a bare Node process's \d+ MB\), over --max-memory 1 MB/.test(e.message),
  );
  assert.ok(!existsSync(out), 'a refused build writes nothing');
});
