// Routes as data: a method, a path pattern with named parameters, a handler. Each pattern is compiled once; path
// parameters are decoded once, here, so no handler sees a raw segment; and one reader turns a JSON body into an object.
import { InferenceError } from './errors.ts';
import type { V2Request, V2Response } from './v2-app.ts';

/** Decoded path parameters by name, e.g. { model: 'digits', version: '2' }; an optional one that was absent is undefined. */
export type PathParams = Record<string, string | undefined>;

export interface Route {
  method: string;
  /**
   * Literal segments, `:name` parameters (one whole segment each) and `[…]` optional parts, e.g.
   * `/v2/models/:model[/versions/:version]/infer[/]` — a trailing slash is allowed only where the pattern says so.
   */
  path: string;
  handle(request: V2Request, params: PathParams): Promise<V2Response> | V2Response;
}

export interface RouterOptions {
  /**
   * A path that a route knows under another method answers METHOD_NOT_ALLOWED (and HEAD is served as GET);
   * without it such a request is simply not matched, so the next router can have it.
   */
  strictMethods?: boolean;
}

interface Compiled {
  route: Route;
  regex: RegExp;
  names: string[];
}

export class Router {
  private readonly compiled: Compiled[];

  constructor(
    routes: readonly Route[],
    private readonly options: RouterOptions = {},
  ) {
    this.compiled = routes.map(compile);
  }

  /**
   * The answer of the route for this method and path; undefined when none has them. Throws NOT_FOUND for a malformed
   * escape in a matched parameter, METHOD_NOT_ALLOWED under `strictMethods`.
   */
  dispatch(request: V2Request): Promise<V2Response> | V2Response | undefined {
    const { method, path } = request;
    const strict = this.options.strictMethods === true;
    const wanted = strict && method === 'HEAD' ? 'GET' : method;
    let allowed: string | undefined;
    for (const c of this.compiled) {
      const m = c.regex.exec(path);
      if (!m) continue;
      const route = c.route;
      if (route.method === wanted || route.method === method) return route.handle(request, decodeParams(c.names, m));
      if (allowed !== undefined || !strict) continue;
      decodeParams(c.names, m); // a malformed escape is reported before the method, as the protocol's routes always did
      allowed = route.method;
    }
    if (allowed !== undefined) throw new InferenceError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; use ${allowed}`);
    return undefined;
  }
}

function compile(route: Route): Compiled {
  const names: string[] = [];
  let source = '';
  for (const token of route.path.match(/:[A-Za-z_]\w*|\[|\]|[^:[\]]+/g) ?? []) {
    if (token === '[') source += '(?:';
    else if (token === ']') source += ')?';
    else if (token.startsWith(':')) {
      names.push(token.slice(1));
      source += '([^/]+)';
    } else source += token.replace(/[.*+?^${}()|\\]/g, '\\$&');
  }
  return { route, regex: new RegExp(`^${source}$`), names };
}

function decodeParams(names: string[], m: RegExpExecArray): PathParams {
  const params: PathParams = {};
  for (let i = 0; i < names.length; i++) params[names[i]] = m[i + 1] === undefined ? undefined : decodePathSegment(m[i + 1]);
  return params;
}

/** One path segment, percent-decoded; a malformed escape names no endpoint. */
export function decodePathSegment(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    throw new InferenceError('NOT_FOUND', `malformed path segment '${s}'`);
  }
}

/** One decoder for every body (making a TextDecoder per request cost more than decoding a small body). */
const utf8 = new TextDecoder();

export interface JsonBodyOptions {
  /**
   * Refuse a body that says it is not JSON: a form or text/plain body is what a cross-site page can send without a
   * preflight, so mutating routes take JSON only.
   */
  jsonOnly?: boolean;
  /** An empty body: `{}`, or refused with this message (INVALID_REQUEST); absent = parsed like any other (INVALID_JSON). */
  empty?: 'object' | { refuse: string };
  /** How the refusal of a non-object names the body, e.g. 'feedback body must be a JSON object {"id", "truth"}'. */
  notObject?: string;
}

/** The request's body as a JSON object, with the same refusals everywhere: UNSUPPORTED_MEDIA_TYPE, INVALID_JSON, INVALID_REQUEST. */
export function readJsonBody(request: V2Request, options: JsonBodyOptions = {}): Record<string, unknown> {
  if (options.jsonOnly) {
    const type = request.headers['content-type']?.split(';')[0].trim().toLowerCase();
    if (type !== undefined && type !== 'application/json' && !type.endsWith('+json')) {
      throw new InferenceError('UNSUPPORTED_MEDIA_TYPE', `Content-Type '${type}' is not accepted here: send a JSON body with 'Content-Type: application/json' (or no body)`);
    }
  }
  const body = request.body ?? new Uint8Array(0);
  if (body.length === 0 && options.empty === 'object') return {};
  if (body.length === 0 && typeof options.empty === 'object') throw new InferenceError('INVALID_REQUEST', options.empty.refuse);
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(body));
  } catch (e) {
    throw new InferenceError('INVALID_JSON', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InferenceError('INVALID_REQUEST', options.notObject ?? 'request body must be a JSON object');
  return parsed as Record<string, unknown>;
}
