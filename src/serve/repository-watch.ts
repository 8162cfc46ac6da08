// Watching a repository folder for changes: polling, file-system events, or both. Each look runs the repository's
// refresh; a file still changing is looked at again after `settleMs` (the refresh loads it once it stops changing).
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import type { Logger } from '../node/logger.ts';

export interface WatchOptions {
  pollIntervalMs?: number;
  fsEvents?: boolean;
  settleMs?: number;
}

export interface WatchedRepository {
  root: string;
  logger: Logger;
  isClosed(): boolean;
  refresh(): Promise<{ pending: number }>;
}

export function watchRepository(repo: WatchedRepository, options: WatchOptions): () => void {
  const settleMs = options.settleMs ?? 300;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const kick = (delay: number) => {
    if (timer || repo.isClosed()) return;
    timer = setTimeout(() => {
      timer = undefined;
      repo.refresh()
        .then((r) => {
          if (r.pending > 0) kick(settleMs);
        })
        .catch((e) => repo.logger.error({ error: (e as Error).message }, 'repository scan failed'));
    }, delay);
    timer.unref?.();
  };
  const stops: (() => void)[] = [];
  if (options.pollIntervalMs && options.pollIntervalMs > 0) {
    const iv = setInterval(() => kick(0), options.pollIntervalMs);
    iv.unref?.();
    stops.push(() => clearInterval(iv));
  }
  if (options.fsEvents) {
    let w: FSWatcher | undefined;
    try {
      w = fsWatch(repo.root, { recursive: true }, () => kick(settleMs));
      w.on('error', (e) => repo.logger.warn({ error: e.message }, 'file watching failed; use polling (--poll-interval-ms)'));
      stops.push(() => w!.close());
    } catch (e) {
      repo.logger.warn({ error: (e as Error).message }, 'file watching is not available here; use polling (--poll-interval-ms)');
    }
  }
  stops.push(() => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  });
  const stop = () => {
    for (const s of stops.splice(0)) s();
  };
  return stop;
}
