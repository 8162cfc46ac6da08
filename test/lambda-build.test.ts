// `dais build --target lambda` for real: each example becomes function/ + function.zip under Lambda's limits,
// holding the handler, the model and one architecture's onnxruntime binary only; template.yaml parses as YAML
// with the resources asked for; a model too large for a zip gets the error that names the limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readdirSync, readSync, closeSync, existsSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { parse as parseYaml } from 'yaml';
import { message, readOnnx, writeOnnx } from '../src/formats/onnx/onnx.ts';
import { locateBundle } from '../src/cli/invoke.ts';
import { buildLambda, resolveModels, zipDirectory, type LambdaBuildOptions, type LambdaBuildResult } from '../src/targets/lambda/bundle.ts';
import { runInvocations } from '../src/targets/lambda/emulator.ts';
import { parseBuildFlags } from '../src/cli/build-lambda.ts';
import { checkZipPackage, LAMBDA_LIMITS, LambdaLimitError } from '../src/targets/lambda/limits.ts';
import { dockerfile, samTemplate } from '../src/targets/lambda/sam.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';
import { assertResponseMatches, exampleCases, exampleModels, servedExamples } from './support/examples.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dais-lambda-build-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const base = (model: string, out: string, extra: Partial<LambdaBuildOptions> = {}): LambdaBuildOptions => ({
  model,
  out,
  arch: 'x86_64',
  runtime: 'nodejs22.x',
  memoryMb: 1024,
  timeoutS: 30,
  packageType: 'zip',
  urlAuth: 'AWS_IAM',
  ...extra,
});

/** e_machine of an ELF file: 62 = x86-64, 183 = AArch64. */
function elfMachine(path: string): number {
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(20);
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  assert.equal(b.subarray(0, 4).toString('latin1'), '\x7fELF', `${path} is an ELF file`);
  return b.readUInt16LE(18);
}

/** Entry names and sizes from the zip's central directory (nothing is inflated). */
function zipEntries(path: string): Map<string, number> {
  const entries = new Map<string, number>();
  unzipSync(new Uint8Array(readFileSync(path)), {
    filter: (f) => {
      entries.set(f.name, f.originalSize);
      return false;
    },
  });
  return entries;
}

