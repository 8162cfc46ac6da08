// The event shapes a Lambda function receives, one small processor each: a type guard picks the processor,
// which translates the event into the core's V2Request and the core's V2Response back into what that
// integration expects. Field names follow the AWS Lambda developer guide's payload references.
import { STATUS_CODES } from 'node:http';
import { InferenceError, type V2Request, type V2Response } from '../../core/index.ts';
import { UserError } from '../../core/errors.ts';

type Headers = Record<string, string | undefined> | null | undefined;
type MultiHeaders = Record<string, string[] | undefined> | null | undefined;

/** API Gateway HTTP API payload 2.0, also used by Lambda function URLs. */
export interface HttpV2Event {
  version: '2.0';
  routeKey?: string;
  rawPath: string;
  rawQueryString?: string;
  headers?: Headers;
  body?: string | null;
  isBase64Encoded?: boolean;
  requestContext: { http: { method: string; path?: string }; domainName?: string; stage?: string; requestId?: string };
}

/** API Gateway REST API (payload 1.0; an HTTP API set to payload 1.0 sends the same). */
export interface RestV1Event {
  httpMethod: string;
  path: string;
  resource?: string;
  headers?: Headers;
  multiValueHeaders?: MultiHeaders;
  body?: string | null;
  isBase64Encoded?: boolean;
  requestContext: { stage?: string; requestId?: string; elb?: undefined };
}

/** Application Load Balancer target group with a Lambda target. */
export interface AlbEvent {
  httpMethod: string;
  path: string;
  headers?: Headers;
  multiValueHeaders?: MultiHeaders;
  body?: string | null;
  isBase64Encoded?: boolean;
  requestContext: { elb: { targetGroupArn: string } };
}

/** Direct invocation (Invoke API, Step Functions, SDKs): a v2 inference request object, plus which model. */
export interface DirectInferEvent {
  inputs: unknown[];
  id?: string;
  parameters?: Record<string, unknown>;
  outputs?: unknown[];
  /** Which bundled model; optional when the bundle holds one model. */
  model_name?: string;
  model_version?: string;
}

/** The keep-warm schedule's event (template.yaml sends `{"warmup": true}`), or a bare EventBridge schedule. */
export interface WarmupEvent {
  warmup?: true;
  source?: 'aws.events';
  'detail-type'?: 'Scheduled Event';
}

export type EventKind = 'function-url' | 'http-api-v2' | 'rest-api-v1' | 'alb' | 'direct' | 'warmup';

export interface HttpResult {
  statusCode: number;
  statusDescription?: string;
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  body: string;
  isBase64Encoded: boolean;
}

export interface ProcessorContext {
  /** The model a direct invocation goes to when it names none (the bundle's only model). */
  defaultModel?: string;
}

export interface EventProcessor<E> {
  readonly kind: EventKind;
  matches(event: unknown): event is E;
  toRequest(event: E, ctx: ProcessorContext): V2Request;
  toResult(response: V2Response, event: E): unknown;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function lowerHeaders(single: Headers, multi?: MultiHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  // When both are present (REST API sends both), the multi-value form is the complete one.
  for (const [k, v] of Object.entries(single ?? {})) if (v !== undefined && v !== null) out[k.toLowerCase()] = String(v);
  for (const [k, v] of Object.entries(multi ?? {})) if (Array.isArray(v) && v.length) out[k.toLowerCase()] = v.join(',');
  return out;
}

function bodyOf(body: string | null | undefined, base64: boolean | undefined): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  // Events come from integrations, but a direct `aws lambda invoke` can hand over anything.
  if (typeof body !== 'string') throw new InferenceError('INVALID_REQUEST', `the event's "body" must be a string (or null), got ${Array.isArray(body) ? 'an array' : typeof body}`);
  const b = base64 ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * API Gateway stages and custom-domain base paths put a prefix before /v2 (e.g. /prod/v2/models/m/infer);
 * the protocol's routes start at /v2, so anything before the first /v2 segment is dropped.
 */
export function protocolPath(path: string): string {
  if (path === '/v2' || path.startsWith('/v2/')) return path;
  const i = path.indexOf('/v2/');
  if (i !== -1) return path.slice(i);
  if (path.endsWith('/v2')) return '/v2';
  return path;
}

function encodeBody(response: V2Response, head: boolean): { body: string; isBase64Encoded: boolean } {
  if (head) return { body: '', isBase64Encoded: false };
  if (typeof response.body === 'string') return { body: response.body, isBase64Encoded: false };
  return { body: Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength).toString('base64'), isBase64Encoded: true };
}

function httpV2Request(event: HttpV2Event): V2Request {
  return {
    method: event.requestContext.http.method.toUpperCase(),
    path: protocolPath(event.rawPath),
    headers: lowerHeaders(event.headers),
    body: bodyOf(event.body, event.isBase64Encoded),
  };
}

function httpV2Result(response: V2Response, event: HttpV2Event): HttpResult {
  return { statusCode: response.status, headers: response.headers, ...encodeBody(response, event.requestContext.http.method.toUpperCase() === 'HEAD') };
}

const isHttpV2 = (e: unknown): e is HttpV2Event =>
  isObject(e) &&
  e.version === '2.0' &&
  typeof e.rawPath === 'string' &&
  isObject(e.requestContext) &&
  isObject(e.requestContext.http) &&
  typeof e.requestContext.http.method === 'string';

