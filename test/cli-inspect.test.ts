// `dais inspect` as users run it: the real CLI in a child process, on the examples and fixtures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';
import type { ModelInspection } from '../src/formats/onnx/inspect.ts';

function dais(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), ...args], { encoding: 'utf8', cwd: REPO_ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function inspectJson(path: string): ModelInspection {
  const r = dais('inspect', path, '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ModelInspection;
}

const example = (m: string) => join(EXAMPLES_DIR, m, '1', 'model.onnx');

test('maintenance (random forest): tree ensemble, tabular input, label and probabilities', (t) => {
  if (!existsSync(example('maintenance'))) return t.skip('examples/maintenance not made yet');
  const info = inspectJson(example('maintenance'));
  assert.equal(info.nodeCountByOp['ai.onnx.ml::TreeEnsembleClassifier'], 1);
  assert.ok(info.opsetImports.some((o) => o.domain === 'ai.onnx.ml'));
  assert.equal(info.inputs.length, 1);
  assert.equal(info.inputs[0].datatype, 'FP32');
  assert.equal(info.inputs[0].shape.length, 2);
  assert.ok(info.treeEnsembles![0].trees > 1);
  const bytes = readFileSync(example('maintenance'));
  assert.equal(info.fileSize, bytes.length);
  assert.equal(info.sha256, createHash('sha256').update(bytes).digest('hex'));
});

test('digits (CNN): input [batch, 1, 8, 8], Conv among the operators, parameters counted', (t) => {
  if (!existsSync(example('digits'))) return t.skip('examples/digits not made yet');
  const info = inspectJson(example('digits'));
  const [x] = info.inputs;
  assert.equal(x.datatype, 'FP32');
  assert.equal(x.shape.length, 4);
  assert.ok(typeof x.shape[0] === 'string' || x.shape[0] === -1, `batch dimension should be dynamic, got ${x.shape[0]}`);
  assert.deepEqual(x.shape.slice(1), [1, 8, 8]);
  assert.ok(info.nodeCountByOp.Conv >= 1);
  assert.ok(info.parameterCount > 1000);
  assert.equal(info.outputs[0].shape.at(-1), 10);
});

test('keyword (GRU): a recurrent op and a sequence input', (t) => {
  if (!existsSync(example('keyword'))) return t.skip('examples/keyword not made yet');
  const info = inspectJson(example('keyword'));
  assert.ok((info.nodeCountByOp.GRU ?? 0) + (info.nodeCountByOp.LSTM ?? 0) >= 1);
  assert.equal(info.inputs[0].shape.length, 3);
});

test('human output is a table naming inputs, outputs and operators', (t) => {
  const path = existsSync(example('digits')) ? example('digits') : example('maintenance');
  if (!existsSync(path)) return t.skip('no example model yet');
  const r = dais('inspect', path);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^model {6}.*model\.onnx$/m);
  assert.match(r.stdout, /^sha256 {5}[0-9a-f]{64}$/m);
  assert.match(r.stdout, /^inputs\n {2}name +datatype +shape\n/m);
  assert.match(r.stdout, /^operators \(\d+ nodes\)$/m);
});

test('a ZipMap classifier is described with its non-tensor output', (t) => {
  const path = join(REPO_ROOT, 'test/fixtures/zipmap-classifier.onnx');
  if (!existsSync(path)) return t.skip('test/fixtures/zipmap-classifier.onnx not made yet');
  const info = inspectJson(path);
  assert.ok(info.nodeCountByOp['ai.onnx.ml::ZipMap'] === 1);
  assert.ok(info.outputs.some((o) => !o.tensor && o.datatype.startsWith('seq(map(')));
});

test('corrupt, non-ONNX and missing files: one line on stderr, exit code 1, no stack', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dais-inspect-'));
  const corrupt = join(dir, 'corrupt.onnx');
  const src = existsSync(example('maintenance')) ? readFileSync(example('maintenance')) : Buffer.from([0x08, 0x08, 0x3a, 0x10]);
  writeFileSync(corrupt, src.subarray(0, Math.floor(src.length / 2)));
  const fixture = join(REPO_ROOT, 'test/fixtures/not-a-model.onnx');
  const notModel = existsSync(fixture) ? fixture : join(REPO_ROOT, 'package.json');
  for (const [path, want] of [
    [corrupt, /corrupt\.onnx is not an ONNX model \(protobuf parse failed at byte \d+/],
    [notModel, /is not an ONNX model/],
    [join(dir, 'missing.onnx'), /model file not found: .*missing\.onnx/],
  ] as const) {
    const r = dais('inspect', path);
    assert.equal(r.code, 1, `${path}: ${r.stdout}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  const noArgs = dais('inspect');
  assert.equal(noArgs.code, 1);
  assert.match(noArgs.stderr, /expected one model file/);
});

test('--memory: loads the model as dais serve would and reports the memory it adds and where it runs', () => {
  const r = dais('inspect', example('mlp'), '--json', '--memory');
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as ModelInspection & { served: { memoryBytes: number; processBytes: number; plan: { thread: string; intraOpThreads: number; batch1Us: number } } };
  // The process holds at least the weights once the session exists (and less than the whole process).
  assert.ok(info.served.memoryBytes >= info.initializerBytes, `${info.served.memoryBytes} < ${info.initializerBytes}`);
  assert.ok(info.served.memoryBytes < info.served.processBytes);
  assert.ok(['main', 'worker'].includes(info.served.plan.thread));
  assert.ok(info.served.plan.batch1Us > 0);
  const text = dais('inspect', example('mlp'), '--memory');
  assert.match(text.stdout, /served \(measured[^\n]*\n {2}memory {5}[\d.]+ (KiB|MiB) added to the process/);
});
