// The built bundle run as Lambda runs it: a fresh process speaking the Runtime API to `dais invoke`'s emulator,
// with dais's bootstrap and with AWS's own runtime interface client (aws-lambda-ric). Every example through
// every event kind equals the framework's predictions; REPORT lines carry Lambda's fields; init errors,
// handler errors, timeouts, memory overruns, oversized responses and crashes are reported as Lambda does.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from '../src/cli/command.ts';
import { command as invoke } from '../src/cli/invoke.ts';
import { buildLambda, LAMBDA_EXTENSIONS } from '../src/targets/lambda/bundle.ts';
import { LambdaEmulator, runInvocations, type RuntimeClient } from '../src/targets/lambda/emulator.ts';
import type { InvocationReport } from '../src/targets/lambda/invocation-report.ts';
import { findAwsLambdaRic } from '../src/targets/lambda/runtime-process.ts';
import { HTTP_EVENT_KINDS, httpEvent } from '../src/targets/lambda/sample-events.ts';
import { EXAMPLES_DIR, REPO_ROOT, requireShared } from './support/env.ts';
import { assertClose, assertResponseMatches, exampleCases } from './support/examples.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dais-lambda-emu-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const REPORT = /^REPORT RequestId: [0-9a-f-]{36}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: \d+ MB\tMax Memory Used: \d+ MB(\tInit Duration: \d+\.\d\d ms)?/;

let bundleDir: string;
before(async () => {
  // All examples in one function (no zip needed here: function/ is what Lambda unpacks).
  const r = await buildLambda({ model: EXAMPLES_DIR, out: join(tmp, 'examples'), arch: process.arch === 'arm64' ? 'arm64' : 'x86_64', runtime: 'nodejs22.x', memoryMb: 1024, timeoutS: 30, packageType: 'image', urlAuth: 'AWS_IAM' });
  bundleDir = r.functionDir;
});

function checkReport(r: InvocationReport, cold: boolean): void {
  assert.equal(r.cold, cold);
  assert.deepEqual(r.lines.slice(0, 2), [`START RequestId: ${r.requestId} Version: $LATEST`, `END RequestId: ${r.requestId}`]);
  const m = REPORT.exec(r.lines[2]);
  assert.ok(m, `REPORT line: ${r.lines[2]}`);
  assert.equal(Boolean(m[1]), cold, 'Init Duration appears on cold starts only');
  assert.ok(r.maxMemoryUsedMb > 20 && r.maxMemoryUsedMb < r.memorySizeMb, `Max Memory Used ${r.maxMemoryUsedMb} MB is the process's peak RSS`);
  assert.equal(r.billedDurationMs, Math.ceil(Math.round((r.durationMs + (r.initDurationMs ?? 0)) * 100) / 100), "Billed Duration = Duration + Init Duration, rounded up (INIT is billed since 2025-08-01)");
}

