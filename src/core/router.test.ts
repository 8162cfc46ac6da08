import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InferenceError } from './errors.ts';
import { readJsonBody, Router, type PathParams } from './router.ts';
import type { V2Request } from './v2-app.ts';

const req = (method: string, path: string, body?: string, contentType?: string): V2Request => ({
  method,
  path,
  headers: contentType ? { 'content-type': contentType } : {},
  body: body === undefined ? undefined : new TextEncoder().encode(body),
});

const seen = (router: Router, method: string, path: string) => router.dispatch(req(method, path)) as { status: number; body: string } | undefined;
const echo = (name: string) => (_r: V2Request, params: PathParams) => ({ status: 200, headers: {}, body: JSON.stringify({ name, params }) });

test('patterns: named parameters, optional parts, a trailing slash only where declared', () => {
  const router = new Router([
    { method: 'POST', path: '/v2/models/:model[/versions/:version]/infer[/]', handle: echo('infer') },
    { method: 'GET', path: '/v2/health/live', handle: echo('live') },
    { method: 'GET', path: '/dashboard/chart.umd.min.js', handle: echo('asset') },
  ]);
  assert.deepEqual(JSON.parse(seen(router, 'POST', '/v2/models/digits/infer')!.body), { name: 'infer', params: { model: 'digits' } });
  assert.deepEqual(JSON.parse(seen(router, 'POST', '/v2/models/digits/versions/2/infer/')!.body).params, { model: 'digits', version: '2' });
  assert.equal(seen(router, 'POST', '/v2/models/a/b/infer'), undefined, 'a parameter is one whole segment');
  assert.equal(seen(router, 'GET', '/v2/health/live/'), undefined, 'no trailing slash unless the pattern has [/]');
  assert.equal(seen(router, 'GET', '/dashboard/chartXumdXminXjs'), undefined, 'a dot in a pattern is a dot');
  assert.equal(seen(router, 'GET', '/v2/models/digits/infer'), undefined, 'without strictMethods another method is no match');
});

test('parameters are decoded once; a malformed escape is NOT_FOUND naming the segment', () => {
  const router = new Router([{ method: 'GET', path: '/m/:name', handle: echo('m') }]);
  assert.equal(JSON.parse(seen(router, 'GET', '/m/a%2Fb%25')!.body).params.name, 'a/b%');
  assert.throws(
    () => seen(router, 'GET', '/m/%E0%A4%A'),
    (e: unknown) => e instanceof InferenceError && e.code === 'NOT_FOUND' && /malformed path segment '%E0%A4%A'/.test(e.message),
  );
});

test('strictMethods: HEAD is served as GET, another method is METHOD_NOT_ALLOWED naming the one to use', () => {
  const router = new Router([{ method: 'GET', path: '/v2/models/:model', handle: echo('meta') }], { strictMethods: true });
  assert.equal(seen(router, 'HEAD', '/v2/models/x')!.status, 200);
  assert.throws(
    () => seen(router, 'POST', '/v2/models/x'),
    (e: unknown) => e instanceof InferenceError && e.code === 'METHOD_NOT_ALLOWED' && e.message === 'POST is not allowed on /v2/models/x; use GET',
  );
  assert.throws(() => seen(router, 'POST', '/v2/models/%zz'), (e: unknown) => e instanceof InferenceError && e.code === 'NOT_FOUND', 'the escape is reported before the method');
});

test('readJsonBody: one reader, the same refusals', () => {
  assert.deepEqual(readJsonBody(req('POST', '/', '{"a":1}')), { a: 1 });
  assert.deepEqual(readJsonBody(req('POST', '/'), { empty: 'object' }), {});
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as InferenceError).code + ': ' + (e as Error).message;
    }
    return 'no error';
  };
  assert.match(code(() => readJsonBody(req('POST', '/'))), /^INVALID_JSON: request body is not valid JSON/);
  assert.equal(code(() => readJsonBody(req('POST', '/'), { empty: { refuse: 'needs a body' } })), 'INVALID_REQUEST: needs a body');
  assert.equal(code(() => readJsonBody(req('POST', '/', '[1]'))), 'INVALID_REQUEST: request body must be a JSON object');
  assert.equal(code(() => readJsonBody(req('POST', '/', '1'), { notObject: 'x must be {a}' })), 'INVALID_REQUEST: x must be {a}');
  assert.match(code(() => readJsonBody(req('POST', '/', 'a=1', 'application/x-www-form-urlencoded'), { jsonOnly: true })), /^UNSUPPORTED_MEDIA_TYPE: Content-Type 'application\/x-www-form-urlencoded' is not accepted here/);
  assert.deepEqual(readJsonBody(req('POST', '/', '{}', 'application/merge-patch+json'), { jsonOnly: true }), {});
});
