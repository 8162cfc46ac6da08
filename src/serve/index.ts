// The library entry for serving: open a repository, build the v2 app over it (plus repository, statistics and
// metrics routes), listen on HTTP and optionally gRPC, and shut down gracefully.
import { createV2App, DAIS_VERSION, InferenceError, StartupClock, type ExtraRoute, type InferEvent, type ModelRegistry, type ServerMetadata, type V2Handler } from '../core/index.ts';
import type { Registry } from 'prom-client';
import { withBearerAuth } from '../core/auth.ts';
import { isLoopbackAddress, withSiteGuard } from '../core/site-guard.ts';
import type { Backend, SessionOptions } from '../runtime/backend.ts';
import { availableParallelism } from 'node:os';
import { onnxruntimeNode } from '../runtime/onnxruntime-node.ts';
import { onnxruntimeNodeWorker } from '../runtime/onnxruntime-node-worker.ts';
import { onnxruntimeNodeProcess } from '../runtime/onnxruntime-node-process.ts';
import { DEFAULT_MAX_BODY_BYTES, startHttpServer, type CloseOptions, type RunningHttpServer } from '../node/http-server.ts';
import { silentLogger, type Logger } from '../node/logger.ts';
import { ServerMetrics } from './metrics.ts';
import type { ServingDefaults } from '../layout/model-config.ts';
import { ModelRepository, type LoadEvent, type RepositoryOptions } from './repository.ts';
import { localActions, metricsRoutes, repositoryRoutes, statisticsRoutes } from './routes.ts';
import { processingRoutes } from './try-page.ts';
import type { WorkerLink } from './cluster.ts';
import { MemoryBudget } from './memory-budget.ts';
import { TrafficRouter, trafficFollower, type ShadowResult } from './traffic.ts';

import { serverMetadata } from '../core/version.ts';

export { SERVER_NAME, SERVER_EXTENSIONS as EXTENSIONS, serverMetadata } from '../core/version.ts';
export const SERVER_VERSION = DAIS_VERSION;

export interface ServeOptions {
  /** A model file or a model repository folder. */
  model: string;
  host?: string;
  port?: number;
  maxBodyBytes?: number;
  /** Request and response bytes held across HTTP connections before new requests wait (`--max-inflight-mb`). */
  maxInflightBytes?: number;
  /** Default: onnxruntime-node on one worker thread per model instance, so inference never blocks the event loop. */
  backend?: Backend;
  sessionOptions?: SessionOptions;
  onLoad?: RepositoryOptions['onLoad'];
  /** Batching, instances, threads, queue size and timeout for models whose config.json/yaml does not say. */
  defaults?: ServingDefaults;
  /** Also serve gRPC (inference.GRPCInferenceService) on this port; 0 picks a free one. */
  grpcPort?: number;
  /** Require `Authorization: Bearer <token>` on everything but the health endpoints (REST) and health RPCs (gRPC). */
  authToken?: string;
  logger?: Logger;
  /** Pick up new versions and changed files: poll every `pollIntervalMs`, and/or react to file-system events. */
  watch?: { pollIntervalMs?: number; fsEvents?: boolean };
  /**
   * 'explicit' allows repository control (POST /v2/repository/index, …/load, …/unload and their RPCs); 'none' (the
   * default, as Triton's) refuses them with MODEL_CONTROL_DISABLED, so an open port cannot unload models.
   */
  modelControl?: 'none' | 'explicit';
  /** Host names to answer besides loopback ones (loopback servers), and foreign Origins to accept (`--allowed-hosts`). */
  allowedHosts?: string[];
  /** Serve GET /metrics (default true). */
  metrics?: boolean;
  /** Run zeros through each model version before it serves (default true). */
  warmUp?: boolean;
  /** Drift, prediction log, feedback, shadow comparison (src/monitor's Monitor), plugged in through the app's hooks. */
  monitor?: ServeMonitor;
  /** Told of every completed infer after the monitor (tracing, payload logging); closed after the drain. */
  observers?: InferObserver[];
  /**
   * This process is one worker of `dais serve --workers N` (node:cluster): metrics, statistics and repository
   * load/unload then go through the primary to every worker. The link is on the running server.
   */
  clusterWorker?: boolean;
  /** KServe's --model_name: the name of the one model the path holds. */
  modelName?: string;
  /**
   * Load models on first request and unload the least recently used to keep loaded models within this many bytes
   * (src/serve/memory-budget.ts); `loadTimeoutMs` bounds a request's wait for its model's load.
   */
  memoryBudget?: { bytes: number; loadTimeoutMs?: number };
}

/** Something told of each completed infer, off the response's path (it must only queue work), and closed last. */
export interface InferObserver {
  onInfer(event: InferEvent): void;
  close?(): Promise<void>;
}