async function everyKind(t: TestContext, runtime: RuntimeClient): Promise<void> {
  const logs: string[] = [];
  const emulator = await LambdaEmulator.start({ taskRoot: bundleDir, runtime, onLog: (l) => logs.push(l) });
  try {
    let first = true;
    for (const c of exampleCases()) {
      for (const kind of HTTP_EVENT_KINDS) {
        const event = httpEvent(kind, { method: 'POST', path: `/v2/models/${c.model}/infer`, body: JSON.stringify(c.request) });
        const r = await emulator.invoke(event);
        assert.equal(r.status, 'success', `${c.model}/${c.requestFile} via ${kind}: ${JSON.stringify(r.error)}`);
        checkReport(r, first);
        first = false;
        const result = r.result as { statusCode: number; body: string };
        assert.equal(result.statusCode, 200, result.body);
        assertResponseMatches(JSON.parse(result.body).outputs, c.expected, `${c.model}/${c.requestFile} via ${kind} (${runtime})`);
      }
      const direct = await emulator.invoke({ ...c.request, model_name: c.model });
      assert.equal(direct.status, 'success');
      assertResponseMatches((direct.result as { outputs: never }).outputs, c.expected, `${c.model}/${c.requestFile} direct (${runtime})`);
      assert.equal(direct.environment, 1, 'one warm environment answers them all');
    }
    // The built function lists only the extensions it serves, and serves the model configuration one.
    const meta = await emulator.invoke(httpEvent('function-url', { method: 'GET', path: '/v2' }));
    assert.deepEqual(JSON.parse((meta.result as { body: string }).body).extensions, LAMBDA_EXTENSIONS);
    const config = await emulator.invoke(httpEvent('function-url', { method: 'GET', path: '/v2/models/mlp/config' }));
    assert.equal(JSON.parse((config.result as { body: string }).body).max_batch_size, 0);
    t.diagnostic(`${runtime}: ${exampleCases().length * (HTTP_EVENT_KINDS.length + 1) + 2} invocations in one environment`);
    // INIT ran a warm-up request per model; none of them, nor any invocation, logged an error.
    assert.deepEqual(logs.filter((l) => /"level":"error"|ERROR/.test(l)), []);
  } finally {
    await emulator.close();
  }
}

describe('every example through every event kind, in a fresh Lambda-like process', () => {
  test('dais bootstrap', (t) => everyKind(t, 'dais'));

  test('AWS\'s runtime interface client (aws-lambda-ric)', async (t) => {
    const ric = findAwsLambdaRic();
    if (!ric.path) {
      if (process.env.DAIS_REQUIRE_SYSTEM_TESTS === '1') assert.fail(ric.reason);
      t.skip(ric.reason);
      return;
    }
    await everyKind(t, 'aws-lambda-ric');
  });
});

describe('cold and warm starts', () => {
  test('--cold 3 --warm 4: three fresh processes with Init Duration, then warm invocations on the last', async () => {
    const c = exampleCases('mlp')[0];
    const { reports, summary } = await runInvocations({ taskRoot: bundleDir, events: [{ ...c.request, model_name: 'mlp' }], cold: 3, warm: 4, memoryMb: 512 });
    assert.deepEqual(reports.map((r) => [r.cold, r.environment]), [[true, 1], [true, 2], [true, 3], [false, 3], [false, 3], [false, 3], [false, 3]]);
    reports.forEach((r, i) => checkReport(r, i < 3));
    for (const r of reports.slice(0, 3)) {
      assert.ok(r.initDurationMs! > 0 && r.coldStartMs! >= r.initDurationMs! + r.durationMs - 1, 'start → response covers INIT and the first invocation');
      // The function's INIT log line splits Init Duration into phases, timed by the function's own clock.
      const p = r.initPhases;
      assert.ok(p, 'the cold start logged its INIT phases');
      for (const k of ['process', 'imports', 'model_load', 'warmup'] as const) assert.ok(p[k] > 0, `${k} took time: ${JSON.stringify(p)}`);
      assert.ok(Math.abs(p.process + p.imports + p.model_load + p.warmup + p.listen - p.total) < 1e-5, 'the phases add up to the total');
      // The process starts after the emulator spawned it and logs before asking for its first event.
      assert.ok(p.total * 1000 <= r.initDurationMs! + 1, `INIT phases total ${p.total} s within Init Duration ${r.initDurationMs} ms`);
    }
    for (const r of reports.slice(3)) assert.equal(r.initPhases, undefined, 'warm invocations have no INIT');
    assert.ok(summary.cold.initPhasesP50 && summary.cold.initPhasesP50.model_load > 0);
    assert.equal(reports[0].memorySizeMb, 512);
    assert.equal(summary.cold.count, 3);
    assert.equal(summary.warm.count, 4);
    assert.ok(summary.cold.initP50 <= summary.cold.initP95);
    assert.ok(summary.warm.durationP50 <= summary.warm.durationP95);
    assert.equal(summary.failures, 0);
    assert.equal(summary.maxMemoryUsedMb, Math.max(...reports.map((r) => r.maxMemoryUsedMb)));
  });

  test('lazy loading moves the session from INIT to the first invocation, with the same answers', async () => {
    const out = join(tmp, 'lazy');
    const r = await buildLambda({ model: join(EXAMPLES_DIR, 'mlp'), out, arch: process.arch === 'arm64' ? 'arm64' : 'x86_64', runtime: 'nodejs22.x', memoryMb: 1024, timeoutS: 30, packageType: 'image', urlAuth: 'AWS_IAM', lazy: true });
    assert.equal(JSON.parse(readFileSync(join(out, 'dais-lambda.json'), 'utf8')).warmup, false, 'no warm-up run when the session opens in the first invocation');
    const c = exampleCases('mlp')[0];
    // A single-model function takes a v2 request without model_name.
    const { reports } = await runInvocations({ taskRoot: r.functionDir, events: [c.request], cold: 1, warm: 1 });
    for (const x of reports) {
      assert.equal(x.status, 'success', JSON.stringify(x.error));
      assertResponseMatches((x.result as { outputs: never }).outputs, c.expected, 'lazy');
    }
  });
});

