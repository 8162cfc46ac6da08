// A model repository: a single model file, or a folder laid out as <repo>/<model>/<version>/model.onnx (Triton's
// layout) with an optional <repo>/<model>/config.(json|yaml). Which versions serve follows the version policy; the
// default version is the highest one serving.
//
// Reloads never interrupt serving: a new or changed version is loaded and warmed up beside the old one, then the
// map that `resolve` reads is replaced in one assignment; the old version finishes its in-flight requests before its
// sessions are released. A version that fails to load is refused with a logged error and whatever served before
// keeps serving.
import { stat } from 'node:fs/promises';
import { basename, join, resolve as resolvePath } from 'node:path';
import { InferenceError, type ModelEndpoint, type ModelRegistry } from '../core/index.ts';
import type { ServedModelVersion } from '../runtime/served-model.ts';
import type { ConfigOverride } from './config-override.ts';
import { silentLogger, type Logger } from '../node/logger.ts';
import { byVersion, foldersWithoutModel, scanRepository, type ModelSource } from '../layout/repository.ts';
import { loadVersion } from './version-load.ts';
import type { ModelState, RefreshReport, RepositoryIndexEntry, RepositoryOptions } from './repository-types.ts';
import { watchRepository, type WatchOptions } from './repository-watch.ts';
import { ConfigError, readModelConfig, resolveModelConfig, selectVersions, type ResolvedModelConfig } from '../layout/model-config.ts';

export type { LoadEvent, ModelState, RefreshReport, RepositoryIndexEntry, RepositoryOptions } from './repository-types.ts';

interface Served {
  model: ServedModelVersion;
  fingerprint: string;
  configText: string;
}

interface ModelEntry {
  name: string;
  /** What `resolve` reads: replaced, never mutated, so a swap is one assignment. */
  live: ReadonlyMap<string, Served>;
  /** Versions refused, with the file fingerprint that failed (not retried until the file changes). */
  failed: Map<string, { fingerprint: string; configText: string; reason: string }>;
  /** Last fingerprint seen per version, for the "stopped changing" check. */
  seen: Map<string, string>;
  /** Versions on disk at the last scan, for the index. */
  onDisk: string[];
  loading: Set<string>;
  unloaded: boolean;
  configError?: string;
}

/**
 * A client's MODEL_NOT_FOUND. It names no other model: an open port must not list what is on the disk (the
 * repository index, behind --model-control explicit, does that).
 */
function notFound(name: string): InferenceError {
  return new InferenceError('MODEL_NOT_FOUND', `model '${name}' is not in the repository`);
}

/** A load error as clients see it: the repository's absolute path becomes <repository>. */
function redact(message: string, root: string): string {
  for (const r of new Set([resolvePath(root), root])) if (r.length > 1) message = message.split(r).join('<repository>');
  return message;
}

async function fingerprintOf(path: string): Promise<string> {
  const s = await stat(path);
  return `${s.size}:${s.mtimeMs}:${s.ino}`;
}

export class ModelRepository implements ModelRegistry {
  private readonly entries = new Map<string, ModelEntry>();
  /** Config overrides given with Triton's load API, by model; a load without one clears it. */
  private readonly overrides = new Map<string, ConfigOverride>();
  /** Folders already logged as holding a config but no model file (logged once, not on every poll). */
  private readonly skippedFolders = new Set<string>();
  private draining = false;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly logger: Logger;
  private stopWatching: (() => void)[] = [];

  private constructor(
    readonly root: string,
    private readonly options: RepositoryOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
  }

  /** Loads everything the repository holds; any config error or model that fails to load stops the start. */
  static async open(path: string, options: RepositoryOptions): Promise<ModelRepository> {
    const repo = new ModelRepository(path, options);
    if (options.lazy) for (const s of await repo.scan()) repo.entryFor(s.name).unloaded = true;
    const report = await repo.refresh({ initial: true });
    if (report.failed.length) {
      await repo.close();
      const lines = report.failed.map((f) => (f.version ? `model '${f.name}' version ${f.version}: ${f.error}` : `model '${f.name}': ${f.error}`));
      throw new Error(lines.length === 1 ? lines[0] : `${lines.length} models failed to load:\n  - ${lines.join('\n  - ')}`);
    }
    return repo;
  }

