import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findModelArg } from './build.ts';
import { FLAGS as CONTAINER } from './build-container.ts';
import { FLAGS as LAMBDA } from './build-lambda.ts';
import { CliError, flags, parseFlags } from './command.ts';

test('the model argument is found before, between or after target flags', () => {
  assert.equal(findModelArg(['examples', '--out', 'dist'], CONTAINER), 'examples');
  assert.equal(findModelArg(['--out', 'dist/ctx', 'examples'], CONTAINER), 'examples');
  assert.equal(findModelArg(['--k8s', 'examples', '--image', 'img.tar'], CONTAINER), 'examples');
  assert.equal(findModelArg(['--out=dist', '--json', 'examples/mlp/1/model.onnx'], CONTAINER), 'examples/mlp/1/model.onnx');
  assert.equal(findModelArg(['--out', 'dist'], CONTAINER), undefined);
});

test("which flags take no value comes from the target's own flag table", () => {
  assert.equal(findModelArg(['--lazy', 'examples', '--out', 'dist'], LAMBDA), 'examples');
  // --lazy is not a container flag, so there the word after it is its value.
  assert.equal(findModelArg(['--lazy', 'examples', '--out', 'dist'], CONTAINER), undefined);
});

test('a misspelled flag is refused naming the closest flag of the command; an unrelated one only points at --help', () => {
  const table = flags({ string: ['out', 'platform', 'max-memory'], boolean: ['json'] });
  assert.throws(() => parseFlags('build --target edge', ['--platfrom', 'x'], table), (e: unknown) => e instanceof CliError && e.message === "Unknown option '--platfrom': did you mean --platform? (see 'dais build --target edge --help')");
  assert.throws(() => parseFlags('x', ['--max-memroy=5'], table), /did you mean --max-memory\?/);
  assert.throws(() => parseFlags('x', ['--gpu'], table), (e: unknown) => e instanceof CliError && /^Unknown option '--gpu'\. .*\(see 'dais x --help'\)$/.test(e.message) && !/did you mean/.test(e.message));
  const { values, positionals } = parseFlags('x', ['--out', 'd', '--json', 'm'], table);
  assert.deepEqual([{ ...values }, positionals], [{ out: 'd', json: true }, ['m']]);
});
