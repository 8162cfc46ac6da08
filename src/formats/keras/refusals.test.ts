// What the Keras importer refuses, and how it says so: every refusal is a ModelFileError with a reason, and layer
// refusals name the layer and its class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync, zipSync, strToU8, strFromU8 } from 'fflate';
import { kerasToOnnx, KerasImportError } from './index.ts';
import { ModelFileError } from '../errors.ts';
import { readOnnx } from '../onnx/onnx.ts';
import { REPO_ROOT } from '../../../test/support/env.ts';

const DIR = join(REPO_ROOT, 'test/fixtures/keras/layers');

async function refusal(source: string | Uint8Array, fileName?: string): Promise<KerasImportError> {
  try {
    await kerasToOnnx(source, fileName ? { fileName } : {});
  } catch (e) {
    assert.ok(e instanceof KerasImportError, `expected a KerasImportError, got ${(e as Error).stack}`);
    assert.ok(e instanceof ModelFileError);
    assert.equal(e.code, 'MODEL_FILE_INVALID');
    assert.ok(!e.message.includes('\n'), `one-line message: ${e.message}`);
    return e;
  }
  assert.fail('conversion succeeded; a refusal was expected');
}

test('an unsupported layer is refused with its name and class', async () => {
  const e = await refusal(join(DIR, 'refuse_lambda.h5'));
  assert.equal(e.reason, 'UNSUPPORTED_LAYER');
  assert.deepEqual(e.layer, { name: 'my_lambda', className: 'Lambda' });
  assert.match(e.message, /^layer 'my_lambda' \(Lambda\): Keras layer class 'Lambda' has no ONNX translation in dais \(supported: .*Dense.*\)$/);
});

test('a layer whose weights are absent is refused as MISSING_WEIGHTS', async () => {
  const e = await refusal(join(DIR, 'refuse_missing_weights.h5'));
  assert.equal(e.reason, 'MISSING_WEIGHTS');
  assert.match(e.message, /layer 'dense' \(Dense\): its weights \(kernel, bias\) are not in .*refuse_missing_weights\.h5/);
});

test('Keras 1 files and weights-only files are refused as UNSUPPORTED_FORMAT with what to do', async () => {
  const k1 = await refusal(join(DIR, 'refuse_keras1.h5'));
  assert.equal(k1.reason, 'UNSUPPORTED_FORMAT');
  assert.match(k1.message, /saved by Keras 1\.2\.2; only files from Keras 2 and later/);
  const w = await refusal(join(DIR, 'refuse_weights_only.h5'));
  assert.equal(w.reason, 'UNSUPPORTED_FORMAT');
  assert.match(w.message, /holds only weights \(saved with model\.save_weights\)/);
});

test('corrupt files: not HDF5/zip, truncated HDF5, zip without config.json, config that is not JSON', async () => {
  const png = await refusal(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4]), 'digit.png');
  assert.equal(png.reason, 'CORRUPT_FILE');
  assert.match(png.message, /^digit\.png is neither a Keras HDF5 file/);

  const h5 = readFileSync(join(DIR, 'dense.h5'));
  const cut = await refusal(h5.subarray(0, 2000), 'cut.h5');
  assert.equal(cut.reason, 'CORRUPT_FILE');
  assert.match(cut.message, /^cut\.h5 is not a readable HDF5 file \(truncated file: eof = 2000/);

  const noConfig = await refusal(zipSync({ 'metadata.json': strToU8('{}') }), 'empty.keras');
  assert.equal(noConfig.reason, 'CORRUPT_FILE');
  assert.match(noConfig.message, /without config\.json/);

  const files = unzipSync(readFileSync(join(DIR, 'keras3_cnn.keras')));
  const badJson = await refusal(zipSync({ ...files, 'config.json': strToU8('{"class_name": ') }), 'bad.keras');
  assert.equal(badJson.reason, 'CORRUPT_FILE');
  assert.match(badJson.message, /config\.json is not valid JSON/);

  assert.equal((await refusal(join(DIR, 'no-such-file.h5'))).reason, 'CORRUPT_FILE');

  const lfs = strToU8('version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1449640\n');
  assert.match((await refusal(lfs, 'model.keras')).message, /^model\.keras is a Git LFS pointer, not the model itself: fetch the file with 'git lfs pull'$/);
});

test('a .keras archive with an unsupported layer in its config is refused by layer name and class', async () => {
  const files = unzipSync(readFileSync(join(DIR, 'keras3_cnn.keras')));
  const cfg = JSON.parse(strFromU8(files['config.json']));
  const pool = cfg.config.layers.find((l: { name: string }) => l.name === 'max_pooling2d');
  pool.class_name = 'FractionalMaxPooling2D';
  const e = await refusal(zipSync({ ...files, 'config.json': strToU8(JSON.stringify(cfg)) }), 'frac.keras');
  assert.equal(e.reason, 'UNSUPPORTED_LAYER');
  assert.deepEqual(e.layer, { name: 'max_pooling2d', className: 'FractionalMaxPooling2D' });
});

test('options without an exact translation are refused, not approximated', async () => {
  const files = unzipSync(readFileSync(join(DIR, 'keras3_text.keras')));
  const variants: [string, (layers: Record<string, Record<string, unknown>>) => void, RegExp][] = [
    ['stateful LSTM', (l) => void (l.lstm.stateful = true), /layer 'lstm' \(LSTM\): stateful=True/],
    ['masking Embedding', (l) => void (l.embedding.mask_zero = true), /layer 'embedding' \(Embedding\): mask_zero=True/],
    ['unknown activation', (l) => void (l.dense.activation = 'sparsemax'), /layer 'dense' \(Dense\): activation 'sparsemax' is not supported/],
  ];
  for (const [what, edit, message] of variants) {
    const cfg = JSON.parse(strFromU8(files['config.json']));
    const byName = Object.fromEntries(cfg.config.layers.map((l: { config: { name: string } }) => [l.config.name, l.config]));
    edit(byName);
    const e = await refusal(zipSync({ ...files, 'config.json': strToU8(JSON.stringify(cfg)) }), `${what}.keras`);
    assert.equal(e.reason, 'UNSUPPORTED_LAYER', what);
    assert.match(e.message, message, what);
  }
});

test('bytes convert like a path, and a layer called twice stores its weights once', async () => {
  const bytes = new Uint8Array(readFileSync(join(DIR, 'merge.h5')));
  const fromBytes = await kerasToOnnx(bytes, { fileName: 'merge.h5' });
  const fromPath = await kerasToOnnx(join(DIR, 'merge.h5'));
  assert.deepEqual(fromBytes.onnx, fromPath.onnx);
  const model = readOnnx(fromBytes.onnx);
  assert.deepEqual(model.graph!.initializer!.map((t) => t.name).filter((n) => n!.startsWith('shared/')), ['shared/kernel', 'shared/bias']);
  assert.equal(model.graph!.node!.filter((n) => n.opType === 'MatMul').length, 2);
  assert.deepEqual(model.opsetImport!.map((o) => [o.domain, Number(o.version)]), [['', 17]]);
});