  /**
   * Rescans the repository and brings what serves in line with it. Runs one at a time. `models` limits the scan to
   * those names and loads them even if they were unloaded (Triton's load API).
   */
  refresh(options: { initial?: boolean; models?: string[] } = {}): Promise<RefreshReport> {
    const run = this.chain.then(() => this.doRefresh(options));
    this.chain = run.catch(() => {});
    return run;
  }

  private async doRefresh(options: { initial?: boolean; models?: string[] }): Promise<RefreshReport> {
    const report: RefreshReport = { loaded: [], unloaded: [], failed: [], pending: 0 };
    if (this.closed) return report;
    const explicit = options.models !== undefined;
    const settle = !options.initial && !explicit;
    let sources: ModelSource[];
    try {
      sources = await this.scan();
    } catch (e) {
      if (options.initial) throw e;
      sources = [];
    }
    const byName = new Map<string, ModelSource[]>();
    for (const s of sources) {
      if (options.models && !options.models.includes(s.name)) continue;
      let list = byName.get(s.name);
      if (!list) byName.set(s.name, (list = []));
      list.push(s);
    }
    if (options.models) {
      for (const n of options.models) {
        if (!byName.has(n)) {
          throw notFound(n);
        }
      }
    }
    // One model after another: loading holds a model's file and its session's build-up memory at once, so the
    // peak while loading stays one model's worth above what is already loaded.
    for (const [name, list] of byName) await this.refreshModel(name, list, { settle, explicit }, report);
    // Models whose folder disappeared stop serving (only on a full scan).
    if (!options.models) {
      for (const [name, entry] of this.entries) {
        if (byName.has(name) || entry.live.size === 0) continue;
        entry.onDisk = [];
        this.retire(entry, [...entry.live.keys()], 'removed from the repository', report);
      }
    }
    return report;
  }

  /** The repository's sources, the one model renamed to --model_name when it holds one. */
  async scan(): Promise<ModelSource[]> {
    const sources = await scanRepository(this.root);
    for (const folder of await foldersWithoutModel(this.root, new Set(sources.map((s) => s.modelDir ? basename(s.modelDir) : s.name)))) {
      if (this.skippedFolders.has(folder)) continue;
      this.skippedFolders.add(folder);
      this.logger.info({ folder: join(this.root, folder) }, 'no model file in this folder (it has a config): skipped; its README says how to make or fetch the model');
    }
    const name = this.options.modelName;
    if (!name || new Set(sources.map((s) => s.name)).size !== 1) return sources;
    return sources.map((s) => ({ ...s, name }));
  }

  private entryFor(name: string): ModelEntry {
    let e = this.entries.get(name);
    if (!e) this.entries.set(name, (e = { name, live: new Map(), failed: new Map(), seen: new Map(), onDisk: [], loading: new Set(), unloaded: false }));
    return e;
  }

