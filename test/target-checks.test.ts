// Builds refuse what will not run and ship what will (issue 17): a model onnxruntime cannot open is refused with
// the op named; a model with external data ships whole and answers; the container keeps the drift profile.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';
import { assertClose } from './support/examples.ts';
import { loadModelFile } from '../src/formats/index.ts';
import { readOnnx, writeOnnx } from '../src/formats/onnx/onnx.ts';
import { measureServingMemory } from '../src/targets/container/memory.ts';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'targets');
const tmp = mkdtempSync(join(tmpdir(), 'dais-target-checks-'));
// From another folder than the model's: runtimes resolve external data against the working directory.
const dais = (...args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), ...args], { encoding: 'utf8', cwd: tmp });
const externalExpected = JSON.parse(readFileSync(join(FIXTURES, 'external-data', 'expected.json'), 'utf8'))['single.json'].outputs.y.data as number[];

for (const target of ['lambda', 'container']) {
  test(`a model with an op onnxruntime does not have (FancySoftmax) → the ${target} build refuses, naming it; nothing is built`, () => {
    const out = join(tmp, `custom-op-${target}`);
    const r = dais('build', join(FIXTURES, 'custom-op'), '--target', target, '--out', out);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /custom-op v1 .* does not load in onnxruntime-node [\d.]+, the runtime the (Lambda function|container image) ships.*FancySoftmax/);
    assert.equal(existsSync(join(out, 'function.zip')), false);
    assert.equal(existsSync(join(out, 'models')), false);
  });
}

test('external data: the model loads from any working directory, with the data read into it', async () => {
  const loaded = await loadModelFile(join(FIXTURES, 'external-data', '1', 'model.onnx'));
  assert.deepEqual(loaded.notes, ['external data read from model.onnx.data into the model']);
  const model = readOnnx(loaded.onnx);
  assert.deepEqual(model.graph!.initializer!.map((t) => [t.name, t.dataLocation ?? 0, t.rawData!.length]), [['W', 0, 48], ['b', 0, 12]]);
});

test('external data → lambda: the function carries the weights and answers its request in the emulator', () => {
  const out = join(tmp, 'external-lambda');
  const b = dais('build', join(FIXTURES, 'external-data'), '--target', 'lambda', '--out', out);
  assert.equal(b.status, 0, b.stderr);
  const r = dais('invoke', out, '--event', join(FIXTURES, 'external-data', 'requests', 'single.json'), '--json');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const report = JSON.parse(r.stdout) as { reports: { status: string; result: { outputs: { name: string; data: number[] }[] } }[] };
  assert.equal(report.reports[0].status, 'success');
  assertClose(report.reports[0].result.outputs.find((o) => o.name === 'y')!.data, externalExpected, 'y');
});

test('external data → container: the context carries model.onnx.data beside model.onnx', () => {
  const out = join(tmp, 'external-container');
  const r = dais('build', join(FIXTURES, 'external-data'), '--target', 'container', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readFileSync(join(out, 'models', 'external-data', '1', 'model.onnx.data')), readFileSync(join(FIXTURES, 'external-data', '1', 'model.onnx.data')));
});

test("container: the model's profile.json ships beside it, so drift monitoring is on in the image", () => {
  const out = join(tmp, 'profile-container');
  const r = dais('build', join(EXAMPLES_DIR, 'maintenance'), '--target', 'container', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readFileSync(join(out, 'models', 'maintenance', '1', 'profile.json')), readFileSync(join(EXAMPLES_DIR, 'maintenance', '1', 'profile.json')));
});

test('external data → edge: the browser bundle carries one self-contained model, checked on onnxruntime-web', () => {
  const out = join(tmp, 'external-edge');
  const r = dais('build', join(FIXTURES, 'external-data'), '--target', 'edge', '--out', out, '--request', join(FIXTURES, 'external-data', 'requests', 'single.json'));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /checked single\.json on onnxruntime-web/);
  assert.ok(readOnnx(new Uint8Array(readFileSync(join(out, 'model.onnx')))).graph!.initializer!.every((t) => (t.dataLocation ?? 0) === 0));
});

test('external data outside the model folder is refused, not read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dais-ext-escape-'));
  const model = readOnnx(new Uint8Array(readFileSync(join(FIXTURES, 'external-data', '1', 'model.onnx'))));
  for (const t of model.graph!.initializer!) for (const e of t.externalData!) if (e.key === 'location') e.value = '../../etc/passwd';
  writeFileSync(join(dir, 'model.onnx'), writeOnnx(model));
  await assert.rejects(loadModelFile(join(dir, 'model.onnx')), /external data location '\.\.\/\.\.\/etc\/passwd' is outside the model's folder/);
});

