// examples/image-classifier with the real MobileNetV2 built by `dais build --target lambda` (as a user runs it) and
// run in the Lambda emulator, with dais's bootstrap and with AWS's runtime interface client: a JPEG and a PNG give the
// same top 5 as `dais serve` on the same file (the same decoder, sharp, ships in the function), and the tensor form
// equals torch's saved probabilities.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type RunningServer } from '../src/serve/index.ts';
import { LambdaEmulator, type RuntimeClient } from '../src/targets/lambda/emulator.ts';
import { findAwsLambdaRic } from '../src/targets/lambda/runtime-process.ts';
import { httpEvent } from '../src/targets/lambda/sample-events.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';
import { fixture } from './support/processing.ts';
import { realModelFile, realModelMade, referenceValues, requireRealModel, type Reference } from './support/real-models.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dais-lambda-image-'));
const repo = join(tmp, 'repository');
const out = join(tmp, 'lambda');
const FILES = [
  ['photo.jpg', 'image/jpeg'],
  ['photo.png', 'image/png'],
] as const;

let reference: Reference | undefined;
let server: RunningServer | undefined;
let buildOutput = '';
/** `dais serve`'s top 5 for each file, the answer the function must give. */
const served = new Map<string, string[]>();

before(async () => {
  if (!realModelMade('mobilenetv2')) return;
  cpSync(join(EXAMPLES_DIR, 'image-classifier'), join(repo, 'image-classifier'), { recursive: true });
  mkdirSync(join(repo, 'image-classifier', '1'));
  copyFileSync(realModelFile('mobilenetv2'), join(repo, 'image-classifier', '1', 'model.onnx'));
  const built = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'build', join(repo, 'image-classifier'), '--target', 'lambda', '--out', out], { encoding: 'utf8' });
  assert.equal(built.status, 0, built.stdout + built.stderr);
  buildOutput = built.stdout;
  server = await serve({ model: repo, port: 0 });
  for (const [file, type] of FILES) {
    const r: Response = await fetch(`${server.url}/v2/models/image-classifier/infer`, { method: 'POST', headers: { 'content-type': type }, body: fixture(file) as BodyInit });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    served.set(file, body.outputs[0].data);
  }
});
after(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('the build reports sharp in its size lines and the zip stays under the direct-upload limit', (t) => {
  reference = requireRealModel(t, 'mobilenetv2');
  if (!reference) return;
  assert.match(buildOutput, /declared processing +\d+\.\d MB +image-decoder\.mjs \+ node_modules\/ \(sharp with libvips, linux x64\)/);
  const zip = /function\.zip +(\d+\.\d) MB of Lambda's 50 MB/.exec(buildOutput);
  assert.ok(zip && Number(zip[1]) < 50, buildOutput);
  t.diagnostic(buildOutput.split('\n').filter((l) => /MB|INIT/.test(l)).join(' | '));
});

async function throughEmulator(t: TestContext, runtime: RuntimeClient): Promise<void> {
  if (!reference) return void t.skip('mobilenetv2 is not made');
  const emulator = await LambdaEmulator.start({ taskRoot: join(out, 'function'), runtime, memoryMb: 1024 });
  try {
    for (const [file, type] of FILES) {
      const r = await emulator.invoke(httpEvent('function-url', { method: 'POST', path: '/v2/models/image-classifier/infer', body: fixture(file), headers: { 'content-type': type } }));
      assert.equal(r.status, 'success', JSON.stringify(r.error));
      if (r.cold) t.diagnostic(`${runtime}: INIT ${r.initDurationMs} ms, peak ${r.maxMemoryUsedMb} MB`);
      const result = r.result as { statusCode: number; body: string };
      assert.equal(result.statusCode, 200, result.body);
      const top5 = JSON.parse(result.body).outputs[0].data as string[];
      assert.equal(top5.length, 5);
      assert.deepEqual(top5, served.get(file), `${file}: the function's top 5 vs dais serve's`);
    }
    const c = reference.cases.find((k) => k.inputs[0].shape[0] === 1) ?? reference.cases[0];
    const input = referenceValues('mobilenetv2', c.inputs[0]);
    const want = referenceValues('mobilenetv2', c.outputs[0]);
    const body = JSON.stringify({ inputs: [{ name: c.inputs[0].name, datatype: 'FP32', shape: c.inputs[0].shape, data: Array.from(input, Number) }] });
    const r = await emulator.invoke(httpEvent('function-url', { method: 'POST', path: '/v2/models/image-classifier/infer', body }));
    const result = r.result as { statusCode: number; body: string };
    assert.equal(result.statusCode, 200, result.body);
    const got = JSON.parse(result.body).outputs[0].data as number[];
    assert.equal(got.length, want.length);
    got.forEach((v, i) => assert.ok(Math.abs(v - Number(want[i])) <= 1e-5 + 1e-4 * Math.abs(Number(want[i])), `[${i}] ${v} vs torch ${want[i]}`));
  } finally {
    await emulator.close();
  }
}

describe('MobileNetV2 with its image step in the Lambda emulator', () => {
  test("dais's bootstrap: a JPEG and a PNG give dais serve's top 5; the tensor form equals torch's", (t) => throughEmulator(t, 'dais'));
  test("AWS's runtime interface client (aws-lambda-ric): the same", async (t) => {
    const ric = findAwsLambdaRic();
    if (!ric.path) {
      if (process.env.DAIS_REQUIRE_SYSTEM_TESTS === '1') assert.fail(ric.reason);
      return void t.skip(ric.reason);
    }
    await throughEmulator(t, 'aws-lambda-ric');
  });
});
