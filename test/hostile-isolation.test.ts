// Issue 22: a native crash in a model run costs that run's requests, not the server. Under `--isolation process`
// each model instance runs in a child process; the test makes onnxruntime really abort in one (the zero-size GRU
// input, let through only by a test hook honoured in the child's code: onnxruntime-node-process.ts) and checks the
// crashed run's request gets MODEL_PROCESS_EXITED, the other model keeps answering right, and the model comes back.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from './support/env.ts';
import { assertResponseMatches, exampleCases } from './support/examples.ts';
import { parsePrometheusText } from './support/prometheus.ts';
import { startServe, type Started } from './support/serve-cli.ts';
import { call, tempRepository } from './support/serving.ts';
import { waitFor } from './support/wait.ts';

const keyword = exampleCases('keyword').find((c) => c.requestFile === 'yes.json')!;
const mlp = exampleCases('mlp').find((c) => c.requestFile === 'single.json')!;
/** A float32 value the child's test hook looks for (exact in float32). */
const MARKER = 12345.5;

/** keyword's yes.json with the marker as its first value: the child runs it with dimension 0 of size 0. */
function crashingRequest() {
  const r = structuredClone(keyword.request);
  const data = (r.inputs[0].data as unknown[]).flat(Infinity) as number[];
  data[0] = MARKER;
  r.inputs[0].data = data;
  return r;
}

describe('dais serve --isolation process', () => {
  const repo = tempRepository();
  let s: Started;
  before(async () => {
    repo.add('keyword', '1');
    repo.add('mlp', '1');
    s = await startServe([repo.root, '--isolation', 'process', '--no-monitor', '--log-level', 'info'], { ...process.env, DAIS_TEST_CHILD_ZERO_DIM_MARKER: String(MARKER) });
  });
  after(async () => {
    s?.child.kill('SIGTERM');
    await s?.exited;
    repo.remove();
  });

  it('a run that aborts onnxruntime fails with MODEL_PROCESS_EXITED; other models keep serving; the model comes back', async () => {
    const ok = await call(s.info.url, 'POST', '/v2/models/keyword/infer', keyword.request);
    assert.equal(ok.status, 200, ok.text);
    assertResponseMatches(ok.json().outputs, keyword.expected, 'keyword before the crash');

    const [crashed, other] = await Promise.all([
      call(s.info.url, 'POST', '/v2/models/keyword/infer', crashingRequest()),
      call(s.info.url, 'POST', '/v2/models/mlp/infer', mlp.request),
    ]);
    assert.equal(crashed.status, 503, crashed.text);
    assert.equal(crashed.json().code, 'MODEL_PROCESS_EXITED');
    assert.ok(crashed.headers.get('retry-after'));
    assert.equal(other.status, 200, other.text);
    assertResponseMatches(other.json().outputs, mlp.expected, 'mlp during the crash');
    // A real native abort in the child, not an error it reported.
    const exit = s.logs.find((l) => l.msg === 'a model process exited: its pending requests failed (MODEL_PROCESS_EXITED); restarting it');
    assert.equal(exit?.signal, 'SIGABRT', JSON.stringify(exit));
    assert.equal(exit?.model, 'keyword');

    await waitFor(async () => (await call(s.info.url, 'GET', '/v2/models/keyword/ready')).status === 200, { timeoutMs: 30_000, intervalMs: 50, what: 'keyword ready again' });
    const again = await call(s.info.url, 'POST', '/v2/models/keyword/infer', keyword.request);
    assert.equal(again.status, 200, again.text);
    assertResponseMatches(again.json().outputs, keyword.expected, 'keyword after the restart');
    for (let i = 0; i < 3; i++) assert.equal((await call(s.info.url, 'POST', '/v2/models/mlp/infer', mlp.request)).status, 200);

    const metrics = parsePrometheusText((await call(s.info.url, 'GET', '/metrics')).text);
    const events = metrics.get('dais_model_process_events_total')!.samples.filter((x) => x.labels.model === 'keyword');
    assert.equal(events.find((x) => x.labels.event === 'exit')?.value, 1);
    assert.equal(events.find((x) => x.labels.event === 'restart')?.value, 1);
    assert.equal(s.child.exitCode, null, 'the server is still running');
  });

  it('crashes in a row are restarted after a growing delay, and the server never stops', async () => {
    for (let i = 0; i < 3; i++) {
      await waitFor(async () => (await call(s.info.url, 'GET', '/v2/models/keyword/ready')).status === 200, { timeoutMs: 30_000, intervalMs: 50, what: `keyword ready (crash ${i})` });
      const r = await call(s.info.url, 'POST', '/v2/models/keyword/infer', crashingRequest());
      assert.equal(r.json().code, 'MODEL_PROCESS_EXITED');
    }
    const delays = s.logs.filter((l) => l.msg === 'a model process exited: its pending requests failed (MODEL_PROCESS_EXITED); restarting it').map((l) => l.restartInMs as number);
    assert.deepEqual(delays.slice(-3), [200, 400, 800]);
    await waitFor(async () => (await call(s.info.url, 'GET', '/v2/models/keyword/ready')).status === 200, { timeoutMs: 30_000, intervalMs: 50, what: 'keyword ready at the end' });
    const ok = await call(s.info.url, 'POST', '/v2/models/keyword/infer', keyword.request);
    assertResponseMatches(ok.json().outputs, keyword.expected, 'keyword after the crashes');
  });
});