test('lambda: the build measures a cold start and warns when over --memory or an answer is over 6 MB; --strict refuses; the suggested --memory fits', () => {
  const out = join(tmp, 'big-answer-lambda');
  const model = join(FIXTURES, 'big-answer');
  const r = dais('build', model, '--target', 'lambda', '--out', out, '--memory', '128');
  assert.equal(r.status, 0, r.stderr);
  // The answer is 2,000,000 FP32 values in JSON, each written as its shortest float32 decimal (json-float.ts).
  assert.match(r.stdout, /cold start here {10}INIT \d+\.\d\d s of Lambda's 10 s, peak (\d+) MB of --memory 128, largest answer 21\.0 MB of 6 MB/);
  const peak = Number(/peak (\d+) MB/.exec(r.stdout)![1]);
  assert.ok(peak > 128);
  const suggested = /warning: the function peaked at \d+ MB here .*, over --memory 128: build with '--memory (\d+)'/.exec(r.stdout)?.[1];
  assert.ok(suggested, r.stdout);
  assert.match(r.stdout, /warning: the answer to big-answer's sample request \(.*single\.json\) failed: the response is 22000119 bytes, over Lambda's 6291456-byte limit/);

  const strict = dais('build', model, '--target', 'lambda', '--out', out, '--memory', '128', '--strict');
  assert.equal(strict.status, 1, strict.stdout);
  assert.match(strict.stderr, /--strict: the function peaked at .*over --memory 128.*22000119 bytes/);
  assert.equal(existsSync(join(out, 'function.zip')), false, 'a refused build leaves no zip to deploy');

  const fixed = dais('build', model, '--target', 'lambda', '--out', out, '--memory', suggested);
  assert.equal(fixed.status, 0, fixed.stderr);
  assert.doesNotMatch(fixed.stdout, /over --memory/);
});

test('container --k8s: the measured peak includes answering the largest sample request, not only the models at rest', async () => {
  const out = join(tmp, 'big-answer-container');
  const r = dais('build', join(FIXTURES, 'big-answer'), '--target', 'container', '--out', out, '--k8s', '--json');
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    k8s: {
      memory: { measuredPeakRssBytes: number };
      phases: { loadPeakRssBytes: number; readyRssBytes: number; answerPeakRssBytes?: number };
      answered: { model: string; request: string; status: number; responseBytes: number }[];
    };
  };
  assert.deepEqual(report.k8s.answered.map((a) => [a.model, a.request, a.status]), [['big-answer', join(FIXTURES, 'big-answer', 'requests', 'single.json'), 200]]);
  assert.ok(report.k8s.answered[0].responseBytes > 20_000_000);
  // The answer's own peak is measured from the resident size once ready (VmHWM reset then), in the same process
  // (comparing the whole-run peaks of two processes was not enough: the load's garbage, output tensors of 8 MB a run,
  // could make the load the peak of both).
  const { loadPeakRssBytes, readyRssBytes, answerPeakRssBytes } = report.k8s.phases;
  assert.ok(answerPeakRssBytes !== undefined, 'this kernel resets VmHWM through /proc/<pid>/clear_refs');
  const grew = (p: { readyRssBytes: number; answerPeakRssBytes?: number }) => p.answerPeakRssBytes! - p.readyRssBytes;
  assert.equal(report.k8s.memory.measuredPeakRssBytes, Math.max(loadPeakRssBytes, answerPeakRssBytes));
  // The same server answering a request with no rows — refused before the run (400 EMPTY_TENSOR, a 100-byte answer).
  const empty = join(tmp, 'empty-request.json');
  writeFileSync(empty, JSON.stringify({ inputs: [{ name: 'x', shape: [0, 1], datatype: 'FP32', data: [] }] }));
  const atRest = await measureServingMemory(out, undefined, new Map([['big-answer', empty]]));
  assert.equal(atRest.answered[0].status, 400);
  // Measured 2026-12-07: 49.3-49.9 MB against 0.2 MB for the refused request (the load's own outputs are freed as
  // they come, runtime/give-back.ts; before that, collecting them while the answer was made hid up to 35 MB of it).
  assert.ok(grew(report.k8s.phases) - grew(atRest) > 20_000_000, `answering grew RSS by ${grew(report.k8s.phases)} bytes, a refused request by ${grew(atRest)}`);
});
