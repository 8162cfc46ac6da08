import { availableParallelism } from 'node:os';
import { CliError, flags, intFlag, parseFlags, type Command } from './command.ts';
import { OBSERVE_FLAGS, OBSERVE_HELP, observersFromFlags } from '../serve/observe-flags.ts';
import { clusterPrimaryMonitor, clusterWorkerMonitor, MONITOR_FLAGS, MONITOR_HELP, monitorFromFlags } from '../monitor/serve-flags.ts';
import { RUN_ON, type RunOn } from '../runtime/run-plan.ts';

const help = `Usage: dais serve <model.onnx | model.h5 | repository-dir> [options]

Serves models over the Open Inference Protocol (v2), REST and optionally gRPC, as KServe and Triton speak it.
A repository folder is laid out as <repo>/<model>/<version>/model.onnx, with an optional
<repo>/<model>/config.json (or config.yaml); a single file is served as model '<file name>' version 1.

Options:
  --port <n>                  HTTP port (default: $PORT or 8080; 0 picks a free port)
  --host <addr>               address to listen on (default: 127.0.0.1; 0.0.0.0 accepts remote clients)
  --workers <n|auto>          server processes sharing the ports (node:cluster), each with its own model
                              sessions (default: 1; auto = os.availableParallelism(), which ignores a
                              container's CPU limit: give N there). More workers parse and encode requests
                              on more cores; /metrics, statistics, load/unload and monitoring cover
                              all of them (the primary keeps the one monitor).
  --grpc-port <n>             also serve gRPC (inference.GRPCInferenceService) on this port (0 = a free port)
  --max-body-mb <n>           largest request body / gRPC message, in MiB (default: 64); larger → 413
  --max-inflight-mb <n>       request and response bytes held across HTTP connections, in MiB (default: an
                              eighth of --max-body-mb, at least 8); past it no new request is read until answers
                              drain, and a client that reads none of its answers is disconnected once others wait
  --auth-token <token>        require 'Authorization: Bearer <token>' on everything but /v2/health/* (REST)
                              and ServerLive/ServerReady/ModelReady (gRPC); default: $DAIS_AUTH_TOKEN, else open
  --model-control <mode>      none (default): repository index/load/unload are refused (MODEL_CONTROL_DISABLED);
                              explicit: allowed, as Triton's --model-control-mode
  --allowed-hosts <list>      comma-separated host names to answer besides localhost, 127.0.0.1 and [::1] when
                              listening on loopback (DNS-rebinding guard), and cross-site Origins to accept

 Defaults for models whose config file does not say:
  --max-batch-size <n>        dynamic batching: most rows per run (default: auto — on, no added delay, up to
                              64 rows, fewer for models whose batch-1 run is slow; 0 or 1 = off). Only for
                              models whose dimension 0 is variable on every input and output.
  --max-queue-delay-ms <ms>   how long a request may wait for others to join its batch (default: 0)
  --preferred-batch-size <l>  comma-separated batch sizes to send as soon as they form (e.g. 16,32)
  --instances <n>             model instances (sessions on their own threads) per version (default: 1)
  --threads <n>               onnxruntime intra-op threads per instance (default: auto — the cores split
                              between workers and instances, never more; 0 = onnxruntime's choice)
  --run-on <auto|main|worker> where runs compute (default: auto — the thread that reads requests when a batch-1
                              run, measured at load, is shorter than a hand-off to a worker thread, else a worker
                              thread per instance; a worker model that batches, with a short run, also answers
                              lone requests on the reading thread with a second session). Each model's choice
                              shows in /v2/models/{m}/config (parameters) and in its 'model version loaded' log
                              line; worker keeps every run off the reading thread.
  --max-queue-size <n>        requests that may wait per model version; beyond → 503 + Retry-After (default: 1024)
  --request-timeout-ms <ms>   queue + run time before a request fails with 504 (default: 30000; 0 = none)
  --isolation <none|process>  process (or \`isolation: process\` in a model's config): each model instance runs in
                              a child process, so a native crash in a run (onnxruntime aborting on an input it
                              cannot handle) fails only the requests in that process (503 MODEL_PROCESS_EXITED)
                              and the process is restarted with a backoff (model not ready meanwhile;
                              dais_model_process_events_total); the server and other models keep serving.
                              Costs, measured: tensors cross a pipe (+0.5–0.8 ms CPU per request on the MLP and
                              MobileNetV2) and each instance is its own process with its own onnxruntime
                              (+53–62 MiB RSS); docs/architecture.md §7. Default: none

 Many models, bounded memory, warm starts (KServe):
  --memory-budget <MiB>       load models on their first request; unload the least recently used (after their
                              in-flight requests) to keep loaded models within this budget; each model's memory
                              is measured at load (GET /v2/memory, dais_memory_budget_model_bytes)
  --load-timeout-ms <ms>      --memory-budget: longest a request waits for its model to load (default: 60000)
  --model_name <name>         the name of the one model the path holds (KServe passes --model_name={{.Name}});
                              a repository of several models keeps its folder names
  --no-warmup                 serve without warmup requests (by default each version runs its config's
                              "warmup", or zeros at batch 1 twice, before it counts as ready)

 Reloading and lifecycle:
  --watch                     reload on file-system events: new version folders, changed model or config files
  --poll-interval-ms <ms>     rescan the repository this often (default: off); works where file events do not
  --drain-timeout-s <s>       on SIGTERM/SIGINT, longest wait for in-flight requests (default: 30)
  --drain-grace-ms <ms>       after the signal, keep accepting this long (readiness already false) so requests on
                              their way are served, not reset; then stop accepting (default: 1000)
  --log-level <level>         JSON logs on stderr: fatal, error, warn, info, debug (one line per request), silent
                              (default: info)
  --json                      print the listening addresses and models as one JSON line on stdout once ready
  -h, --help                  show this help

${MONITOR_HELP}
${OBSERVE_HELP}
Model config (config.json or config.yaml beside the version folders; unknown keys are refused):
  { "dynamic_batching": { "max_batch_size": 32, "max_queue_delay_ms": 2, "preferred_batch_size": [16, 32] },
    "version_policy": { "latest": 1 },          (or { "all": true }, or { "specific": [1, 3] }; default all)
    "instance_count": 2, "intra_op_threads": 1, "run_on": "worker", "max_queue_size": 256, "request_timeout_ms": 10000,
    "inputs": [ { "name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8] } ],
    "traffic": { "1": 90, "2": 10 }, "shadow": "3" }   (canary split of requests naming no version; a shadow
                                                  version gets a copy of each, its outputs logged, never returned)

Endpoints: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/{m}[/versions/{v}][/ready],
/v2/models[/{m}[/versions/{v}]]/stats, /metrics (Prometheus); POST /v2/models/{m}[/versions/{v}]/infer
(JSON, or binary tensors with Inference-Header-Content-Length), /v2/repository/index,
/v2/repository/models/{m}/load, /v2/repository/models/{m}/unload. Every response carries x-request-id.
Monitoring: GET /v2/models/{m}[/versions/{v}]/drift (DriftReport), /v2/monitor/series, /dashboard;
POST /v2/models/{m}/feedback {"id": "<x-request-id>", "truth": <label or value>} (live accuracy / MAE);
POST /v2/monitor/events (CloudEvents from KServe's logger or another dais's --log-url, paired by ce-id).
On SIGTERM or SIGINT: readiness turns false at once, the listeners close after --drain-grace-ms, in-flight
requests finish, and the process exits 0 (1 if --drain-timeout-s cut requests off).
`;

