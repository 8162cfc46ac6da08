// The monitoring routes, mounted through the v2 app's `routes`: per-model drift and feedback, the dashboard's series,
// the CloudEvents intake, and the dashboard page itself. They only ask a MonitorApi, so a cluster worker mounts the
// same routes over questions it forwards to the primary (src/monitor/cluster.ts).
import { InferenceError, jsonResponse, type ExtraRoute, type V2Request } from '../core/index.ts';
import { dashboardAsset, dashboardHtml } from './dashboard.ts';

/** The questions the monitoring routes ask: of a Monitor here, or of the cluster primary's from a worker. */
export interface MonitorApi {
  report(model: string, version: string | undefined): Promise<unknown>;
  feedback(model: string, version: string | undefined, body: Record<string, unknown>): Promise<unknown>;
  series(): Promise<unknown>;
  /** One CloudEvent POSTed to /v2/monitor/events (headers in lower case, the raw body). */
  events(headers: Record<string, string | undefined>, body: Uint8Array): Promise<unknown>;
}

const SEGMENT = '([^/]+)';

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new InferenceError('NOT_FOUND', `malformed path segment '${s}'`);
  }
}

/** GET …/drift, POST …/feedback, GET /v2/monitor/series, and (with `dashboard`) the page and its script. */
export function monitorRoutes(api: MonitorApi, dashboard: boolean): ExtraRoute[] {
  const modelPath = (tail: string) => new RegExp(`^/v2/models/${SEGMENT}(?:/versions/${SEGMENT})?/${tail}/?$`);
  const versionOf = (m: RegExpExecArray) => (m[2] === undefined ? undefined : decode(m[2]));
  const routes: ExtraRoute[] = [
    { method: 'GET', pattern: modelPath('drift'), handle: async (_r, m) => jsonResponse(200, await api.report(decode(m[1]), versionOf(m))) },
    { method: 'POST', pattern: modelPath('feedback'), handle: async (request, m) => jsonResponse(200, await api.feedback(decode(m[1]), versionOf(m), feedbackBody(request))) },
    { method: 'GET', pattern: /^\/v2\/monitor\/series\/?$/, handle: async () => jsonResponse(200, await api.series()) },
    { method: 'POST', pattern: /^\/v2\/monitor\/events\/?$/, handle: async (request) => jsonResponse(202, await api.events(request.headers, request.body ?? new Uint8Array(0))) },
  ];
  if (dashboard) {
    routes.push(
      { method: 'GET', pattern: /^\/dashboard\/?$/, handle: () => ({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: dashboardHtml({ seriesUrl: '/v2/monitor/series' }) }) },
      {
        method: 'GET',
        pattern: /^\/dashboard\/(chart\.umd\.min\.js)$/,
        handle: (_r, m) => ({ status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=3600' }, body: dashboardAsset(m[1]) }),
      },
    );
  }
  return routes;
}

/** Feedback's body: unlike the repository routes' JSON reader, an empty body is refused (it must name id and truth). */
function feedbackBody(request: V2Request): Record<string, unknown> {
  const body = request.body;
  if (!body || body.length === 0) throw new InferenceError('INVALID_REQUEST', 'feedback needs a JSON body {"id": "<x-request-id>", "truth": <ground truth>}');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch (e) {
    throw new InferenceError('INVALID_JSON', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InferenceError('INVALID_REQUEST', 'feedback body must be a JSON object {"id", "truth"}');
  return parsed as Record<string, unknown>;
}
