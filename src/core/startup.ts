// Startup phases: where the time to ready went, for a server, a container and a Lambda INIT alike. Times are read
// from the process's own clock (performance.now() counts from the process's start), so no phase is estimated.
// No node:* import: performance is a global wherever this runs; Node's boot time is read when it is there.

export const STARTUP_PHASES = ['process', 'imports', 'model_load', 'warmup', 'listen'] as const;
export type StartupPhase = (typeof STARTUP_PHASES)[number];

/** Seconds per phase, and `total`: from the process's start to ready. */
export type StartupReport = Record<StartupPhase, number> & { total: number };

/** Node's own boot (V8, bootstrap), in ms from the process's start; 0 where the runtime does not say. */
function runtimeBootMs(): number {
  const t = (performance as unknown as { nodeTiming?: { bootstrapComplete?: number } }).nodeTiming;
  return t?.bootstrapComplete && t.bootstrapComplete > 0 ? t.bootstrapComplete : 0;
}

/**
 * Marks taken in order: `begin` when the program starts its own work (modules imported), `loaded` once models
 * are loaded (their warmup included, given apart as `warmupMs`), `ready` once it answers. Each in ms from the
 * process's start (performance.now()).
 */
export class StartupClock {
  readonly begin = performance.now();
  private loadedAt?: number;
  private warmupMs = 0;

  addWarmup(ms: number): void {
    this.warmupMs += ms;
  }

  loaded(): void {
    this.loadedAt = performance.now();
  }

  /** The phases, once ready. Warmups of versions loaded in parallel may add up to more than the load's wall time. */
  ready(): StartupReport {
    const now = performance.now();
    const boot = Math.min(runtimeBootMs(), this.begin);
    const loaded = this.loadedAt ?? now;
    const loadAll = Math.max(0, loaded - this.begin);
    const warmup = Math.min(this.warmupMs, loadAll);
    const s = (ms: number) => Math.round(ms * 1e3) / 1e6; // to seconds, microsecond resolution
    return { process: s(boot), imports: s(this.begin - boot), model_load: s(loadAll - warmup), warmup: s(warmup), listen: s(now - loaded), total: s(now) };
  }
}
