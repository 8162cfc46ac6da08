// `dais profile`: reference profiles of the maintenance example from CSV, JSON Lines and .npy, checked against
// NumPy's statistics of the same rows and the example's documented held-out accuracy.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseCsv, parseNpy } from '../src/monitor/data-file.ts';
import { buildProfile } from '../src/monitor/profile.ts';
import type { ModelProfile } from '../src/monitor/model-profile.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'monitor');
const MODEL = join(EXAMPLES_DIR, 'maintenance', '1', 'model.onnx');
const HELDOUT_CSV = join(EXAMPLES_DIR, 'maintenance', 'heldout.csv');
const numpyStats = JSON.parse(readFileSync(join(FIXTURES, 'maintenance-heldout-stats.json'), 'utf8')) as Record<string, { mean: number; std: number; min: number; max: number }>;
const tmp = mkdtempSync(join(tmpdir(), 'dais-profile-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const dais = (...args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'dais.js'), ...args], { encoding: 'utf8', cwd: REPO_ROOT });

describe('dais profile', () => {
  let fromCsv: ModelProfile;

  it('profiles heldout.csv: NumPy moments per feature, deciles, outputs, label and the model accuracy the README states', async () => {
    const out = join(tmp, 'profile.json');
    const r = dais('profile', join(EXAMPLES_DIR, 'maintenance'), '--data', HELDOUT_CSV, '--out', out, '--json');
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.rows, 400);
    assert.equal(summary.task, 'classification');
    assert.equal(summary.reference.accuracy, 0.895); // examples/maintenance/README.md: 89.5% on 400 rows
    fromCsv = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(fromCsv.format, 'dais-profile/1');
    assert.equal(fromCsv.model, 'maintenance');
    assert.equal(fromCsv.version, '1');
    const features = fromCsv.inputs[0].features;
    assert.deepEqual(
      features.map((f) => f.name),
      Object.keys(numpyStats),
    );
    for (const f of features) {
      assert.equal(f.kind, 'numeric');
      if (f.kind !== 'numeric') continue;
      const s = numpyStats[f.name];
      assert.ok(Math.abs(f.mean - s.mean) < 1e-9 * Math.abs(s.mean), `${f.name} mean ${f.mean} vs ${s.mean}`);
      assert.ok(Math.abs(f.std - s.std) < 1e-9 * s.std, `${f.name} std ${f.std} vs ${s.std}`);
      assert.equal(f.min, s.min);
      assert.equal(f.max, s.max);
      assert.equal(f.missingRate, 0);
      assert.equal(f.binCounts.reduce((a, b) => a + b), 400);
      assert.ok(f.binCounts.every((c) => c >= 25 && c <= 60), `${f.name} deciles hold ~40 rows each (ties aside): ${f.binCounts}`);
      assert.equal(f.histogram.counts.reduce((a, b) => a + b), 400);
      assert.equal(f.sample.length, 400);
    }
    const outs = fromCsv.outputs.flatMap((t) => t.features);
    assert.deepEqual(
      outs.map((f) => `${f.name}:${f.kind}`),
      ['label:categorical', 'probabilities[0]:numeric', 'probabilities[1]:numeric', 'probabilities[2]:numeric'],
    );
    // The predicted class counts follow the README's confusion matrix column sums (229 ok, 111 wear, 60 failure).
    const label = outs[0];
    assert.ok(label.kind === 'categorical');
    if (label.kind === 'categorical') assert.deepEqual(label.categories, { '0': 229, '1': 111, '2': 60 });
    assert.deepEqual(fromCsv.label?.kind === 'categorical' && fromCsv.label.categories, { '0': 208, '1': 105, '2': 87 });
  });

  it('the same rows as .npy and as JSON Lines give the same feature profiles', async () => {
    const npy = await buildProfile({ model: MODEL, data: join(FIXTURES, 'maintenance-heldout.npy') });
    const rows = parseCsv(readFileSync(HELDOUT_CSV, 'utf8')).slice(1);
    const jsonl = join(tmp, 'heldout.jsonl');
    writeFileSync(jsonl, rows.map((r) => JSON.stringify({ input: r.slice(0, 6).map(Number), label: Number(r[6]) })).join('\n') + '\n');
    const fromJsonl = await buildProfile({ model: MODEL, data: jsonl });
    const strip = (p: ModelProfile) => p.inputs[0].features.map(({ name: _n, ...rest }) => rest);
    assert.deepEqual(strip(npy), strip(fromCsv));
    assert.deepEqual(strip(fromJsonl), strip(fromCsv));
    assert.equal(fromJsonl.inputs[0].features[2].name, 'rotational_speed_rpm'); // unnamed columns take the model's 'features' metadata
    assert.deepEqual(fromJsonl.reference, fromCsv.reference);
    assert.equal(npy.reference, undefined); // no labels in a bare array
  });

  it('writes profile.json beside the model by default, where the server looks', () => {
    const repo = join(tmp, 'repo', 'maintenance', '3');
    spawnSync('mkdir', ['-p', repo]);
    writeFileSync(join(repo, 'model.onnx'), readFileSync(MODEL));
    const r = dais('profile', join(repo, 'model.onnx'), '--data', HELDOUT_CSV, '--max-rows', '100');
    assert.equal(r.status, 0, r.stderr);
    const p = JSON.parse(readFileSync(join(repo, 'profile.json'), 'utf8')) as ModelProfile;
    assert.equal(p.version, '3');
    assert.equal(p.source.rows, 100);
    assert.match(r.stdout, /profiled 100 rows of heldout\.csv for maintenance version 3/);
  });

  it('refuses bad data with one line naming the file and the cause', () => {
    const bad = join(tmp, 'bad.csv');
    writeFileSync(bad, 'a,b\n1,2\n');
    let r = dais('profile', MODEL, '--data', bad);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^dais profile: .*bad\.csv: input 'input' takes 6 values per row \(shape \[6\]\), the data has 2\n$/);
    r = dais('profile', MODEL, '--data', join(tmp, 'missing.csv'));
    assert.match(r.stderr, /data file not found: .*missing\.csv/);
    r = dais('profile', MODEL);
    assert.match(r.stderr, /--data .* is required/);
    writeFileSync(join(tmp, 'x.parquet'), 'PAR1');
    r = dais('profile', MODEL, '--data', join(tmp, 'x.parquet'));
    assert.match(r.stderr, /unknown data format '\.parquet': use \.csv/);
    assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
  });

  it("reads the examples' heldout.json (image and 784-pixel models) and scores them as their READMEs say", async () => {
    const digits = await buildProfile({ model: join(EXAMPLES_DIR, 'digits', '1', 'model.onnx'), data: join(EXAMPLES_DIR, 'digits', 'heldout.json') });
    assert.deepEqual(digits.inputs[0].rowShape, [1, 8, 8]);
    assert.equal(digits.inputs[0].features.length, 64);
    assert.equal(digits.inputs[0].features[63].name, 'image[63]');
    assert.deepEqual(digits.prediction, { task: 'classification', output: digits.outputs[0].name, how: 'argmax' });
    assert.deepEqual(digits.reference, { rows: 300, accuracy: 293 / 300 }); // examples/digits/README.md: 293 of 300
    const mlp = await buildProfile({ model: join(EXAMPLES_DIR, 'mlp', '1', 'model.onnx'), data: join(EXAMPLES_DIR, 'mlp', 'heldout.json'), maxFeatures: 100 });
    assert.equal(mlp.inputs[0].features.length, 100);
    assert.match(mlp.inputs[0].note!, /only the first 100 of 784 elements/);
    assert.deepEqual(mlp.reference, { rows: 300, accuracy: 289 / 300 }); // examples/mlp/README.md: 289 of 300
  });

  it('.npy header parsing: shape and dtype', () => {
    const { shape, data } = parseNpy(new Uint8Array(readFileSync(join(FIXTURES, 'maintenance-heldout.npy'))), 'x.npy');
    assert.deepEqual(shape, [400, 6]);
    assert.ok(data instanceof Float32Array);
    assert.equal(data[0], Math.fround(301.7));
  });
});
