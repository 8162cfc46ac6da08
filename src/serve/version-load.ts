// Loading one model version: its session, its checks against the version it replaces, its warmup, and the load
// event. ModelRepository (repository.ts) decides what loads and when; this is how.
import { stat } from 'node:fs/promises';
import type { TensorMetadata } from '../core/index.ts';
import { modelSourceOf } from '../formats/index.ts';
import type { ResolvedModelConfig } from '../layout/model-config.ts';
import { processingFor } from '../layout/processing-files.ts';
import type { ModelSource } from '../layout/repository.ts';
import type { SessionOptions } from '../runtime/backend.ts';
import { ServedModelVersion } from '../runtime/served-model.ts';
import { runPlanLog } from '../runtime/run-plan.ts';
import type { Logger } from '../node/logger.ts';
import type { RepositoryOptions } from './repository-types.ts';
import { warmUpModel } from './warmup.ts';

export type LoadOptions = RepositoryOptions & { logger: Logger; versions: () => string[] };

function signature(t: readonly TensorMetadata[]): string {
  return t.map((x) => `${x.name}:${x.datatype}:${x.shape.join(',')}`).join('|');
}

export async function loadVersion(src: ModelSource, config: ResolvedModelConfig, previous: ServedModelVersion | undefined, o: LoadOptions): Promise<ServedModelVersion> {
  const t0 = performance.now();
  let warmupMs = 0;
  const file = await modelSourceOf(src.path);
  const sessionOptions: SessionOptions = { ...o.sessionOptions };
  if (config.intraOpThreads !== undefined) sessionOptions.intraOpThreads = config.intraOpThreads;
  sessionOptions.owner = { model: src.name, version: src.version };
  const model = await ServedModelVersion.load(file.source, {
    name: src.name,
    version: src.version,
    // Isolated: every session in a child process, none on this thread.
    backend: config.isolation === 'process' && o.isolatedBackend ? o.isolatedBackend : o.backend,
    sessionOptions,
    versions: o.versions,
    instanceCount: config.instanceCount,
    batching: config.batching,
    batchingAuto: config.batchingAuto,
    runOn: config.runOn,
    mainThreadBackend: config.isolation === 'process' ? undefined : o.mainThreadBackend,
    loneSession: o.loneSessions,
    cpuBudget: o.cpuBudget,
    modelBytes: typeof file.source === 'string' ? (await stat(src.path)).size : file.source.byteLength,
    residentBytes: () => process.memoryUsage.rss(),
    maxQueueSize: config.maxQueueSize,
    timeoutMs: config.requestTimeoutMs,
    inputs: config.inputs,
    observer: o.observer,
    versionPolicy: config.versionPolicy,
    processing: await processingFor(src.modelDir, config.processing),
  });
  try {
    if (previous) {
      // Clients of a version rely on its interface; a different one belongs in a new version folder.
      const was = previous.metadata();
      const now = model.metadata();
      if (signature(was.inputs) !== signature(now.inputs) || signature(was.outputs) !== signature(now.outputs)) {
        throw new Error(
          `the new file changes the inputs or outputs of version ${src.version} (${signature(was.inputs)} → ${signature(now.inputs)}); publish it as a new version folder instead`,
        );
      }
    }
    if (o.warmUp !== false && config.warmup !== false) {
      const w0 = performance.now();
      const runs = await warmUpModel(model, config.warmup);
      warmupMs = performance.now() - w0;
      o.logger.info({ model: src.name, version: src.version, runs, ms: Math.round(warmupMs) }, runs ? 'model version warmed up' : 'model version not warmed up: a variable dimension beyond the batch has no size to guess');
    }
  } catch (e) {
    await model.dispose().catch(() => {});
    throw e;
  }
  const ms = performance.now() - t0;
  const notes = [...file.notes];
  if (model.batchingNote) notes.push(model.batchingNote);
  o.logger.info(
    {
      model: src.name,
      version: src.version,
      path: src.path,
      ms: Math.round(ms),
      instances: model.instances,
      batching: model.batching ?? null,
      run: runPlanLog(model.plan),
    },
    previous ? 'model version reloaded' : 'model version loaded',
  );
  o.onLoad?.({ name: src.name, version: src.version, path: src.path, modelDir: src.modelDir, config, ms, warmupMs, notes, memoryBytes: model.plan.memoryBytes });
  return model;
}
