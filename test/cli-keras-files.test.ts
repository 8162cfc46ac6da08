// Keras files in the ONNX-only tools (issue 17): `dais optimize model.h5` says how to convert it, with commands that
// work; `dais inspect model.h5` gives the .h5 file's own size and sha256, the converted ONNX's apart.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, requireShared } from './support/env.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dais-keras-cli-'));
const dais = (...args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), ...args], { encoding: 'utf8', cwd: tmp });

test('dais optimize model.h5 → the dais convert command, which works, then optimize works on its output', (t) => {
  const h5 = requireShared(t, 'models/keras-mnist/tfkeras_softmax.h5');
  if (!h5) return;
  const r = dais('optimize', h5, '--quantize', 'int8-weights', '--out', 'q.onnx', '--no-measure');
  assert.equal(r.status, 1);
  const convert = /'(dais convert [^']+)'/.exec(r.stderr)?.[1];
  const then = /then run '(dais optimize \S+)'/.exec(r.stderr)?.[1];
  assert.ok(convert && then, r.stderr);
  assert.doesNotMatch(r.stderr, /tf2onnx/);
  const c = dais(...convert.split(' ').slice(1));
  assert.equal(c.status, 0, c.stderr);
  const o = dais(...then.split(' ').slice(1), '--quantize', 'int8-weights', '--out', 'q.onnx', '--no-measure');
  assert.equal(o.status, 0, o.stderr);
});

test("dais inspect model.h5: the .h5 file's size and sha256, the converted ONNX's said apart", (t) => {
  const h5 = requireShared(t, 'models/keras-mnist/tfkeras_softmax.h5');
  if (!h5) return;
  const bytes = readFileSync(h5);
  const r = dais('inspect', h5, '--json');
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { fileSize: number; sha256: string; convertedOnnx: { format: string; bytes: number; sha256: string } };
  assert.equal(info.fileSize, bytes.length);
  assert.equal(info.sha256, createHash('sha256').update(bytes).digest('hex'));
  assert.equal(info.convertedOnnx.format, 'keras-h5');
  assert.notEqual(info.convertedOnnx.sha256, info.sha256);
  const text = dais('inspect', h5).stdout;
  assert.match(text, new RegExp(`size +[\\d.]+ KiB \\(${bytes.length} bytes\\)`));
  assert.match(text, /onnx +[\d.]+ KiB \(\d+ bytes\) once converted by dais/);
});
