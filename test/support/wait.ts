// Waiting on a state instead of a fixed time: the check is re-run until it holds, and the wait fails, naming what
// it waited for, when it does not hold within the limit (a slow machine only makes it wait longer, never pass wrongly).
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between checks (default 10 ms). */
  intervalMs?: number;
  /** What is awaited, for the failure message. */
  what?: string;
}

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/** Resolves with the first truthy value of `check` (sync or async); throws after `timeoutMs` without one. */
export async function waitFor<T>(check: () => T | Promise<T>, options: WaitOptions = {}): Promise<Truthy<T>> {
  const { timeoutMs = 10_000, intervalMs = 10, what = check.toString() } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) throw new Error(`waited ${timeoutMs} ms for ${what}; last check gave ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await delay(intervalMs);
  }
}