export const functionUrlProcessor: EventProcessor<HttpV2Event> = {
  kind: 'function-url',
  // Function URLs send payload 2.0 from a *.lambda-url.<region>.on.aws domain.
  matches: (e): e is HttpV2Event => isHttpV2(e) && /\.lambda-url\./.test(String(e.requestContext.domainName ?? '')),
  toRequest: (e) => httpV2Request(e),
  toResult: httpV2Result,
};

export const httpApiV2Processor: EventProcessor<HttpV2Event> = {
  kind: 'http-api-v2',
  matches: isHttpV2,
  toRequest(e) {
    const request = httpV2Request(e);
    // A named stage (not $default) appears in rawPath: /prod/v2/... → /v2/...
    const stage = e.requestContext.stage;
    if (stage && stage !== '$default' && e.rawPath.startsWith(`/${stage}/`)) request.path = protocolPath(e.rawPath.slice(stage.length + 1));
    return request;
  },
  toResult: httpV2Result,
};

export const albProcessor: EventProcessor<AlbEvent> = {
  kind: 'alb',
  matches: (e): e is AlbEvent =>
    isObject(e) && typeof e.httpMethod === 'string' && typeof e.path === 'string' && isObject(e.requestContext) && isObject(e.requestContext.elb),
  toRequest: (e) => ({
    method: e.httpMethod.toUpperCase(),
    path: protocolPath(e.path),
    headers: lowerHeaders(e.headers, e.multiValueHeaders),
    body: bodyOf(e.body, e.isBase64Encoded),
  }),
  toResult(response, e) {
    const result: HttpResult = {
      statusCode: response.status,
      // The load balancer builds its status line from this field.
      statusDescription: `${response.status} ${STATUS_CODES[response.status] ?? ''}`.trim(),
      ...encodeBody(response, e.httpMethod.toUpperCase() === 'HEAD'),
    };
    // A target group with multi-value headers on sends multiValueHeaders and ignores `headers` in the answer.
    if (e.multiValueHeaders) result.multiValueHeaders = Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k, [v]]));
    else result.headers = response.headers;
    return result;
  },
};

export const restApiV1Processor: EventProcessor<RestV1Event> = {
  kind: 'rest-api-v1',
  matches: (e): e is RestV1Event =>
    isObject(e) && typeof e.httpMethod === 'string' && typeof e.path === 'string' && isObject(e.requestContext) && e.requestContext.elb === undefined,
  toRequest: (e) => ({
    method: e.httpMethod.toUpperCase(),
    path: protocolPath(e.path),
    headers: lowerHeaders(e.headers, e.multiValueHeaders),
    body: bodyOf(e.body, e.isBase64Encoded),
  }),
  toResult: (response, e) => ({
    statusCode: response.status,
    headers: response.headers,
    multiValueHeaders: Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k, [v]])),
    ...encodeBody(response, e.httpMethod.toUpperCase() === 'HEAD'),
  }),
};

export class DirectInvocationError extends UserError {}

export const directProcessor: EventProcessor<DirectInferEvent> = {
  kind: 'direct',
  matches: (e): e is DirectInferEvent => isObject(e) && Array.isArray(e.inputs),
  toRequest(e, ctx) {
    const { model_name: name = ctx.defaultModel, model_version: version, ...request } = e;
    if (name === undefined) {
      throw new DirectInvocationError('this bundle holds several models: name one with "model_name" beside "inputs" in the invocation payload');
    }
    if (typeof name !== 'string' || (version !== undefined && typeof version !== 'string')) {
      throw new DirectInvocationError('"model_name" and "model_version" must be strings');
    }
    const path = `/v2/models/${encodeURIComponent(name)}${version === undefined ? '' : `/versions/${encodeURIComponent(version)}`}/infer`;
    let text: string;
    try {
      text = JSON.stringify(request);
    } catch (e) {
      // A payload nested past the stack's depth (JSON.stringify recurses), or one holding a BigInt.
      throw new InferenceError(e instanceof RangeError ? 'NESTING_TOO_DEEP' : 'INVALID_REQUEST', `the invocation payload cannot be read as a v2 request: ${(e as Error).message}`);
    }
    return { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: new TextEncoder().encode(text) };
  },
  toResult(response) {
    // The caller gets the v2 response object itself; an error comes back as the v2 error body plus its
    // HTTP status, not as a thrown function error (whose payload would carry a stack trace).
    if (typeof response.body !== 'string') {
      return { statusCode: response.status, headers: response.headers, ...encodeBody(response, false) };
    }
    const parsed = JSON.parse(response.body) as Record<string, unknown>;
    return response.status >= 400 ? { ...parsed, status: response.status } : parsed;
  },
};

export const warmupProcessor: EventProcessor<WarmupEvent> = {
  kind: 'warmup',
  matches: (e): e is WarmupEvent =>
    isObject(e) && (e.warmup === true || (e.source === 'aws.events' && e['detail-type'] === 'Scheduled Event')),
  toRequest: () => ({ method: 'GET', path: '/v2/health/ready', headers: {} }),
  toResult: (response) => ({ warm: true, ready: response.status === 200 }),
};

/** Most specific first: a function URL event is also a payload 2.0 event, and ALB events look like REST ones. */
export const PROCESSORS: readonly EventProcessor<never>[] = [
  functionUrlProcessor,
  httpApiV2Processor,
  albProcessor,
  restApiV1Processor,
  directProcessor,
  warmupProcessor,
] as unknown as EventProcessor<never>[];

export function processorFor(event: unknown): EventProcessor<unknown> | undefined {
  return PROCESSORS.find((p) => p.matches(event)) as EventProcessor<unknown> | undefined;
}
