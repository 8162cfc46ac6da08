import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findModelArg } from './build.ts';

test('the model argument is found before, between or after target flags', () => {
  assert.equal(findModelArg(['examples', '--out', 'dist']), 'examples');
  assert.equal(findModelArg(['--out', 'dist/ctx', 'examples']), 'examples');
  assert.equal(findModelArg(['--k8s', 'examples', '--image', 'img.tar']), 'examples');
  assert.equal(findModelArg(['--out=dist', '--json', 'examples/mlp/1/model.onnx']), 'examples/mlp/1/model.onnx');
  assert.equal(findModelArg(['--out', 'dist']), undefined);
});