/** The server's child processes that host a session (spawned with `node -e`). */
function sessionChildren(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid && readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')[1] === '-e';
      } catch {
        return false; // ended meanwhile
      }
    })
    .map(Number);
}

describe('isolation: process in one model\'s config', () => {
  const repo = tempRepository();
  let s: Started;
  before(async () => {
    repo.add('keyword', '1');
    repo.add('mlp', '1');
    repo.config('keyword', { isolation: 'process' });
    s = await startServe([repo.root, '--no-monitor', '--log-level', 'info'], { ...process.env, DAIS_TEST_CHILD_ZERO_DIM_MARKER: String(MARKER) });
  });
  after(async () => {
    s?.child.kill('SIGTERM');
    await s?.exited;
    repo.remove();
  });

  it('isolates that model only: its crash is MODEL_PROCESS_EXITED, the other model runs in the server', async () => {
    assert.equal(sessionChildren(s.child.pid!).length, 1, 'one child process: keyword\'s');
    // The model's memory counts its child process (a Node process with onnxruntime: tens of MiB), not just the
    // server's growth, so --memory-budget and dais_model_memory_bytes see what isolation costs.
    const config = (await call(s.info.url, 'GET', '/v2/models/keyword/config')).json();
    assert.ok(Number(config.parameters.memory_bytes.string_value) > 20 * 2 ** 20, JSON.stringify(config.parameters));
    const crashed = await call(s.info.url, 'POST', '/v2/models/keyword/infer', crashingRequest());
    assert.equal(crashed.json().code, 'MODEL_PROCESS_EXITED');
    const other = await call(s.info.url, 'POST', '/v2/models/mlp/infer', mlp.request);
    assertResponseMatches(other.json().outputs, mlp.expected, 'mlp');
    await waitFor(async () => (await call(s.info.url, 'GET', '/v2/models/keyword/ready')).status === 200, { timeoutMs: 30_000, intervalMs: 50, what: 'keyword ready again' });
    assertResponseMatches((await call(s.info.url, 'POST', '/v2/models/keyword/infer', keyword.request)).json().outputs, keyword.expected, 'keyword');
  });
});

it('--isolation takes none or process, and not with --run-on main', () => {
  const dais = (args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'serve', join(REPO_ROOT, 'examples/mlp/1/model.onnx'), '--port', '0', ...args], { encoding: 'utf8', timeout: 30_000 });
  const bad = dais(['--isolation', 'thread']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--isolation must be 'none' or 'process'/);
  const main = dais(['--isolation', 'process', '--run-on', 'main']);
  assert.notEqual(main.status, 0);
  assert.match(main.stderr, /cannot be combined with --run-on main/);
});
