// `dais optimize` as users run it: the real CLI in a child process on the examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';

function dais(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), ...args], { encoding: 'utf8', cwd: REPO_ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const model = (m: string) => join(EXAMPLES_DIR, m, '1', 'model.onnx');
const heldout = (m: string) => join(EXAMPLES_DIR, m, 'heldout.json');
const dir = mkdtempSync(join(tmpdir(), 'dais-optimize-'));

test('int8 weights on the MLP: writes the file and reports size, accuracy, latency and peak memory for both', () => {
  const out = join(dir, 'mlp-int8.onnx');
  const r = dais('optimize', model('mlp'), '--out', out, '--quantize', 'int8-weights', '--eval', heldout('mlp'), '--json');
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.written, out);
  assert.equal(statSync(out).size, report.size.after);
  assert.ok(report.size.ratio <= 0.3);
  assert.ok(report.drop <= 0.01);
  assert.equal(report.comparison.rows, 300);
  for (const side of ['before', 'after']) {
    const m = report.measurements[side];
    assert.ok(m.latencyMs.median > 0 && m.latencyMs.runs >= 20, JSON.stringify(m));
    assert.ok(m.peakRssBytes > 10 * 1024 * 1024, JSON.stringify(m));
    assert.equal(m.batch.rows, 300);
  }
  // And what it wrote is a model dais inspect reads.
  const inspected = dais('inspect', out, '--json');
  assert.equal(JSON.parse(inspected.stdout).nodeCountByOp.DequantizeLinear, 2);
});

test('human output is a before/after table', () => {
  const out = join(dir, 'digits-fp16.onnx');
  const r = dais('optimize', model('digits'), '--out', out, '--quantize', 'fp16', '--eval', heldout('digits'), '--no-measure');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}size +\d+\.\d KiB +\d+\.\d KiB +0\.5\d\dx$/m);
  assert.match(r.stdout, /^ {2}accuracy \(300 rows\) +97\.67% +9\d\.\d\d% +drop -?\d\.\d\d points \(max 1\.00\)$/m);
  assert.match(r.stdout, /runs in: onnxruntime-node ok, onnxruntime-web ok/);
  assert.match(r.stdout, new RegExp(`wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});

test('an over-aggressive setting is refused: nothing written, exit 1, the drop and the excess named', () => {
  const out = join(dir, 'digits-2bit.onnx');
  const r = dais('optimize', model('digits'), '--out', out, '--bits', '2', '--eval', heldout('digits'), '--no-measure');
  assert.equal(r.code, 1);
  assert.equal(existsSync(out), false);
  assert.match(r.stderr, /^dais optimize: refused to write .*digits-2bit\.onnx: accuracy dropped by \d+\.\d\d points \(97\.67% → \d+\.\d\d%\), more than --max-drop 1\.00 points allows \(over by \d+\.\d\d points\)\n$/);
});

test('tree ensembles: quantization is refused with what to do instead; --prune-trees auto works', () => {
  const out = join(dir, 'trees.onnx');
  const q = dais('optimize', model('maintenance'), '--out', out, '--quantize', 'int8-weights');
  assert.equal(q.code, 1);
  assert.match(q.stderr, /quantization does not apply to this model: it is a tree ensemble .*--prune-trees auto --eval/);
  const p = dais('optimize', model('maintenance'), '--out', out, '--prune-trees', 'auto', '--eval', heldout('maintenance'), '--max-drop', '0.02', '--no-measure', '--json');
  assert.equal(p.code, 0, p.stderr);
  const report = JSON.parse(p.stdout);
  assert.ok(report.trees[0].treesAfter < report.trees[0].treesBefore);
  assert.ok(report.drop <= 0.02);
  assert.ok(statSync(out).size < statSync(model('maintenance')).size);
});

test('bad flags and bad files: one line, exit 1', () => {
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ input: 'input', rowShape: [784], x: [[1, 2]] }));
  for (const [args, want] of [
    [[model('mlp')], /--out <file> is required/],
    [[model('mlp'), '--out', join(dir, 'x.onnx'), '--quantize', 'int4'], /--quantize must be one of int8-weights, int8-dynamic, fp16, got 'int4'/],
    [[model('mlp'), '--out', join(dir, 'x.onnx'), '--max-drop', '5'], /--max-drop must be a fraction from 0 to 1/],
    [[model('mlp'), '--out', join(dir, 'x.onnx'), '--eval', bad], /bad\.json: "x"\[0\] must hold 784 numbers/],
    [[join(dir, 'missing.onnx'), '--out', join(dir, 'x.onnx')], /model file not found/],
    [[join(REPO_ROOT, 'package.json'), '--out', join(dir, 'x.onnx')], /is not an ONNX model/],
  ] as const) {
    const r = dais('optimize', ...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