describe('dais invoke', () => {
  test('prints START/END/REPORT for each invocation and the cold/warm summary', () => {
    const r = spawnSync(
      process.execPath,
      [join(REPO_ROOT, 'bin/dais.js'), 'invoke', join(tmp, 'examples'), '--event', join(EXAMPLES_DIR, 'mlp/requests/single.json'), '--as', 'function-url', '--model', 'mlp', '--cold', '2', '--warm', '3'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const reports = r.stdout.split('\n').filter((l) => l.startsWith('REPORT '));
    assert.equal(reports.length, 5, r.stdout);
    for (const l of reports) assert.match(l, REPORT);
    assert.equal(reports.filter((l) => l.includes('Init Duration')).length, 2);
    assert.match(r.stdout, /Cold starts: 2 \(fresh process each\)\n {2}Init Duration {6}p50 [\d.]+ ms {3}p95 [\d.]+ ms/);
    assert.match(r.stdout, /Warm invocations: 3\n {2}Duration {11}p50 [\d.]+ ms {3}p95 [\d.]+ ms/);
    assert.match(r.stdout, /Max Memory Used: \d+ MB of 1024 MB/);
    assert.equal(r.stdout.split('\n').filter((l) => l.includes('"msg":"INIT phases (seconds)"')).length, 2, 'each cold start prints its INIT line');
    assert.match(r.stdout, /INIT phases p50 {4}process [\d.]+ ms, imports [\d.]+ ms, model load [\d.]+ ms, warmup [\d.]+ ms/);
    assert.match(r.stdout, /Response: \{"statusCode":200/);
  });

  test('--json: every report and the summary as data', () => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'invoke', join(tmp, 'examples'), '--event', join(EXAMPLES_DIR, 'digits/requests/single.json'), '--as', 'rest-api-v1', '--model', 'digits', '--warm', '2', '--memory', '256', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { memoryMb: number; reports: InvocationReport[]; summary: { cold: { count: number }; warm: { count: number } } };
    assert.equal(out.memoryMb, 256);
    assert.deepEqual(out.reports.map((x) => [x.cold, x.status]), [[true, 'success'], [false, 'success'], [false, 'success']]);
    assert.deepEqual([out.summary.cold.count, out.summary.warm.count], [1, 2]);
    const c = exampleCases('digits').find((x) => x.requestFile === 'single.json')!;
    assertResponseMatches(JSON.parse((out.reports[2].result as { body: string }).body).outputs, c.expected, 'digits via REST API, from --json');
  });

  test('bad input: a CliError (one line, exit 1) naming the cause', async () => {
    const cases: [string[], RegExp][] = [
      [[tmp], /holds no Lambda function: expected the --out folder/],
      [[join(tmp, 'examples'), '--event', join(tmp, 'nope.json')], /--event .*nope\.json: no such file/],
      [[join(tmp, 'examples'), '--cold', 'x'], /--cold must be an integer/],
      [[join(tmp, 'examples'), '--as', 'sqs', '--event', join(EXAMPLES_DIR, 'mlp/requests/single.json')], /--as must be one of function-url/],
      [[join(tmp, 'examples'), '--as', 'alb', '--event', join(EXAMPLES_DIR, 'mlp/requests/single.json')], /--as needs --model <name>: the bundle holds digits, keyword, maintenance, mlp/],
    ];
    for (const [args, message] of cases) {
      await assert.rejects(invoke.run(args), (e: unknown) => {
        assert.ok(e instanceof CliError, String(e));
        assert.equal(e.exitCode, 1);
        assert.match(e.message, message);
        assert.doesNotMatch(e.message, /\n/);
        return true;
      });
    }
  });
});

describe('failures are reported as Lambda reports them', () => {
  function fn(name: string, source: string): string {
    const dir = join(tmp, 'fn', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.mjs'), source);
    return dir;
  }
  const once = async (taskRoot: string, extra: { memoryMb?: number; timeoutS?: number } = {}) => (await runInvocations({ taskRoot, events: [{}], cold: 1, warm: 0, ...extra })).reports[0];

  test('an error during INIT → INIT_REPORT with Status: error, and the invocation fails', async () => {
    const r = await once(fn('init-error', "throw new TypeError('no model here');\nexport const handler = async () => 1;\n"));
    assert.equal(r.status, 'init-error');
    assert.equal(r.error?.errorType, 'TypeError');
    assert.equal(r.error?.errorMessage, 'no model here');
    assert.match(r.lines[0], /^INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: init\tStatus: error\tError Type: TypeError$/);
    assert.match(r.lines.at(-1)!, /\tStatus: error\tError Type: TypeError$/);
  });

  test('a handler that throws → the function error, the environment stays warm', async () => {
    const { reports } = await runInvocations({ taskRoot: fn('throws', "export const handler = async () => { throw new RangeError('bad'); };\n"), events: [{}], cold: 1, warm: 1 });
    assert.deepEqual(reports.map((r) => [r.status, r.error?.errorType, r.error?.errorMessage, r.environment]), [['error', 'RangeError', 'bad', 1], ['error', 'RangeError', 'bad', 1]]);
  });

  test('past the timeout → Status: timeout and a fresh environment next time', async () => {
    const { reports } = await runInvocations({ taskRoot: fn('slow', 'export const handler = () => new Promise((r) => setTimeout(r, 5000));\n'), events: [{}], cold: 0, warm: 2, timeoutS: 1 });
    assert.deepEqual(reports.map((r) => [r.status, r.cold, r.durationMs]), [['timeout', true, 1000], ['timeout', true, 1000]]);
    assert.match(reports[0].lines.at(-1)!, /Duration: 1000\.00 ms\t.*\tStatus: timeout$/);
    assert.equal(reports[0].error?.errorMessage, 'Task timed out after 1.00 seconds');
  });

  test('over the memory size → Runtime.OutOfMemory with Max Memory Used at the limit', async () => {
    const r = await once(fn('hungry', 'export const handler = async () => { const b = Buffer.alloc(300 * 1024 * 1024, 1); return b.length; };\n'), { memoryMb: 128 });
    assert.equal(r.status, 'out-of-memory');
    assert.equal(r.maxMemoryUsedMb, 128);
    assert.match(r.lines.at(-1)!, /Max Memory Used: 128 MB.*\tStatus: error\tError Type: Runtime\.OutOfMemory$/);
  });

  test('a response over 6 MB → Function.ResponseSizeTooLarge', async () => {
    const r = await once(fn('big', "export const handler = async () => 'x'.repeat(7 * 1024 * 1024);\n"));
    assert.equal(r.status, 'error');
    assert.equal(r.error?.errorType, 'Function.ResponseSizeTooLarge');
  });

  test('an event over 6 MB (direct, or a function URL request) → RequestEntityTooLargeException; nothing runs', async () => {
    const taskRoot = fn('echo', 'export const handler = async (e) => JSON.stringify(e).length;\n');
    const big = 'x'.repeat(6 * 1024 * 1024);
    const direct = (await runInvocations({ taskRoot, events: [{ inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], data: [big] }] }], cold: 1, warm: 0 })).reports[0];
    const url = (await runInvocations({ taskRoot, events: [httpEvent('function-url', { method: 'POST', path: '/v2/models/m/infer', body: new Uint8Array(5 * 1024 * 1024) })], cold: 1, warm: 0 })).reports[0];
    for (const r of [direct, url]) {
      assert.equal(r.status, 'error');
      assert.equal(r.error?.errorType, 'RequestEntityTooLargeException');
      assert.match(r.error!.errorMessage, /^Request must be smaller than 6291456 bytes for the InvokeFunction operation/);
      assert.equal(r.environment, 0, 'no execution environment started');
    }
    // Just under the limit is delivered.
    const fits = (await runInvocations({ taskRoot, events: [{ s: 'x'.repeat(6 * 1024 * 1024 - 100) }], cold: 1, warm: 0 })).reports[0];
    assert.equal(fits.status, 'success');
  });

  test('a process that exits mid-invocation → Runtime.ExitError', async () => {
    const r = await once(fn('exits', 'export const handler = async () => process.exit(3);\n'));
    assert.equal(r.status, 'crash');
    assert.match(r.error!.errorMessage, /Runtime exited with error: exit status 3/);
  });

  test('the Runtime API refuses unknown request ids and routes', async () => {
    const emulator = await LambdaEmulator.start({ taskRoot: tmp });
    try {
      const base = `http://${emulator.address}/2018-06-01/runtime`;
      const bad = await fetch(`${base}/invocation/not-a-request/response`, { method: 'POST', body: '{}' });
      assert.equal(bad.status, 400);
      assert.equal((await bad.json()).errorType, 'InvalidRequestID');
      assert.equal((await fetch(`${base}/nothing`)).status, 404);
    } finally {
      await emulator.close();
    }
  });
});