describe('every example builds under Lambda\'s limits', () => {
  // Built side by side: zlib compresses on libuv's thread pool, so the builds overlap.
  const builds = new Map<string, Promise<LambdaBuildResult>>();
  before(() => {
    for (const m of exampleModels()) builds.set(m, buildLambda(base(join(EXAMPLES_DIR, m), join(tmp, m))));
  });
  for (const m of exampleModels()) {
    test(m, async () => {
      const out = join(tmp, m);
      const r = await builds.get(m)!;
      assert.deepEqual(r.models.map((x) => [x.name, x.version]), [[m, '1']]);
      assert.ok(r.sizes.zipBytes! < LAMBDA_LIMITS.zipDirectUploadBytes, `zip ${r.sizes.zipBytes} under 50 MB`);
      assert.ok(r.sizes.unzippedBytes < LAMBDA_LIMITS.unzippedBytes, `unzipped ${r.sizes.unzippedBytes} under 250 MB`);
      const entries = zipEntries(join(out, 'function.zip'));
      assert.deepEqual([...entries.keys()].sort(), ['index.mjs', `models/${m}/1/model.onnx`, 'onnxruntime/libonnxruntime.so.1', 'onnxruntime/onnxruntime_binding.node', 'tracing.mjs']);
      const unzipped = [...entries.values()].reduce((a, b) => a + b, 0);
      assert.equal(unzipped, r.sizes.unzippedBytes, 'the zip holds exactly function/');
      assert.equal(elfMachine(join(out, 'function/onnxruntime/onnxruntime_binding.node')), 62);
      assert.equal(elfMachine(join(out, 'function/onnxruntime/libonnxruntime.so.1')), 62);
      const info = JSON.parse(readFileSync(join(out, 'dais-lambda.json'), 'utf8'));
      assert.equal(info.arch, 'x86_64');
      assert.deepEqual(info.models, [{ name: m, version: '1' }]);
      assert.deepEqual([info.minified, info.lazy, info.warmup], [true, false, true], 'defaults: minified, eager, warm-up run in INIT');
      if (m === 'mlp') assert.ok(r.sizes.zipBytes! <= 20 * 1024 * 1024, `mlp function.zip is ${r.sizes.zipBytes} bytes, goal ≤ 20 MB`);
      // The handler is bundled and minified: dais core + onnxruntime-node's JS, no protobuf parser, no Keras import.
      assert.ok(r.sizes.handlerBytes < 150_000, `index.mjs is ${r.sizes.handlerBytes} bytes`);
      assert.doesNotMatch(readFileSync(join(out, 'function/index.mjs'), 'utf8'), /protobufjs|h5wasm|ModelProto/);
      // OpenTelemetry's SDK is in tracing.mjs, imported only when OTEL_* turns tracing on.
      assert.doesNotMatch(readFileSync(join(out, 'function/index.mjs'), 'utf8'), /BatchSpanProcessor|OTLPTraceExporter/);
      assert.match(readFileSync(join(out, 'function/tracing.mjs'), 'utf8'), /BatchSpanProcessor/);
    });
  }

  test('function.zip alone runs: unpacked as Lambda would, it answers with the framework\'s predictions', async () => {
    await builds.get('mlp');
    const bundle = await locateBundle(join(tmp, 'mlp', 'function.zip'));
    try {
      const c = exampleCases('mlp')[0];
      const { reports } = await runInvocations({ taskRoot: bundle.taskRoot, events: [c.request], cold: 1, warm: 0 });
      assert.equal(reports[0].status, 'success', JSON.stringify(reports[0].error));
      assertResponseMatches((reports[0].result as { outputs: never }).outputs, c.expected, 'mlp from function.zip');
    } finally {
      await bundle.cleanup?.();
    }
  });

  test('zipping is reproducible: fixed timestamps, modes and order give byte-identical zips', async () => {
    const dir = join(tmp, 'maintenance', 'function', 'models');
    await zipDirectory(dir, join(tmp, 'a.zip'));
    // Every file gets another mtime (years away, so not within a zip timestamp's 2 s of the first): a zip that
    // stamped the files' times, or the time of zipping, would differ. No wait needed.
    const later = new Date('2011-03-04T05:06:07Z');
    for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) utimesSync(join(dir, f), later, later);
    utimesSync(dir, later, later);
    await zipDirectory(dir, join(tmp, 'b.zip'));
    assert.deepEqual(readFileSync(join(tmp, 'a.zip')), readFileSync(join(tmp, 'b.zip')));
  });

  test('--arch arm64 packs the AArch64 binding only', async () => {
    const out = join(tmp, 'arm');
    const r = await buildLambda(base(join(EXAMPLES_DIR, 'mlp'), out, { arch: 'arm64', packageType: 'image' }));
    assert.equal(r.onnxruntime.arch, 'arm64');
    assert.equal(elfMachine(join(out, 'function/onnxruntime/onnxruntime_binding.node')), 183);
    assert.equal(elfMachine(join(out, 'function/onnxruntime/libonnxruntime.so.1')), 183);
    assert.deepEqual(parseYaml(readFileSync(join(out, 'template.yaml'), 'utf8')).Resources.InferenceFunction.Properties.Architectures, ['arm64']);
    assert.match(readFileSync(join(out, 'Dockerfile'), 'utf8'), /FROM --platform=linux\/arm64 public\.ecr\.aws\/lambda\/nodejs:22/);
  });
});

describe('what gets bundled, and under which name', () => {
  test('a model folder, a version folder and a model file take the folder\'s name; a repository keeps every model', async () => {
    for (const p of ['mlp', 'mlp/1', 'mlp/1/model.onnx']) {
      assert.deepEqual((await resolveModels(join(EXAMPLES_DIR, p))).map((s) => [s.name, s.version]), [['mlp', '1']], p);
    }
    assert.deepEqual((await resolveModels(EXAMPLES_DIR)).map((s) => s.name), servedExamples());
    assert.deepEqual((await resolveModels(join(EXAMPLES_DIR, 'mlp'), 'digit-mlp')).map((s) => s.name), ['digit-mlp']);
    await assert.rejects(resolveModels(EXAMPLES_DIR, 'x'), /--name applies to one model/);
  });
});

