// Routes beyond the core protocol, mounted through createV2App's `routes`: Triton's model repository and statistics
// extensions, and Prometheus /metrics.
import { InferenceError, jsonResponse, type ExtraRoute, type V2Request } from '../core/index.ts';
import type { ModelStatisticsJson } from '../core/statistics.ts';
import type { ServerMetrics } from './metrics.ts';
import { parseConfigOverride } from './config-override.ts';
import type { ModelRepository } from './repository.ts';

const SEGMENT = '([^/]+)';

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new InferenceError('NOT_FOUND', `malformed path segment '${s}'`);
  }
}

/** Mutating routes take JSON only: a form or text/plain body is what a cross-site page can send without a preflight. */
function jsonBody(request: V2Request): Record<string, unknown> {
  const type = request.headers['content-type']?.split(';')[0].trim().toLowerCase();
  if (type !== undefined && type !== 'application/json' && !type.endsWith('+json')) {
    throw new InferenceError('UNSUPPORTED_MEDIA_TYPE', `Content-Type '${type}' is not accepted here: send a JSON body with 'Content-Type: application/json' (or no body)`);
  }
  const body = request.body;
  if (!body || body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch (e) {
    throw new InferenceError('INVALID_JSON', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InferenceError('INVALID_REQUEST', 'request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** Statistics for every serving version, or one model, or one version (Triton's statistics extension). */
export function modelStatistics(repository: ModelRepository, name?: string, version?: string): { model_stats: ModelStatisticsJson[] } {
  if (name === undefined) return { model_stats: repository.endpoints().map((m) => m.statistics.toJSON()) };
  if (version !== undefined) return { model_stats: [repository.resolveModel(name, version).statistics.toJSON()] };
  repository.resolveModel(name); // throws MODEL_NOT_FOUND / MODEL_NOT_READY
  return { model_stats: repository.versionsOf(name).map((v) => repository.resolveModel(name, v).statistics.toJSON()) };
}

/** Where load/unload and statistics are carried out: this process alone, or every worker of `dais serve --workers N`. */
export interface RouteActions {
  /** `config`: a load's config override, the JSON text Triton's load API carries (config-override.ts). */
  loadOrUnload(op: 'load' | 'unload', name: string, config?: string): Promise<void>;
  statistics(name?: string, version?: string): Promise<{ model_stats: ModelStatisticsJson[] }>;
  metricsText?(): Promise<string>;
}

export function localActions(repository: ModelRepository): RouteActions {
  return {
    async loadOrUnload(op, name, config) {
      if (op === 'load') await repository.loadModel(name, config === undefined ? undefined : parseConfigOverride(config, name));
      else await repository.unloadModel(name);
    },
    async statistics(name, version) {
      return modelStatistics(repository, name, version);
    },
  };
}

/** Repository control is off unless the server was started with `--model-control explicit` (as Triton's default). */
export function checkModelControl(enabled: boolean): void {
  if (!enabled) {
    throw new InferenceError('MODEL_CONTROL_DISABLED', 'repository control (index, load, unload) is off on this server: start it with --model-control explicit to allow it');
  }
}

export function repositoryRoutes(repository: ModelRepository, actions: RouteActions = localActions(repository), modelControl = true): ExtraRoute[] {
  return [
    {
      method: 'POST',
      pattern: /^\/v2\/repository\/index\/?$/,
      handle(request) {
        checkModelControl(modelControl);
        const body = jsonBody(request);
        if (body.ready !== undefined && typeof body.ready !== 'boolean') throw new InferenceError('INVALID_REQUEST', '"ready" must be true or false');
        return jsonResponse(200, repository.index(body.ready === true));
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/v2/repository/models/${SEGMENT}/(load|unload)/?$`),
      async handle(request, m) {
        checkModelControl(modelControl);
        const name = decode(m[1]);
        const body = jsonBody(request);
        const params = body.parameters;
        if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
          throw new InferenceError('INVALID_REQUEST', '"parameters" must be an object');
        }
        const keys = Object.keys((params as object) ?? {});
        const unsupported = keys.filter((k) => k.startsWith('file:'));
        if (unsupported.length) {
          throw new InferenceError('UNSUPPORTED', `load parameters ${unsupported.map((k) => `'${k}'`).join(', ')} are not supported: put the model file in the repository folder, then load it by name`);
        }
        const op = m[2] as 'load' | 'unload';
        const config = (params as Record<string, unknown> | undefined)?.config;
        if (config !== undefined && op === 'unload') throw new InferenceError('INVALID_REQUEST', "unload takes no 'config' parameter");
        if (config !== undefined) parseConfigOverride(config, name); // refused here, before any worker is asked
        await actions.loadOrUnload(op, name, config as string | undefined);
        return jsonResponse(200, {});
      },
    },
  ];
}

export function statisticsRoutes(repository: ModelRepository, actions: RouteActions = localActions(repository)): ExtraRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/v2\/models\/stats\/?$/,
      handle: async () => jsonResponse(200, await actions.statistics()),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/v2/models/${SEGMENT}(?:/versions/${SEGMENT})?/stats/?$`),
      handle: async (_request, m) => jsonResponse(200, await actions.statistics(decode(m[1]), m[2] === undefined ? undefined : decode(m[2]))),
    },
  ];
}

export function metricsRoutes(metrics: ServerMetrics, text: () => Promise<string> = () => metrics.text()): ExtraRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/metrics\/?$/,
      async handle() {
        return { status: 200, headers: { 'content-type': metrics.contentType }, body: await text() };
      },
    },
  ];
}