/** What a monitor plugs in: told of each version loaded, attached once the repository is open, closed after the drain. */
export interface ServeMonitor {
  onLoad?(event: LoadEvent): void;
  attach(server: { repository: ModelRepository; registry?: Registry; logger: Logger }): { routes?: ExtraRoute[]; onInfer?: (event: InferEvent) => void; onShadow?: (result: ShadowResult) => void };
  /** Called after in-flight requests finished: writes what it holds (the prediction log) before the process ends. */
  close(): Promise<void>;
}

export interface RunningServer extends RunningHttpServer {
  repository: ModelRepository;
  metrics?: ServerMetrics;
  grpc?: { port: number; url: string };
  /** Under `clusterWorker`: tells the primary when this worker serves, and when to drain. */
  cluster?: WorkerLink;
  /** The app the HTTP server answers with (auth and Host/Origin checks included), to mount it in another server. */
  handler: V2Handler;
  /**
   * Readiness false, stop accepting (after `graceMs`), finish in-flight requests (up to `timeoutMs`), release the
   * models. True when nothing was cut off.
   */
  close(options?: CloseOptions): Promise<boolean>;
}

/** onnxruntime-node in child processes, whose deaths and restarts are logged and counted in /metrics. */
function isolatedBackend(logger: Logger, metrics: ServerMetrics | undefined): Backend {
  return onnxruntimeNodeProcess({
    exited: (e) => {
      logger.error(e, 'a model process exited: its pending requests failed (MODEL_PROCESS_EXITED); restarting it');
      metrics?.modelProcess('exit', e.model, e.version);
    },
    restarted: (e) => {
      if (e.error) logger.error(e, 'a model process failed to start again; trying later');
      else logger.info(e, 'model process restarted');
      metrics?.modelProcess(e.error ? 'restart_failure' : 'restart', e.model, e.version);
    },
  });
}

export async function serve(options: ServeOptions): Promise<RunningServer> {
  const logger = options.logger ?? silentLogger;
  const clock = new StartupClock();
  const metrics = options.metrics === false ? undefined : new ServerMetrics();
  const early = options.clusterWorker ? undefined : await listenWhileLoading(options, metrics, logger);
  // Canary/shadow routing is serving, with or without a monitor: the split follows each model's config file.
  // (It resolves through the repository once that is open; configs read while loading are applied as they come.)
  const router = new TrafficRouter({ isReady: () => repository.isReady(), resolve: (n, v) => repository.resolve(n, v) }, undefined, (model, message) => logger.warn({ model }, message));
  const traffic = trafficFollower((m, c) => router.configure(m, c));
  const repository = await ModelRepository.open(options.model, {
    backend: options.backend ?? onnxruntimeNodeWorker,
    // With the default backend, models too small to be worth a thread hand-off run on this thread (run-plan.ts).
    mainThreadBackend: options.backend ? undefined : onnxruntimeNode,
    // Models with `isolation: process` (config file or --isolation): a native crash costs only that model's runs.
    isolatedBackend: options.backend ? undefined : isolatedBackend(logger, metrics),
    // Under --workers N the cores are shared by N processes: intra-op threads × instances × workers ≤ cores.
    cpuBudget: Math.max(1, Math.floor(availableParallelism() / (options.clusterWorker ? Number(process.env.DAIS_CLUSTER_WORKERS) || 1 : 1))),
    sessionOptions: options.sessionOptions,
    defaults: options.defaults,
    logger,
    observer: metrics?.observer(),
    warmUp: options.warmUp,
    modelName: options.modelName,
    lazy: options.memoryBudget !== undefined,
    // A second session (the model's memory twice) is not what a memory budget estimates a load by.
    loneSessions: options.memoryBudget === undefined,
    onLoad: (e) => {
      clock.addWarmup(e.warmupMs);
      metrics?.modelLoaded(e);
      traffic.onLoad(e);
      options.monitor?.onLoad?.(e);
      options.onLoad?.(e);
    },
    onLoadError: (e) => metrics?.modelLoadFailed(e.name),
  }).catch(async (e: unknown) => {
    await early?.http.close({ timeoutMs: 0 });
    throw e;
  });
  clock.loaded();
  metrics?.trackQueues(() => repository.endpoints());
  let http: RunningHttpServer | undefined = early?.http;
  let grpc: { port: number; url: string; close(o: CloseOptions): Promise<boolean> } | undefined;
  let link: WorkerLink | undefined;
  let handler: V2Handler | undefined;
  try {
    if (options.clusterWorker) link = (await import('./cluster.ts')).connectWorker(localActions(repository), metrics?.registry);
    const actions = link?.actions ?? localActions(repository);
    const metricsText = link?.actions.metricsText;
    const modelControl = options.modelControl === 'explicit';
    const routes = [...repositoryRoutes(repository, actions, modelControl), ...statisticsRoutes(repository, actions), ...(metrics ? metricsRoutes(metrics, metricsText) : [])];
    const monitor = options.monitor?.attach({ repository, registry: metrics?.registry, logger });
    router.onShadow = monitor?.onShadow;
    routes.push(...(monitor?.routes ?? []));
    await traffic.ready();
    let registry: ModelRegistry = router;
    if (options.memoryBudget) {
      const budget = await MemoryBudget.create(repository, { budgetBytes: options.memoryBudget.bytes, loadTimeoutMs: options.memoryBudget.loadTimeoutMs, logger, registry: metrics?.registry });
      registry = budget.wrap(registry);
      routes.push(...budget.routes());
    }
    routes.push(...processingRoutes(registry, () => repository.index(true).map((e) => e.name)));
    const onInfer = inferObservers([...(metrics ? [metrics.stageObserver()] : []), ...(monitor?.onInfer ? [{ onInfer: monitor.onInfer }] : []), ...(options.observers ?? [])], logger);
    handler = createV2App({ registry, server: serverMetadata(), routes, onInfer, jsonBytes: true });
    if (options.authToken) handler = withBearerAuth(handler, options.authToken);
    handler = withSiteGuard(handler, { loopback: isLoopbackAddress(options.host ?? '127.0.0.1'), allowedHosts: options.allowedHosts });
    if (early) early.serve(handler);
    else http = await startHttpServer({ handler, host: options.host, port: options.port, maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, maxInflightBytes: options.maxInflightBytes, logger });
    if (options.grpcPort !== undefined) {
      const { startGrpcServer } = await import('./grpc/server.ts');
      grpc = await startGrpcServer({ repository, registry, onInfer, server: serverMetadata(), host: options.host, port: options.grpcPort, authToken: options.authToken, logger, maxMessageBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, actions, modelControl });
    }
  } catch (e) {
    await http?.close({ timeoutMs: 0 });
    await options.monitor?.close();
    await Promise.all((options.observers ?? []).map((o) => o.close?.()));
    await repository.close();
    throw e;
  }
  if (options.watch) repository.watch(options.watch);
  const startup = clock.ready();
  metrics?.startup(startup);
  logger.info({ phases: startup }, 'startup phases (seconds): ready');
  const httpServer = http!;
  const app = handler!;
  let closing: Promise<boolean> | undefined;
  return {
    ...httpServer,
    repository,
    metrics,
    grpc: grpc ? { port: grpc.port, url: grpc.url } : undefined,
    cluster: link,
    handler: app,
    close(closeOptions = {}) {
      closing ??= (async () => {
        repository.setDraining();
        const results = await Promise.all([httpServer.close(closeOptions), grpc?.close(closeOptions) ?? true]);
        await options.monitor?.close();
        await Promise.all((options.observers ?? []).map((o) => o.close?.()));
        await repository.close();
        return results.every(Boolean);
      })();
      return closing;
    },
  };
}