describe('template.yaml (AWS SAM) and the container-image variant', () => {
  test('every option lands in a template that parses as YAML with the resources named', async () => {
    const o = parseBuildFlags('m.onnx', ['--out', 'x', '--memory', '2048', '--arch', 'arm64', '--timeout', '60', '--provisioned', '2', '--reserved', '10', '--keep-warm', '5', '--url-auth', 'none']);
    const doc = parseYaml(samTemplate({ ...o, models: ['mlp'] }));
    assert.equal(doc.Transform, 'AWS::Serverless-2016-10-31');
    assert.equal(doc.AWSTemplateFormatVersion, '2010-09-09');
    const fn = doc.Resources.InferenceFunction;
    assert.equal(fn.Type, 'AWS::Serverless::Function');
    assert.deepEqual(fn.Properties, {
      CodeUri: 'function.zip',
      Handler: 'index.handler',
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      MemorySize: 2048,
      Timeout: 60,
      Description: 'dais: mlp over the Open Inference Protocol (v2)',
      Environment: { Variables: { ORT_DISABLE_TELEMETRY: '1' } },
      FunctionUrlConfig: { AuthType: 'NONE', InvokeMode: 'BUFFERED' },
      AutoPublishAlias: 'live',
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 },
      ReservedConcurrentExecutions: 10,
      Events: {
        KeepWarm: {
          Type: 'Schedule',
          Properties: { Schedule: 'rate(5 minutes)', Input: '{"warmup":true}', Description: 'Keeps one execution environment initialised (answers without running the model)' },
        },
      },
    });
    assert.deepEqual(doc.Outputs.FunctionUrl.Value, { 'Fn::GetAtt': ['InferenceFunctionUrl', 'FunctionUrl'] });
  });

  test('defaults: x86_64, 1024 MB, 30 s, IAM-signed function URL, no concurrency settings, no schedule', () => {
    const o = parseBuildFlags('m.onnx', ['--out', 'x']);
    const p = parseYaml(samTemplate({ ...o, models: ['mlp'] })).Resources.InferenceFunction.Properties;
    assert.deepEqual([p.Architectures, p.MemorySize, p.Timeout, p.Runtime, p.FunctionUrlConfig.AuthType], [['x86_64'], 1024, 30, 'nodejs22.x', 'AWS_IAM']);
    for (const k of ['AutoPublishAlias', 'ProvisionedConcurrencyConfig', 'ReservedConcurrentExecutions', 'Events']) assert.equal(p[k], undefined, k);
  });

  test('the image variant: PackageType Image with the Dockerfile, on the public Lambda Node.js base image', async () => {
    const out = join(tmp, 'image');
    const r = await buildLambda(base(join(EXAMPLES_DIR, 'mlp'), out, { packageType: 'image' }));
    assert.equal(r.zipPath, undefined);
    assert.equal(existsSync(join(out, 'function.zip')), false);
    const fn = parseYaml(readFileSync(join(out, 'template.yaml'), 'utf8')).Resources.InferenceFunction;
    assert.equal(fn.Properties.PackageType, 'Image');
    assert.equal(fn.Properties.CodeUri, undefined);
    assert.deepEqual(fn.Metadata, { Dockerfile: 'Dockerfile', DockerContext: '.', DockerTag: 'nodejs22' });
    assert.equal(
      readFileSync(join(out, 'Dockerfile'), 'utf8'),
      dockerfile({ arch: 'x86_64', runtime: 'nodejs22.x', models: ['mlp'] }),
    );
    assert.equal(
      dockerfile({ arch: 'x86_64', runtime: 'nodejs22.x', models: ['mlp'] }),
      [
        '# Container-image variant of the dais Lambda function (mlp): for packages over the .zip limits.',
        '# The base image holds the Node.js runtime and the runtime interface client that calls index.handler.',
        'FROM --platform=linux/amd64 public.ecr.aws/lambda/nodejs:22',
        '# function/ already holds the bundled handler, the models and onnxruntime for this architecture only.',
        'COPY function/ ${LAMBDA_TASK_ROOT}/',
        '# onnxruntime >= 1.29 sends usage telemetry from Linux builds unless this is set.',
        'ENV ORT_DISABLE_TELEMETRY=1',
        'CMD ["index.handler"]',
        '',
      ].join('\n'),
    );
  });

  test('bad flags get one clear line each', () => {
    assert.throws(() => parseBuildFlags('m', []), /--out <dir> is required/);
    assert.throws(() => parseBuildFlags('m', ['--out', 'x', '--arch', 'sparc']), /--arch must be x86_64 or arm64/);
    assert.throws(() => parseBuildFlags('m', ['--out', 'x', '--memory', '64']), /--memory must be an integer from 128 to 10240/);
    assert.throws(() => parseBuildFlags('m', ['--out', 'x', '--provisioned', '5', '--reserved', '2']), /--provisioned 5 is more than --reserved 2/);
    assert.throws(() => parseBuildFlags('m', ['--out', 'x', '--runtime', 'python3.12']), /--runtime must be one of nodejs20.x, nodejs22.x, nodejs24.x/);
    assert.throws(() => parseBuildFlags('m', ['--out', 'x', '--frobnicate']), /see 'dais build --target lambda --help'/);
  });
});