  private async refreshModel(name: string, sources: ModelSource[], how: { settle: boolean; explicit: boolean }, report: RefreshReport): Promise<void> {
    const entry = this.entryFor(name);
    entry.onDisk = sources.map((s) => s.version);
    if (how.explicit) entry.unloaded = false;
    if (entry.unloaded) return;
    let config: ResolvedModelConfig;
    let configText = '';
    try {
      const found = sources[0].modelDir ? await readModelConfig(sources[0].modelDir) : undefined;
      configText = found?.text ?? '';
      const override = this.overrides.get(name);
      config = resolveModelConfig({ ...found?.config, ...override?.config }, this.options.defaults);
      if (override) {
        configText += `\n${override.text}`;
        if (override.noBatching) config.batching = undefined;
      }
      entry.configError = undefined;
    } catch (e) {
      const msg = redact(e instanceof ConfigError ? e.message : `cannot read its config: ${(e as Error).message}`, this.root);
      if (entry.configError !== msg || how.explicit) {
        this.logger.error({ model: name, error: msg }, 'model config refused; the versions already serving keep serving');
        this.options.onLoadError?.({ name, error: msg });
        report.failed.push({ name, error: msg });
      }
      entry.configError = msg;
      return;
    }
    const wanted = selectVersions(
      sources.map((s) => s.version),
      config.versionPolicy,
    );
    const next = new Map(entry.live);
    for (const v of wanted) {
      const src = sources.find((s) => s.version === v)!;
      let fp: string;
      try {
        fp = await fingerprintOf(src.path);
      } catch {
        continue; // vanished between the scan and now; the next scan sees it
      }
      const current = entry.live.get(v);
      if (current && current.fingerprint === fp && current.configText === configText) continue;
      const failed = entry.failed.get(v);
      if (!how.explicit && failed && failed.fingerprint === fp && failed.configText === configText) continue;
      if (how.settle && entry.seen.get(v) !== fp) {
        // Seen changing: wait until a later scan finds it the same, so a half-copied file is never loaded.
        entry.seen.set(v, fp);
        report.pending++;
        continue;
      }
      entry.seen.set(v, fp);
      await this.loadVersion(src, config, current?.model).then(
          (model) => {
            next.set(v, { model, fingerprint: fp, configText });
            entry.failed.delete(v);
            report.loaded.push({ name, version: v });
          },
          (e: unknown) => {
            const reason = redact((e as Error).message, this.root);
            entry.failed.set(v, { fingerprint: fp, configText, reason });
            report.failed.push({ name, version: v, error: reason });
            this.options.onLoadError?.({ name, version: v, error: reason });
            this.logger.error(
              { model: name, version: v, path: src.path, error: reason },
              current ? 'new model file refused; the version already serving keeps serving' : 'model version refused',
            );
          },
        );
    }
    // A version outside the policy stops serving only once every version the policy wants is serving: a newer
    // version that is still being copied, or was refused, must not take the old one down with it.
    const onDisk = new Set(sources.map((s) => s.version));
    const complete = wanted.every((v) => next.has(v));
    const drop = [...next.keys()].filter((v) => !onDisk.has(v) || (complete && !wanted.includes(v)));
    const replaced = [...entry.live].filter(([v, s]) => next.get(v) !== undefined && next.get(v) !== s).map(([, s]) => s.model);
    if (this.closed) {
      for (const [v, s] of next) if (entry.live.get(v) !== s) await s.model.dispose();
      return;
    }
    for (const v of drop) next.delete(v);
    const before = entry.live;
    entry.live = next; // the swap: requests resolved from here on see the new map
    for (const m of replaced) void this.disposeLater(m);
    for (const v of drop) {
      const s = before.get(v);
      if (s) {
        report.unloaded.push({ name, version: v });
        this.logger.info({ model: name, version: v }, 'model version unloaded (no longer in the version policy or on disk)');
        void this.disposeLater(s.model);
      }
    }
  }

  private async loadVersion(src: ModelSource, config: ResolvedModelConfig, previous: ServedModelVersion | undefined): Promise<ServedModelVersion> {
    const entry = this.entryFor(src.name);
    entry.loading.add(src.version);
    try {
      return await loadVersion(src, config, previous, { ...this.options, logger: this.logger, versions: () => this.versionsOf(src.name) });
    } finally {
      entry.loading.delete(src.version);
    }
  }

  private async disposeLater(model: ServedModelVersion): Promise<void> {
    try {
      await model.dispose();
    } catch (e) {
      this.logger.warn({ model: model.name, version: model.version, error: (e as Error).message }, 'releasing an old model version failed');
    }
  }

  private retire(entry: ModelEntry, versions: string[], why: string, report?: RefreshReport): void {
    const before = entry.live;
    const next = new Map(before);
    for (const v of versions) next.delete(v);
    entry.live = next;
    for (const v of versions) {
      const s = before.get(v);
      if (!s) continue;
      report?.unloaded.push({ name: entry.name, version: v });
      this.logger.info({ model: entry.name, version: v }, `model version unloaded (${why})`);
      void this.disposeLater(s.model);
    }
  }

  /**
   * Triton's load: (re)loads one model from the repository, even one unloaded before; throws if it fails. With
   * `override` (config-override.ts), its fields go over the model's config file until a load without one.
   */
  async loadModel(name: string, override?: ConfigOverride): Promise<RefreshReport> {
    const before = this.overrides.get(name);
    if (override) this.overrides.set(name, override);
    else this.overrides.delete(name);
    const restore = () => {
      // A refused load changes nothing: later rescans use what served before.
      if (before) this.overrides.set(name, before);
      else this.overrides.delete(name);
    };
    let report: RefreshReport;
    try {
      report = await this.refresh({ models: [name] });
    } catch (e) {
      restore();
      throw e;
    }
    if (report.failed.length) {
      restore();
      const f = report.failed[0];
      throw new InferenceError('INVALID_REQUEST', `failed to load model '${name}'${f.version ? ` version ${f.version}` : ''}: ${f.error}`);
    }
    return report;
  }