function listFlag(name: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (!parts.length || nums.some((n) => !Number.isInteger(n) || n < 1)) throw new CliError(`--${name} must be a comma-separated list of whole numbers ≥ 1, got '${value}'`);
  return nums;
}

export const command: Command = {
  name: 'serve',
  summary: 'Serve a model or a model repository over the Open Inference Protocol (v2)',
  help,
  async run(argv) {
    const { values, positionals } = parseFlags('serve', argv, { ...flags({ string: ['port', 'host', 'grpc-port', 'workers', 'max-body-mb', 'max-inflight-mb', 'isolation', 'auth-token', 'model-control', 'allowed-hosts', 'max-batch-size', 'max-queue-delay-ms', 'preferred-batch-size', 'instances', 'threads', 'run-on', 'max-queue-size', 'request-timeout-ms', 'poll-interval-ms', 'drain-timeout-s', 'drain-grace-ms', 'log-level', 'memory-budget', 'load-timeout-ms', 'model_name'], boolean: ['watch', 'no-warmup', 'json'] }), ...MONITOR_FLAGS, ...OBSERVE_FLAGS });
    if (positionals.length !== 1) throw new CliError('give exactly one model file or repository folder (see dais serve --help)');
    const port = intFlag('port', values.port ?? process.env.PORT, 8080, 0, 65535);
    const grpcPort = values['grpc-port'] === undefined ? undefined : intFlag('grpc-port', values['grpc-port'], 0, 0, 65535);
    const maxBodyMb = intFlag('max-body-mb', values['max-body-mb'], 64, 1, 4096);
    const maxInflightMb = values['max-inflight-mb'] === undefined ? undefined : intFlag('max-inflight-mb', values['max-inflight-mb'], 0, 1, 65536);
    const maxBatchSize = intFlag('max-batch-size', values['max-batch-size'], 0, 0, 1 << 20);
    const runOn = values['run-on'] ?? 'auto';
    if (!(RUN_ON as readonly string[]).includes(runOn)) throw new CliError(`--run-on must be one of ${RUN_ON.join(', ')}, got '${runOn}'`);
    const maxQueueDelayMs = intFlag('max-queue-delay-ms', values['max-queue-delay-ms'], 0, 0, 60_000);
    const preferred = listFlag('preferred-batch-size', values['preferred-batch-size']);
    if (preferred && maxBatchSize && preferred.some((p) => p > maxBatchSize)) throw new CliError('--preferred-batch-size values must not exceed --max-batch-size');
    if ((preferred || values['max-queue-delay-ms'] !== undefined) && !maxBatchSize) throw new CliError('--max-queue-delay-ms and --preferred-batch-size need --max-batch-size (batching is off without it)');
    const instances = intFlag('instances', values.instances, 1, 1, 256);
    const threads = values.threads === undefined ? undefined : intFlag('threads', values.threads, 0, 0, 256);
    const maxQueueSize = intFlag('max-queue-size', values['max-queue-size'], 1024, 0, 1_000_000);
    const requestTimeoutMs = intFlag('request-timeout-ms', values['request-timeout-ms'], 30_000, 0, 3_600_000);
    const pollIntervalMs = intFlag('poll-interval-ms', values['poll-interval-ms'], 0, 0, 86_400_000);
    const drainTimeoutS = intFlag('drain-timeout-s', values['drain-timeout-s'], 30, 0, 3600);
    const drainGraceMs = intFlag('drain-grace-ms', values['drain-grace-ms'], 1000, 0, 600_000);
    const memoryBudgetMb = values['memory-budget'] === undefined ? undefined : intFlag('memory-budget', values['memory-budget'], 0, 1, 16 << 20);
    const loadTimeoutMs = intFlag('load-timeout-ms', values['load-timeout-ms'], 60_000, 1, 3_600_000);
    if (values['load-timeout-ms'] !== undefined && memoryBudgetMb === undefined) throw new CliError('--load-timeout-ms bounds loads on demand: add --memory-budget <MB>');
    if (values.model_name !== undefined && !/^[A-Za-z0-9_.-]{1,128}$/.test(values.model_name)) throw new CliError(`--model_name must be 1 to 128 letters, digits, '_', '.' or '-', got '${values.model_name}'`);
    const authToken = values['auth-token'] ?? process.env.DAIS_AUTH_TOKEN ?? undefined;
    if (authToken !== undefined && authToken.length === 0) throw new CliError('--auth-token (or DAIS_AUTH_TOKEN) is empty: give a token, or leave it unset for an open server');
    const isolation = values.isolation ?? 'none';
    if (isolation !== 'none' && isolation !== 'process') throw new CliError(`--isolation must be 'none' or 'process', got '${isolation}'`);
    if (isolation === 'process' && values['run-on'] === 'main') throw new CliError('--isolation process runs every model in a child process: it cannot be combined with --run-on main');
    const modelControl = values['model-control'] ?? 'none';
    if (modelControl !== 'none' && modelControl !== 'explicit') throw new CliError(`--model-control must be 'none' or 'explicit', got '${modelControl}'`);
    const allowedHosts = values['allowed-hosts']?.split(',').map((h) => h.trim()).filter(Boolean);
    const { LOG_LEVELS, createLogger } = await import('../node/logger.ts');
    const level = values['log-level'] ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`);
    // Each worker of --workers N says which it is on every line (1…N; a replacement gets the next number).
    const workerId = Number(process.env.DAIS_CLUSTER_WORKER) || undefined;
    const logger = createLogger(level as (typeof LOG_LEVELS)[number], undefined, workerId ? { worker: workerId } : {});
    const workers = workerCount(values.workers);
    const cluster = workers > 1 ? await import('../serve/cluster.ts') : undefined;
    // The log line and --json line that say the server is up (from the primary under --workers N).
    const announce = (info: { url: string; port: number; grpcPort: number | null; models: unknown }, count: number, grpc: string | null) => {
      logger.info({ url: info.url, grpc, models: info.models, workers: count, auth: Boolean(authToken) }, 'dais serving');
      if (values.json) process.stdout.write(JSON.stringify({ url: info.url, port: info.port, grpcPort: info.grpcPort, models: info.models, workers: count }) + '\n');
    };
    if (cluster && !cluster.isClusterWorker()) {
      // The primary loads no model: it starts the workers (each re-runs this command line) and waits for them. It
      // keeps the monitor, which the workers feed.
      let primaryMonitor;
      try {
        primaryMonitor = await clusterPrimaryMonitor(values, logger);
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      const code = await cluster.runPrimary({
        workers,
        logger,
        drainTimeoutMs: (drainTimeoutS + 15) * 1000 + drainGraceMs,
        onReady: (info) => announce(info, workers, info.grpcPort === null ? null : info.url.replace(/:\d+$/, `:${info.grpcPort}`)),
        extraMetrics: primaryMonitor?.extraMetrics,
      });
      await primaryMonitor?.close();
      return code;
    }
    let monitor;
    let observe;
    try {
      monitor = cluster ? await clusterWorkerMonitor(values) : await monitorFromFlags(values, logger);
      observe = await observersFromFlags(values, process.env, logger);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    const { serve } = await import('../serve/index.ts');
    let running;
    try {
      running = await serve({
        model: positionals[0],
        host: values.host ?? '127.0.0.1',
        port,
        grpcPort,
        maxBodyBytes: maxBodyMb * 1024 * 1024,
        maxInflightBytes: maxInflightMb === undefined ? undefined : maxInflightMb * 1024 * 1024,
        authToken,
        modelControl,
        allowedHosts,
        logger,
        defaults: {
          // No flag: undefined, the automatic batching (model-config.ts AUTO_BATCHING); 0 or 1: off.
          batching:
            values['max-batch-size'] === undefined ? undefined : maxBatchSize > 1 ? { maxBatchSize, maxQueueDelayMs, ...(preferred ? { preferredBatchSizes: preferred } : {}) } : false,
          runOn: runOn as RunOn,
          isolation,
          instanceCount: instances,
          intraOpThreads: threads,
          maxQueueSize,
          requestTimeoutMs,
        },
        watch: values.watch || pollIntervalMs ? { fsEvents: values.watch, pollIntervalMs } : undefined,
        monitor,
        observers: observe.observers,
        clusterWorker: Boolean(cluster),
        modelName: values.model_name,
        warmUp: !values['no-warmup'],
        memoryBudget: memoryBudgetMb === undefined ? undefined : { bytes: memoryBudgetMb * 1024 * 1024, loadTimeoutMs },
        onLoad: (e) => {
          for (const n of e.notes) logger.warn({ model: e.name, version: e.version, note: n }, 'model note');
        },
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') throw new CliError(`port ${port} is already in use: pick another with --port`);
      if (/No address added|EADDRINUSE/.test(err.message)) throw new CliError(`gRPC port ${grpcPort} is already in use: pick another with --grpc-port`);
      throw new CliError((e as Error).message);
    }
    observe.listening(running.url);
    const models = running.repository.names().map((n) => ({ name: n, versions: running.repository.versionsOf(n) }));
    const info = { url: running.url, port: running.port, grpcPort: running.grpc?.port ?? null, models };
    if (running.cluster) {
      logger.info({ url: running.url, pid: process.pid }, 'worker serving');
      running.cluster.ready(info);
    } else announce(info, 1, running.grpc?.url ?? null);
    if (values.dashboard) logger.info({ url: `${running.url}/dashboard` }, 'monitoring dashboard');
    return await new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (signal: string, escalate = true) => {
        if (stopping && !escalate) return;
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting without waiting');
          process.exit(1);
        }
        stopping = true;
        logger.info({ signal, drainTimeoutS, drainGraceMs }, 'draining: readiness false; listeners close after the grace period; finishing in-flight requests');
        running.close({ timeoutMs: drainTimeoutS * 1000, graceMs: drainGraceMs }).then(
          (clean) => {
            if (clean) logger.info({}, 'stopped: every in-flight request finished');
            else logger.error({ drainTimeoutS }, 'stopped: the drain timeout cut off requests still in flight');
            // Anything a library left behind (timers, handles) must not keep a drained server alive.
            setTimeout(() => process.exit(clean ? 0 : 1), 2000).unref();
            resolve(clean ? 0 : 1);
          },
          (e: unknown) => {
            logger.error({ error: (e as Error).message }, 'shutdown failed');
            resolve(1);
          },
        );
      };
      if (running.cluster) {
        // A worker drains when the primary says so. Ctrl-C in a terminal also reaches every worker directly; the
        // primary's request that follows is then no second signal.
        running.cluster.onDrain((why) => stop(why, false));
        process.on('SIGTERM', () => stop('SIGTERM', false));
        process.on('SIGINT', () => stop('SIGINT', false));
        return;
      }
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
  },
};

/** --workers: a count, or auto (one per CPU this process may use). */
function workerCount(value: string | undefined): number {
  if (value === 'auto') return Math.min(256, availableParallelism());
  try {
    return intFlag('workers', value, 1, 1, 256);
  } catch {
    throw new CliError(`--workers must be an integer from 1 to 256 or 'auto', got '${value}'`);
  }
}
