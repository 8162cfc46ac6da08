// Optional bearer-token auth in front of a V2Handler. Health endpoints stay open so orchestrators' probes need no
// secret. Runtime-agnostic, so a container, a Lambda function URL or the local server can all put it in front.
import { errorResponse, type V2Handler, type V2Request } from './v2-app.ts';
import { InferenceError } from './errors.ts';

export const OPEN_PATHS = ['/v2/health/live', '/v2/health/ready'];

/** Compares without an early exit, so the time taken does not tell how much of a guess was right. */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  // Past the end charCodeAt gives NaN, and NaN | 0 is 0: the loop length depends only on the longer string.
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}

/** The token a request carries in `Authorization: Bearer <token>`, if any. */
export function bearerTokenOf(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization);
  return m?.[1];
}

/** Checks a token; throws UNAUTHORIZED with a message that says what to send. */
export function checkBearer(authorization: string | undefined, token: string): void {
  const given = bearerTokenOf(authorization);
  if (given === undefined) {
    throw new InferenceError('UNAUTHORIZED', "this server requires a token: send the header 'Authorization: Bearer <token>'");
  }
  if (!constantTimeEqual(given, token)) throw new InferenceError('UNAUTHORIZED', 'the bearer token is not valid for this server');
}

export function withBearerAuth(handler: V2Handler, token: string): V2Handler {
  if (!token) throw new Error('withBearerAuth needs a non-empty token');
  // Not an async function: the handler's answer, or its promise, is passed on as it is (see withSiteGuard).
  return (request: V2Request) => {
    const path = request.path.endsWith('/') && request.path.length > 1 ? request.path.slice(0, -1) : request.path;
    if (!OPEN_PATHS.includes(path)) {
      try {
        checkBearer(request.headers.authorization, token);
      } catch (e) {
        const r = errorResponse(e);
        r.headers['www-authenticate'] = 'Bearer';
        return r;
      }
    }
    return handler(request);
  };
}
