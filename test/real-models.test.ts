// The real-scale examples (scripts/make-real-models.mjs) served by `dais serve` as a user runs it: each served output
// equals its reference (torch's own output, or onnxruntime run directly on the pre-trained files) within 1e-4.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from './support/env.ts';
import { binaryRequest, decodeResponse, REAL_MODELS, REAL_REPOSITORY, realModelMade, referenceValues, relativeError, requireRealModel } from './support/real-models.ts';

let server: { child: ChildProcess; url: string } | undefined;

before(async () => {
  // Only what the script has made: a test below skips (or fails in CI) for each model that is missing.
  if (!REAL_MODELS.some(realModelMade)) return;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'serve', REAL_REPOSITORY, '--port', '0', '--json', '--no-monitor', '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`dais serve exited (${code}) before it was ready: ${stderr}`)));
  });
  server = { child, url: (JSON.parse(line) as { url: string }).url };
});

after(() => {
  server?.child.kill('SIGTERM');
});

for (const model of REAL_MODELS) {
  test(`${model}: dais serve answers its reference cases within 1e-4 relative`, async (t) => {
    const reference = requireRealModel(t, model);
    if (!reference) return;
    assert.ok(server, 'dais serve started');
    // A model with a main-thread session for lone requests beside its worker (run-plan.ts, LONE_RUN_MAX_US) answers
    // the first request after load on the worker: its cases go twice, so one-row cases also run on the main thread.
    const config = (await (await fetch(`${server.url}/v2/models/${model}/config`)).json()) as { parameters: Record<string, { string_value: string }> };
    const twice = config.parameters.lone_request_thread?.string_value === 'main' && config.parameters.execution_thread?.string_value === 'worker';
    for (const c of twice ? [...reference.cases, ...reference.cases] : reference.cases) {
      const { body, headers } = binaryRequest(model, c);
      const res: Response = await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', body: body as BodyInit, headers });
      const bytes = new Uint8Array(await res.arrayBuffer());
      assert.equal(res.status, 200, `${model} ${c.name}: ${new TextDecoder().decode(bytes.subarray(0, 500))}`);
      const outputs = decodeResponse(bytes, res.headers.get('inference-header-content-length'));
      assert.deepEqual(outputs.map((o) => o.name).sort(), c.outputs.map((o) => o.name).sort(), `${model} ${c.name}: output names`);
      for (const expected of c.outputs) {
        const got = outputs.find((o) => o.name === expected.name)!;
        assert.equal(got.datatype, expected.datatype, `${model} ${c.name} ${expected.name}: datatype`);
        assert.deepEqual(got.shape, expected.shape, `${model} ${c.name} ${expected.name}: shape`);
        const want = referenceValues(model, expected);
        assert.equal(got.values.length, want.length, `${model} ${c.name} ${expected.name}: element count`);
        const { max, at } = relativeError(got.values, want);
        assert.ok(max <= 1e-4, `${model} ${c.name} ${expected.name}[${at}]: got ${got.values[at]}, expected ${want[at]} (relative error ${max.toExponential(2)})`);
      }
    }
  });
}