/** One onInfer for several observers; one that throws is logged and does not stop the others (or the request). */
function inferObservers(observers: InferObserver[], logger: Logger): ((e: InferEvent) => void) | undefined {
  if (observers.length === 0) return undefined;
  return (e) => {
    for (const o of observers) {
      try {
        o.onInfer(e);
      } catch (err) {
        logger.warn({ model: e.model, requestId: e.requestId, error: (err as Error).message }, 'an infer observer failed');
      }
    }
  };
}

/**
 * Listens before any model loads, so Kubernetes' liveness (and startup) probe sees a live process at once while
 * readiness and model ready stay 503 until every model is loaded and warmed: a pod is never sent traffic it cannot
 * answer, and a slow load is not mistaken for a hung process. Under --workers N a worker listens only once ready,
 * so the primary never hands a connection to a worker that is still loading while another could answer it.
 */
async function listenWhileLoading(options: ServeOptions, metrics: ServerMetrics | undefined, logger: Logger) {
  const loading: ModelRegistry = {
    isReady: () => false,
    resolve(name) {
      throw new InferenceError('MODEL_NOT_READY', `model '${name}' is not ready: the server is still loading and warming its models`);
    },
  };
  let current: V2Handler = createV2App({ registry: loading, server: serverMetadata(), routes: metrics ? metricsRoutes(metrics) : [] });
  if (options.authToken) current = withBearerAuth(current, options.authToken);
  // The same Host/Origin checks as once loaded: a browser page must not reach a loading server either.
  current = withSiteGuard(current, { loopback: isLoopbackAddress(options.host ?? '127.0.0.1'), allowedHosts: options.allowedHosts });
  const http = await startHttpServer({ handler: (r) => current(r), host: options.host, port: options.port, maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, maxInflightBytes: options.maxInflightBytes, logger });
  logger.info({ url: http.url }, 'listening: live now, ready once every model is loaded and warmed up');
  return {
    http,
    /** Puts the loaded server's handler in place: from here on readiness is the repository's. */
    serve(handler: V2Handler) {
      current = handler;
    },
  };
}

export { ModelRepository, type RepositoryIndexEntry } from './repository.ts';
export { scanRepository, type ModelSource } from '../layout/repository.ts';
export type { ServingDefaults } from '../layout/model-config.ts';
export { createLogger, type Logger } from '../node/logger.ts';