describe('a model too large for a zip gets the error that names the limit', () => {
  let padded: string;
  before(() => {
    // The MLP plus an unused 36 MB initializer of random bytes (which do not compress): with onnxruntime's
    // ~17.5 MB, the zip passes 50 MB while the unzipped function stays under 250 MB.
    const model = readOnnx(readFileSync(join(EXAMPLES_DIR, 'mlp/1/model.onnx')));
    model.graph!.initializer!.push(message('TensorProto', { name: 'padding', dataType: 2, dims: [36 * 1024 * 1024], rawData: randomBytes(36 * 1024 * 1024) }));
    padded = join(tmp, 'padded.onnx');
    writeFileSync(padded, writeOnnx(model));
  });

  test('the same model builds as a container image', async () => {
    const r = await buildLambda(base(padded, join(tmp, 'too-big-image'), { packageType: 'image' }));
    assert.ok(r.sizes.modelBytes > 36 * 1024 * 1024);
  });

  test('over 250 MB unzipped → the unzipped limit, checked before compressing', () => {
    const sizes = { unzippedBytes: LAMBDA_LIMITS.unzippedBytes + 1, modelBytes: 220 * 1024 * 1024 };
    assert.throws(() => checkZipPackage(sizes, true), (e: unknown) => {
      assert.ok(e instanceof LambdaLimitError);
      assert.equal(e.limit, 'unzipped');
      assert.match(e.message, /over Lambda's 250 MB limit for an unzipped \.zip package with its layers \(262144000 bytes\).*--package image/);
      return true;
    });
    assert.doesNotThrow(() => checkZipPackage({ unzippedBytes: LAMBDA_LIMITS.unzippedBytes, modelBytes: 1 }, false));
    assert.doesNotThrow(() => checkZipPackage({ unzippedBytes: 1, zipBytes: LAMBDA_LIMITS.zipDirectUploadBytes, modelBytes: 1 }, false));
    assert.throws(() => checkZipPackage({ unzippedBytes: 1, zipBytes: LAMBDA_LIMITS.zipDirectUploadBytes + 1, modelBytes: 1 }, false), /50 MB/);
    assert.doesNotThrow(() => checkZipPackage({ unzippedBytes: 1, zipBytes: LAMBDA_LIMITS.zipDirectUploadBytes + 1, modelBytes: 1 }, true), '--via-s3');
  });

  test('zip over 50 MB → one line naming the direct-upload limit, the image variant and quantization; exit 1', () => {
    const out = join(tmp, 'too-big');
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'build', padded, '--target', 'lambda', '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^dais build: function\.zip is \d+\.\d MB \((\d+) bytes; the model is 36\.\d MB unzipped\), over Lambda's 50 MB limit for a \.zip uploaded directly \(52428800 bytes\)/);
    assert.ok(Number(/\((\d+) bytes;/.exec(r.stderr)![1]) > LAMBDA_LIMITS.zipDirectUploadBytes);
    assert.match(r.stderr, /--package image.*10 GB/);
    assert.match(r.stderr, /--quantize int8-weights/);
    assert.equal(existsSync(join(out, 'function.zip')), false, 'no over-limit zip is left behind');
  });
});