  /** Triton's unload: stops serving every version of a model; in-flight requests finish first. */
  async unloadModel(name: string): Promise<void> {
    await this.chain;
    const entry = this.entries.get(name);
    if (!entry) throw notFound(name);
    entry.unloaded = true;
    const models = [...entry.live.values()].map((s) => s.model);
    this.retire(entry, [...entry.live.keys()], 'unload requested');
    await Promise.all(models.map((m) => m.drained()));
  }

  /** Triton's repository index: every model version on disk with its state. */
  index(readyOnly = false): RepositoryIndexEntry[] {
    const out: RepositoryIndexEntry[] = [];
    for (const name of [...this.entries.keys()].sort()) {
      const e = this.entries.get(name)!;
      const versions = [...new Set([...e.onDisk, ...e.live.keys()])].sort(byVersion);
      if (versions.length === 0) out.push({ name, state: 'UNAVAILABLE', reason: 'no model file on disk' });
      for (const v of versions) {
        let state: ModelState = 'UNAVAILABLE';
        let reason = '';
        if (e.live.has(v)) state = 'READY';
        else if (e.loading.has(v)) state = 'LOADING';
        else if (e.unloaded) reason = 'unloaded';
        else if (e.failed.has(v)) reason = e.failed.get(v)!.reason;
        else if (e.configError) reason = e.configError;
        else reason = 'not selected by the version policy';
        if (e.live.has(v) && e.failed.has(v)) reason = `a newer file was refused: ${e.failed.get(v)!.reason}`;
        out.push({ name, version: v, state, reason });
      }
    }
    return readyOnly ? out.filter((x) => x.state === 'READY') : out;
  }

  /**
   * Picks up changes by polling every `pollIntervalMs`, and/or at once on file-system events (`fsEvents`). A file is
   * loaded once two looks in a row find it unchanged, so copying a model in place is safe.
   */
  watch(options: WatchOptions): () => void {
    const stop = watchRepository({ root: this.root, logger: this.logger, isClosed: () => this.closed, refresh: () => this.refresh() }, options);
    this.stopWatching.push(stop);
    return stop;
  }

  versionsOf(name: string): string[] {
    return [...(this.entries.get(name)?.live.keys() ?? [])].sort(byVersion);
  }

  names(): string[] {
    return [...this.entries.values()]
      .filter((e) => e.live.size > 0)
      .map((e) => e.name)
      .sort();
  }

  /** Every serving version (statistics, metrics). */
  endpoints(): ServedModelVersion[] {
    const out: ServedModelVersion[] = [];
    for (const name of [...this.entries.keys()].sort()) {
      const e = this.entries.get(name)!;
      for (const v of this.versionsOf(name)) out.push(e.live.get(v)!.model);
    }
    return out;
  }

  isReady(): boolean {
    return !this.draining && this.names().length > 0;
  }

  setDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  resolve(name: string, version?: string): ModelEndpoint {
    return this.resolveModel(name, version);
  }

  /** As `resolve`, typed as the loaded model (statistics, instances). */
  resolveModel(name: string, version?: string): ServedModelVersion {
    const entry = this.entries.get(name);
    if (!entry || (entry.live.size === 0 && entry.onDisk.length === 0)) {
      throw notFound(name);
    }
    const live = entry.live;
    if (live.size === 0) {
      if (entry.unloaded) throw new InferenceError('MODEL_NOT_FOUND', `model '${name}' is unloaded; POST /v2/repository/models/${name}/load to load it`);
      throw new InferenceError('MODEL_NOT_READY', `model '${name}' has no version ready${entry.configError ? `: ${entry.configError}` : entry.failed.size ? `: ${[...entry.failed.values()][0].reason}` : ''}`);
    }
    if (version === undefined) {
      let best: string | undefined;
      for (const v of live.keys()) if (best === undefined || Number(v) > Number(best)) best = v;
      return live.get(best!)!.model;
    }
    const s = live.get(version);
    if (!s) throw new InferenceError('VERSION_NOT_FOUND', `model '${name}' has no version '${version}' serving; versions: ${this.versionsOf(name).join(', ')}`);
    return s.model;
  }

  /** Stops watching, lets in-flight requests finish and releases every session. */
  async close(): Promise<void> {
    this.closed = true;
    for (const stop of this.stopWatching.splice(0)) stop();
    await this.chain;
    const models: ServedModelVersion[] = [];
    for (const e of this.entries.values()) {
      for (const s of e.live.values()) models.push(s.model);
      e.live = new Map();
    }
    await Promise.all(models.map((m) => m.dispose().catch(() => {})));
  }
}
