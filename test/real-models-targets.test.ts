// The real-scale examples through the build targets (issue 17): a build either produces an artefact that answers, or
// refuses with the limit it would hit and a suggestion that works when pasted.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { serveStatic } from '../src/targets/edge/static-server.ts';
import { CHROMIUM_ARGS } from './edge-support.ts';
import { REPO_ROOT, requireTool } from './support/env.ts';
import { REAL_REPOSITORY, referenceValues, requireRealModel, type RealModel, type ReferenceCase } from './support/real-models.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dais-real-targets-'));
const dais = (...args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), ...args], { encoding: 'utf8', cwd: tmp });

/** Runs a printed command line through the shell, with `dais` on PATH, as a user pasting it would. */
function paste(command: string) {
  const bin = join(tmp, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(join(bin, 'dais'), `#!/bin/sh\nexec "${process.execPath}" "${join(REPO_ROOT, 'bin/dais.js')}" "$@"\n`);
  chmodSync(join(bin, 'dais'), 0o755);
  return spawnSync('sh', ['-c', command], { encoding: 'utf8', cwd: tmp, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
}

test('resnet50 → lambda: refused over the 50 MB zip limit with a --quantize command that builds when pasted', (t) => {
  if (!requireRealModel(t, 'resnet50')) return;
  const out = join(tmp, 'resnet50-lambda');
  const r = dais('build', join(REAL_REPOSITORY, 'resnet50'), '--target', 'lambda', '--out', out);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /over Lambda's 50 MB limit for a \.zip uploaded directly/);
  const command = /: (dais build .* --quantize int8-weights);/.exec(r.stderr)?.[1];
  assert.ok(command, r.stderr);
  const pasted = paste(command);
  assert.equal(pasted.status, 0, pasted.stdout + pasted.stderr);
  assert.match(pasted.stdout, /for resnet50 v1/);
  assert.ok(statSync(join(out, 'function.zip')).size < 50 * 1024 * 1024);
});

/** A JSON v2 request of a reference case's inputs (what a user would pass with --request). */
function requestFile(model: RealModel, c: ReferenceCase): string {
  const file = join(tmp, `${model}-${c.name}.json`);
  writeFileSync(file, JSON.stringify({ inputs: c.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape, data: Array.from(referenceValues(model, i), Number) })) }));
  return file;
}

for (const model of ['silero-vad-v5', 'silero-vad-legacy'] as const) {
  test(`${model} → edge (browser): builds with and without --request, checked on onnxruntime-web`, (t) => {
    const reference = requireRealModel(t, model);
    if (!reference) return;
    // Without --request: a request of zeros the model answers (unnamed dynamic dims are dynamic, not 4294967295;
    // a length of 1 that Pad refuses is retried longer).
    const bare = dais('build', join(REAL_REPOSITORY, model), '--target', 'edge', '--out', join(tmp, `${model}-edge`));
    assert.equal(bare.status, 0, bare.stdout + bare.stderr);
    assert.match(bare.stdout, /checked zeros\.json on onnxruntime-web/);
    const withRequest = dais('build', join(REAL_REPOSITORY, model), '--target', 'edge', '--out', join(tmp, `${model}-edge-req`), '--request', requestFile(model, reference.cases[0]));
    assert.equal(withRequest.status, 0, withRequest.stdout + withRequest.stderr);
    assert.match(withRequest.stdout, /checked silero-vad-.*frame-1\.json on onnxruntime-web/);
  });

  test(`${model} → edge (browser): the bundle answers the reference frame in real Chromium as onnxruntime does`, async (t) => {
    const reference = requireRealModel(t, model);
    if (!reference) return;
    const chromiumPath = requireTool(t, 'chromium', 'chromium');
    if (!chromiumPath) return;
    const out = join(tmp, `${model}-edge-chromium`);
    const c = reference.cases[0];
    const built = dais('build', join(REAL_REPOSITORY, model), '--target', 'edge', '--out', out, '--request', requestFile(model, c));
    assert.equal(built.status, 0, built.stdout + built.stderr);
    const request = { inputs: c.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape, data: Array.from(referenceValues(model, i), Number) })) };
    const server = await serveStatic(out, {});
    const context = await chromium.launchPersistentContext(join(tmp, `${model}-profile`), { executablePath: chromiumPath, args: CHROMIUM_ARGS });
    try {
      const page = await context.newPage();
      await page.goto(server.url);
      const outputs = (await page.evaluate(async (body) => {
        const sdk = await import(new URL('./dais.js', document.baseURI).href);
        const m = await sdk.load();
        const r = await m.infer(body);
        await m.dispose();
        return r.outputs;
      }, request)) as { name: string; data: number[] }[];
      for (const o of c.outputs) {
        const got = outputs.find((x) => x.name === o.name);
        assert.ok(got, `output ${o.name} in the page's answer`);
        const want = Array.from(referenceValues(model, o) as ArrayLike<number | bigint>, Number);
        const scale = Math.max(...want.map(Math.abs));
        assert.equal(got.data.length, want.length, `${o.name}: ${got.data.length} values`);
        // Within 1e-4 relative, floored at 1% of the tensor's largest value (summation order alone moves tiny values).
        got.data.forEach((v, k) => assert.ok(Math.abs(v - want[k]) <= 1e-4 * Math.max(Math.abs(want[k]), 0.01 * scale), `${o.name}[${k}] ${v} vs ${want[k]}`));
      }
    } finally {
      await context.close();
      await server.close();
    }
  });
}
