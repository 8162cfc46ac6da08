// Request ids the server gives (x-request-id, log lines, feedback): a random part drawn once per process and a
// counter, in a UUID's 8-4-4-4-12 layout. Unique within the process, and across processes and restarts by the random
// part; a randomUUID() per request measured ~1.4 µs of the main thread's ~60 on a small model (perf, 2026-12-06).
import { randomUUID } from 'node:crypto';

const PREFIX = randomUUID().slice(0, 24);
let counter = 0;

/**
 * The count in an id {@link newRequestId} gave in this process, or -1 for any other string. Lets the feedback memory
 * keep this process's own ids in a ring indexed by their count, with no string hashing (monitor/feedback.ts).
 */
export function ownRequestCount(id: string): number {
  if (id.length !== PREFIX.length + 12 || !id.startsWith(PREFIX)) return -1;
  let n = 0;
  for (let i = PREFIX.length; i < id.length; i++) {
    const c = id.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

/** A new id: the process's random prefix, then the next count as 12 hex digits. */
export function newRequestId(): string {
  counter = counter === 0xffffffffffff ? 1 : counter + 1;
  return PREFIX + counter.toString(16).padStart(12, '0');
}
