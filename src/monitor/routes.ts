// The monitoring routes, mounted through the v2 app's `routes`: per-model drift and feedback, the dashboard's series,
// the CloudEvents intake, and the dashboard page itself. They only ask a MonitorApi, so a cluster worker mounts the
// same routes over questions it forwards to the primary (src/monitor/cluster.ts).
import { jsonResponse, readJsonBody, type ExtraRoute, type V2Request } from '../core/index.ts';
import { dashboardAsset, dashboardHtml } from './dashboard.ts';

/** The questions the monitoring routes ask: of a Monitor here, or of the cluster primary's from a worker. */
export interface MonitorApi {
  report(model: string, version: string | undefined): Promise<unknown>;
  feedback(model: string, version: string | undefined, body: Record<string, unknown>): Promise<unknown>;
  series(): Promise<unknown>;
  /** One CloudEvent POSTed to /v2/monitor/events (headers in lower case, the raw body). */
  events(headers: Record<string, string | undefined>, body: Uint8Array): Promise<unknown>;
}

/** GET …/drift, POST …/feedback, GET /v2/monitor/series, and (with `dashboard`) the page and its script. */
export function monitorRoutes(api: MonitorApi, dashboard: boolean): ExtraRoute[] {
  const routes: ExtraRoute[] = [
    { method: 'GET', path: '/v2/models/:model[/versions/:version]/drift[/]', handle: async (_r, p) => jsonResponse(200, await api.report(p.model!, p.version)) },
    { method: 'POST', path: '/v2/models/:model[/versions/:version]/feedback[/]', handle: async (request, p) => jsonResponse(200, await api.feedback(p.model!, p.version, feedbackBody(request))) },
    { method: 'GET', path: '/v2/monitor/series[/]', handle: async () => jsonResponse(200, await api.series()) },
    { method: 'POST', path: '/v2/monitor/events[/]', handle: async (request) => jsonResponse(202, await api.events(request.headers, request.body ?? new Uint8Array(0))) },
  ];
  if (dashboard) {
    routes.push(
      { method: 'GET', path: '/dashboard[/]', handle: () => ({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: dashboardHtml({ seriesUrl: '/v2/monitor/series' }) }) },
      // The one asset the page loads (its name is fixed: dashboardAsset refuses any other).
      { method: 'GET', path: '/dashboard/chart.umd.min.js', handle: () => ({ status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=3600' }, body: dashboardAsset('chart.umd.min.js') }) },
    );
  }
  return routes;
}

/** Feedback's body: unlike the repository routes', an empty body is refused (it must name id and truth). */
function feedbackBody(request: V2Request): Record<string, unknown> {
  return readJsonBody(request, {
    empty: { refuse: 'feedback needs a JSON body {"id": "<x-request-id>", "truth": <ground truth>}' },
    notObject: 'feedback body must be a JSON object {"id", "truth"}',
  });
}