test('a Keras .h5 builds into a Lambda function that answers with the NumPy reference', async (t) => {
  const dir = requireShared(t, 'models/keras-mnist');
  if (!dir) return;
  const expected = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/keras/simple_dense_28x28.expected.json'), 'utf8')) as {
    input: { name: string; shape: number[]; data: number[] };
    output: { name: string; shape: number[]; data: number[] };
  };
  const r = await buildLambda({ model: join(dir, 'simple_dense_28x28.h5'), out: join(tmp, 'keras'), arch: process.arch === 'arm64' ? 'arm64' : 'x86_64', runtime: 'nodejs22.x', memoryMb: 1024, timeoutS: 30, packageType: 'image', urlAuth: 'AWS_IAM' });
  assert.deepEqual(r.models.map((m) => m.name), ['simple_dense_28x28']);
  assert.match(r.models[0].notes[0], /converted from Keras/);
  const { reports } = await runInvocations({
    taskRoot: r.functionDir,
    events: [{ inputs: [{ name: expected.input.name, shape: expected.input.shape, datatype: 'FP32', data: expected.input.data }] }],
    cold: 1,
    warm: 0,
  });
  assert.equal(reports[0].status, 'success', JSON.stringify(reports[0].error));
  const out = (reports[0].result as { outputs: { name: string; shape: number[]; data: number[] }[] }).outputs[0];
  assert.equal(out.name, expected.output.name);
  assert.deepEqual(out.shape, expected.output.shape);
  assertClose(out.data, expected.output.data, 'keras simple_dense_28x28');
});
