// Routes beyond the core protocol, mounted through createV2App's `routes`: Triton's model repository and statistics
// extensions, and Prometheus /metrics.
import { InferenceError, jsonResponse, readJsonBody, type ExtraRoute } from '../core/index.ts';
import type { ModelStatisticsJson } from '../core/statistics.ts';
import type { ServerMetrics } from './metrics.ts';
import { parseConfigOverride } from './config-override.ts';
import type { ModelRepository } from './repository.ts';

/** Mutating routes take JSON only (readJsonBody's `jsonOnly`); no body is the same as `{}`. */
const MUTATION_BODY = { jsonOnly: true, empty: 'object' } as const;

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
      path: '/v2/repository/index[/]',
      handle(request) {
        checkModelControl(modelControl);
        const body = readJsonBody(request, MUTATION_BODY);
        if (body.ready !== undefined && typeof body.ready !== 'boolean') throw new InferenceError('INVALID_REQUEST', '"ready" must be true or false');
        return jsonResponse(200, repository.index(body.ready === true));
      },
    },
    ...(['load', 'unload'] as const).map((op): ExtraRoute => ({
      method: 'POST',
      path: `/v2/repository/models/:model/${op}[/]`,
      async handle(request, { model }) {
        checkModelControl(modelControl);
        const name = model!;
        const body = readJsonBody(request, MUTATION_BODY);
        const params = body.parameters;
        if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
          throw new InferenceError('INVALID_REQUEST', '"parameters" must be an object');
        }
        const keys = Object.keys((params as object) ?? {});
        const unsupported = keys.filter((k) => k.startsWith('file:'));
        if (unsupported.length) {
          throw new InferenceError('UNSUPPORTED', `load parameters ${unsupported.map((k) => `'${k}'`).join(', ')} are not supported: put the model file in the repository folder, then load it by name`);
        }
        const config = (params as Record<string, unknown> | undefined)?.config;
        if (config !== undefined && op === 'unload') throw new InferenceError('INVALID_REQUEST', "unload takes no 'config' parameter");
        if (config !== undefined) parseConfigOverride(config, name); // refused here, before any worker is asked
        await actions.loadOrUnload(op, name, config as string | undefined);
        return jsonResponse(200, {});
      },
    })),
  ];
}

export function statisticsRoutes(repository: ModelRepository, actions: RouteActions = localActions(repository)): ExtraRoute[] {
  return [
    {
      method: 'GET',
      path: '/v2/models/stats[/]',
      handle: async () => jsonResponse(200, await actions.statistics()),
    },
    {
      method: 'GET',
      path: '/v2/models/:model[/versions/:version]/stats[/]',
      handle: async (_request, { model, version }) => jsonResponse(200, await actions.statistics(model, version)),
    },
  ];
}

export function metricsRoutes(metrics: ServerMetrics, text: () => Promise<string> = () => metrics.text()): ExtraRoute[] {
  return [
    {
      method: 'GET',
      path: '/metrics[/]',
      async handle() {
        return { status: 200, headers: { 'content-type': metrics.contentType }, body: await text() };
      },
    },
  ];
}
