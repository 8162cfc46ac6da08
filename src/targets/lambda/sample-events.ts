// Builds the events each integration sends, in the shapes of the Lambda developer guide's examples, so that
// `dais invoke --as <kind>` can wrap a v2 request and a test can send the same request every way.
import type { EventKind } from './events.ts';

export interface HttpCall {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export type HttpEventKind = Exclude<EventKind, 'direct' | 'warmup'> | 'alb-multi-value';
export const HTTP_EVENT_KINDS: readonly HttpEventKind[] = ['function-url', 'http-api-v2', 'rest-api-v1', 'alb', 'alb-multi-value'];

function encodeBody(body: HttpCall['body']): { body: string | null; isBase64Encoded: boolean } {
  if (body === undefined) return { body: null, isBase64Encoded: false };
  if (typeof body === 'string') return { body, isBase64Encoded: false };
  // Every integration base64-encodes a binary body.
  return { body: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64'), isBase64Encoded: true };
}

const now = () => new Date();

export function httpEvent(kind: HttpEventKind, call: HttpCall, options: { stage?: string } = {}): Record<string, unknown> {
  const headers = { 'content-type': 'application/json', ...call.headers };
  const { body, isBase64Encoded } = encodeBody(call.body);
  const method = call.method.toUpperCase();
  switch (kind) {
    case 'function-url':
    case 'http-api-v2': {
      const url = kind === 'function-url';
      const domainName = url ? 'a1b2c3d4e5f6g7h8.lambda-url.us-east-1.on.aws' : 'r3pmxmplak.execute-api.us-east-1.amazonaws.com';
      const stage = url ? '$default' : (options.stage ?? '$default');
      const rawPath = stage === '$default' ? call.path : `/${stage}${call.path}`;
      return {
        version: '2.0',
        routeKey: url ? '$default' : `${method} /{proxy+}`,
        rawPath,
        rawQueryString: '',
        headers: { host: domainName, ...headers },
        requestContext: {
          accountId: url ? 'anonymous' : '123456789012',
          apiId: domainName.split('.')[0],
          domainName,
          domainPrefix: domainName.split('.')[0],
          http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'dais' },
          requestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
          routeKey: url ? '$default' : `${method} /{proxy+}`,
          stage,
          time: now().toUTCString(),
          timeEpoch: now().getTime(),
        },
        body: body ?? undefined,
        isBase64Encoded,
      };
    }
    case 'rest-api-v1': {
      const stage = options.stage ?? 'prod';
      return {
        resource: '/{proxy+}',
        path: call.path,
        httpMethod: method,
        headers,
        multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
        queryStringParameters: null,
        multiValueQueryStringParameters: null,
        pathParameters: { proxy: call.path.slice(1) },
        stageVariables: null,
        requestContext: {
          accountId: '123456789012',
          apiId: '1234567890',
          httpMethod: method,
          path: `/${stage}${call.path}`,
          requestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
          resourcePath: '/{proxy+}',
          stage,
        },
        body,
        isBase64Encoded,
      };
    }
    case 'alb':
    case 'alb-multi-value': {
      const event: Record<string, unknown> = {
        requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/lambda-279XGJDqGZ5rsrHC2Fjr/49e9d65c45c6791a' } },
        httpMethod: method,
        path: call.path,
        body: body ?? '',
        isBase64Encoded,
      };
      if (kind === 'alb') {
        event.headers = headers;
        event.queryStringParameters = {};
      } else {
        event.multiValueHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
        event.multiValueQueryStringParameters = {};
      }
      return event;
    }
  }
}
