// Issue 22, items 7 and 9: malformed Lambda events answer 400 with a code (never a throw or a 500), `dais invoke`
// refuses an event too deep to serialise instead of hanging, and the CSV export neutralises formula cells.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createV2App } from '../src/core/index.ts';
import { csvField } from '../src/cli/log.ts';
import { onnxruntimeNode } from '../src/runtime/onnxruntime-node.ts';
import { ModelRepository, serverMetadata } from '../src/serve/index.ts';
import { createLambdaHandler, type LambdaHandler } from '../src/targets/lambda/handler.ts';
import { REPO_ROOT } from './support/env.ts';
import { exampleModel, exampleRequest } from './support/serving.ts';

describe('Lambda handler: malformed events', () => {
  let repository: ModelRepository;
  let handler: LambdaHandler;
  before(async () => {
    repository = await ModelRepository.open(exampleModel('mlp'), { backend: onnxruntimeNode });
    handler = createLambdaHandler(createV2App({ registry: repository, server: serverMetadata() }), { onError: () => {} });
  });
  after(async () => repository.close());

  const body = JSON.stringify(exampleRequest('mlp'));
  const path = '/v2/models/model/infer';
  const cases: [string, unknown][] = [
    ['function URL without requestContext.http.method', { version: '2.0', rawPath: path, body, requestContext: { domainName: 'a.lambda-url.eu-west-1.on.aws', http: {} } }],
    ['ALB event without path', { httpMethod: 'POST', body, requestContext: { elb: { targetGroupArn: 'arn' } } }],
    ['"body": 123', { version: '2.0', rawPath: path, body: 123, requestContext: { http: { method: 'POST' } } }],
    ['"body": {}', { httpMethod: 'POST', path, body: {}, requestContext: { elb: { targetGroupArn: 'arn' } } }],
  ];
  for (const [what, event] of cases) {
    it(`${what} → 400 with a code`, async () => {
      const r = (await handler(event)) as { statusCode?: number; status?: number; body?: string; code?: string };
      const status = r.statusCode ?? r.status;
      assert.equal(status, 400, JSON.stringify(r));
      const code = r.code ?? (JSON.parse(r.body!) as { code: string }).code;
      assert.equal(code, 'INVALID_REQUEST');
    });
  }

  it('a direct invocation nested past the stack answers NESTING_TOO_DEEP', async () => {
    let data: unknown[] = [1];
    for (let i = 0; i < 20_000; i++) data = [data];
    const r = (await handler({ model_name: 'model', inputs: [{ name: 'input', datatype: 'FP32', shape: [1], data }] })) as { status: number; code: string };
    assert.equal(r.status, 400);
    assert.equal(r.code, 'NESTING_TOO_DEEP');
  });
});

describe('dais invoke', () => {
  it('refuses an event nested 5,000 deep at once instead of hanging', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dais-deep-'));
    try {
      const file = join(dir, 'deep.json');
      writeFileSync(file, `{"inputs":${'['.repeat(5000)}${']'.repeat(5000)}}`);
      const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), 'invoke', join(dir, 'no-bundle'), '--event', file], { encoding: 'utf8', timeout: 60_000 });
      assert.notEqual(r.status, 0);
      assert.equal(r.signal, null, 'it exited by itself');
      assert.match(r.stderr, /nests arrays\/objects more than 1000 levels deep/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dais log export --format csv', () => {
  it('prefixes cells a spreadsheet would run as formulas with a quote (OWASP CSV injection)', () => {
    for (const evil of ['=1+2', '+1', '-1+2', '@SUM(A1)', '\tx', '\rx']) assert.ok(csvField(evil).replace(/^"/, '').startsWith(`'`), JSON.stringify(csvField(evil)));
    assert.equal(csvField('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
    assert.equal(csvField('req-1'), 'req-1');
    assert.equal(csvField(-1.5), '-1.5', 'numbers stay numbers');
  });
});
