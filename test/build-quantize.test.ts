// `dais build --quantize`: the optimized model goes to the target under the same name, with its sample requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';
import { quantizeForBuild } from '../src/optimize/build-step.ts';
import { OptimizeError } from '../src/optimize/index.ts';
import { readOnnx } from '../src/formats/onnx/onnx.ts';

const model = (m: string) => join(EXAMPLES_DIR, m, '1', 'model.onnx');

test('quantizeForBuild keeps the repository layout and the target flags, and removes its copy afterwards', async () => {
  const q = await quantizeForBuild(model('digits'), ['--out', '/x', '--quantize', 'int8-weights', '--eval', join(EXAMPLES_DIR, 'digits', 'heldout.json'), '--max-drop=0.02', '--force']);
  assert.deepEqual(q.argv, ['--out', '/x', '--force']);
  assert.equal(basename(q.model), 'model.onnx');
  assert.equal(basename(dirname(q.model)), '1');
  assert.equal(basename(dirname(dirname(q.model))), 'digits');
  assert.ok(lstatSync(join(dirname(dirname(q.model)), 'requests')).isSymbolicLink());
  assert.ok(statSync(q.model).size <= 0.3 * statSync(model('digits')).size);
  assert.ok(readOnnx(new Uint8Array(readFileSync(q.model))).graph!.node!.some((n) => n.opType === 'DequantizeLinear'));
  assert.ok(q.report!.accepted && q.report!.drop! <= 0.02);
  await q.cleanup();
  assert.equal(existsSync(q.model), false);

  const untouched = await quantizeForBuild(model('digits'), ['--out', '/x']);
  assert.equal(untouched.model, model('digits'));
  await assert.rejects(quantizeForBuild(model('maintenance'), ['--quantize', 'fp16']), (e: Error) => e instanceof OptimizeError && /tree ensemble/.test(e.message));
});

test('quantizeForBuild on a folder: every model version optimized in a copy that keeps the layout and the other files', async () => {
  const one = await quantizeForBuild(join(EXAMPLES_DIR, 'mlp'), ['--out', '/x', '--quantize', 'int8-weights', '--eval', join(EXAMPLES_DIR, 'mlp', 'heldout.json')]);
  assert.deepEqual(one.argv, ['--out', '/x']);
  assert.equal(basename(one.model), 'mlp', 'a model folder keeps its name (the model name)');
  assert.ok(readOnnx(new Uint8Array(readFileSync(join(one.model, '1', 'model.onnx')))).graph!.node!.some((n) => n.opType === 'DequantizeLinear'));
  assert.ok(existsSync(join(one.model, 'requests', 'single.json')));
  assert.ok(one.report!.accepted);
  await one.cleanup();
  assert.equal(existsSync(one.model), false);

  // A repository: each model quantized; the tree ensemble, which fp16 does not apply to, ships as it is, said aloud.
  const repo = await quantizeForBuild(EXAMPLES_DIR, ['--quantize', 'fp16']);
  try {
    for (const m of ['digits', 'keyword', 'mlp']) {
      assert.ok(readOnnx(new Uint8Array(readFileSync(join(repo.model, m, '1', 'model.onnx')))).metadataProps!.some((p) => p.key === 'dais.optimize' && p.value === 'fp16'), m);
    }
    assert.deepEqual(readFileSync(join(repo.model, 'maintenance', '1', 'model.onnx')), readFileSync(model('maintenance')));
    assert.ok(repo.notes!.some((n) => /^maintenance v1 kept as it is: .*tree ensemble/.test(n)), repo.notes!.join('\n'));
  } finally {
    await repo.cleanup();
  }
  await assert.rejects(quantizeForBuild(EXAMPLES_DIR, ['--quantize', 'int8-weights', '--eval', join(EXAMPLES_DIR, 'mlp', 'heldout.json')]), /--eval describes one model's inputs, but .* holds \d+ models/);
});

test("the README's command works as printed: dais build examples/mlp --target lambda --quantize int8-weights --eval …", () => {
  const out = join(mkdtempSync(join(tmpdir(), 'dais-build-q-')), 'mlp-int8');
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'build', 'examples/mlp', '--target', 'lambda', '--out', out, '--quantize', 'int8-weights', '--eval', 'examples/mlp/heldout.json'], { encoding: 'utf8', cwd: REPO_ROOT });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /for mlp v1/);
  const built = readOnnx(new Uint8Array(readFileSync(join(out, 'function', 'models', 'mlp', '1', 'model.onnx'))));
  assert.ok(built.metadataProps!.some((p) => p.key === 'dais.optimize' && p.value === 'int8-weights'));
});

test('dais build --target edge --quantize: the browser bundle carries the int8 model and its check passes in onnxruntime-web', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'dais-build-q-')), 'site');
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'build', model('digits'), '--target', 'edge', '--out', out, '--quantize', 'int8-weights', '--eval', join(EXAMPLES_DIR, 'digits', 'heldout.json')], { encoding: 'utf8', cwd: REPO_ROOT });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /bundle of 'digits'/);
  assert.match(r.stdout, /checked single\.json on onnxruntime-web/);
  const bundled = readOnnx(new Uint8Array(readFileSync(join(out, 'model.onnx'))));
  assert.ok(bundled.metadataProps!.some((p) => p.key === 'dais.optimize' && p.value === 'int8-weights'));
  assert.ok(statSync(join(out, 'model.onnx')).size <= 0.3 * statSync(model('digits')).size);
});
