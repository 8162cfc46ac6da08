// Guards against other web sites driving a server through a visitor's browser. A page on evil.example can POST to
// http://127.0.0.1:8080 (a "simple" request: text/plain or no body, no preflight), and with DNS rebinding it can
// even read the answers under its own host name. Two checks stop both:
// - Origin: browsers send it on every cross-site POST; a foreign one is refused before the route runs.
// - Host: on a server bound to loopback, only loopback names (and the ones the operator allows) are answered, so a
//   rebound name (evil.example resolving to 127.0.0.1) gets nothing. A server bound to a routable address is reached
//   under names it cannot know in advance (a pod IP, a Service name), so there only the allowed hosts given apply.
import { InferenceError } from './errors.ts';
import { errorResponse, type V2Handler, type V2Request } from './v2-app.ts';

export interface SiteGuardOptions {
  /** True when the server listens on a loopback address only: then Host must be a loopback name or allowed. */
  loopback: boolean;
  /** Extra Host names (without port) to answer, and Origins' host names to accept (`--allowed-hosts`). */
  allowedHosts?: readonly string[];
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** True for addresses that accept only local connections. */
export function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The host name of a Host header or an Origin's authority, without port; lower case. */
export function hostName(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    return end === -1 ? a : a.slice(0, end + 1);
  }
  const colon = a.indexOf(':');
  return colon === -1 ? a : a.slice(0, colon);
}

/** An Origin's authority (host[:port]), lower case. */
function originAuthority(origin: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#@]+)$/i.exec(origin.trim());
  return m?.[1].toLowerCase();
}

/** Throws HOST_NOT_ALLOWED / ORIGIN_NOT_ALLOWED for a request the options do not accept. */
export function checkSite(request: Pick<V2Request, 'method' | 'headers'>, options: SiteGuardOptions, allowed = allowedNames(options)): void {
  const host = request.headers.host;
  const name = host === undefined ? undefined : hostName(host);
  if (options.loopback && name !== undefined && !LOOPBACK_NAMES.has(name) && !allowed.has(name) && !isLoopbackAddress(name)) {
    throw new InferenceError('HOST_NOT_ALLOWED', `Host '${name}' is not one this server answers to: it listens on loopback and answers localhost, 127.0.0.1 and [::1] (add names with --allowed-hosts)`);
  }
  const origin = request.headers.origin;
  // GET and HEAD change nothing, and without CORS headers a foreign page cannot read what they return.
  if (origin === undefined || request.method === 'GET' || request.method === 'HEAD') return;
  const from = originAuthority(origin);
  // Same-origin requests (a page served by this host and port) and allowed hosts pass; "null" (sandboxed frames,
  // files) does not.
  if (from !== undefined && (from === host?.trim().toLowerCase() || allowed.has(hostName(from)))) return;
  throw new InferenceError('ORIGIN_NOT_ALLOWED', `cross-site request refused: Origin '${origin.slice(0, 100)}' is not this server (allow its host with --allowed-hosts)`);
}

function allowedNames(options: SiteGuardOptions): Set<string> {
  return new Set((options.allowedHosts ?? []).map((h) => hostName(h)));
}

export function withSiteGuard(handler: V2Handler, options: SiteGuardOptions): V2Handler {
  const allowed = allowedNames(options);
  // The Host header that last passed, with no Origin: clients send the same one on every request, so the common
  // case is one string comparison.
  let passed: string | undefined;
  // Not an async function: the handler's answer, or its promise, is passed on as it is (an async wrapper resolving
  // with it costs every request two more turns of the microtask queue).
  return (request) => {
    const host = request.headers.host;
    if (host === undefined || host !== passed || request.headers.origin !== undefined) {
      try {
        checkSite(request, options, allowed);
      } catch (e) {
        return errorResponse(e);
      }
      if (host !== undefined && request.headers.origin === undefined) passed = host;
    }
    return handler(request);
  };
}
