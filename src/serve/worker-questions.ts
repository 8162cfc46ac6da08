// A cluster worker's questions to its primary over the IPC channel: each gets an id, the primary answers with
// { id, value } or { id, error }, and a question unanswered in time fails with WORKERS_UNAVAILABLE. Used by the
// repository/metrics link (cluster.ts) and the monitoring link (cluster-monitor.ts).
import { InferenceError, type ErrorCode } from '../core/index.ts';

export interface Answer {
  id: number;
  value?: unknown;
  error?: { code: ErrorCode; message: string };
}

export function workerQuestions(timeoutMs: number, noAnswer: string) {
  let nextId = 1;
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void; timer: ReturnType<typeof setTimeout> }>();
  return {
    /** Sends a question (with the id `send` is given) and resolves with the primary's answer. */
    ask(send: (id: number) => void): Promise<unknown> {
      return new Promise((resolve, reject) => {
        if (!process.connected) return reject(new InferenceError('WORKERS_UNAVAILABLE', 'this worker lost its primary process and is shutting down'));
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new InferenceError('WORKERS_UNAVAILABLE', `${noAnswer} within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        waiting.set(id, { resolve, reject, timer });
        send(id);
      });
    },
    /** Settles the question an answer is for (an answer to nothing waiting, e.g. after its timeout, is dropped). */
    answer(m: Answer): void {
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.error) w.reject(new InferenceError(m.error.code, m.error.message));
      else w.resolve(m.value);
    },
  };
}
