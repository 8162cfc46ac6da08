// The small interface every runtime implements: onnxruntime-node here, onnxruntime-web in browsers and edge bundles.
import type { Tensor, TensorMetadata } from '../core/index.ts';

export interface SessionOptions {
  /** Threads inside one operator (onnxruntime intra-op). 0 = the runtime's default. */
  intraOpThreads?: number;
  /** Threads across independent operators. */
  interOpThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Whether the intra-op pool's threads spin while waiting for work (onnxruntime's
   * `session.intra_op.allow_spinning`). Absent = the runtime's default (spinning).
   */
  allowSpinning?: boolean;
  /**
   * Whether the intra-op pool's threads go on spinning after a run has returned, as onnxruntime's own default has
   * them. Absent or false = they stop when the run returns (`session.force_spinning_stop`), leaving the cores to the
   * thread that answers the request and to whatever else runs on the machine (onnxruntime-node.ts).
   */
  spinAfterRun?: boolean;
  /** onnxruntime's CPU memory arena (enableCpuMemArena). Absent = the runtime's default (on). */
  memArena?: boolean;
  /** onnxruntime's memory pattern planning (enableMemPattern). Absent = the runtime's default (on). */
  memPattern?: boolean;
  /** The model version the session serves, for its errors and events. */
  owner?: { model: string; version: string };
}

/**
 * What a session is made from: the model's bytes, or the path of a file that holds them as they are. A path keeps
 * the weights out of JavaScript altogether (the runtime reads the file itself); bytes given to a backend may be
 * taken over by it (transferred to another thread), so the caller must not use them afterwards.
 */
export type ModelSource = Uint8Array | string;

export interface Session {
  readonly inputs: readonly TensorMetadata[];
  readonly outputs: readonly TensorMetadata[];
  /**
   * Runs the model. A session with `thread: 'main'` computes on the calling thread (blocking it for the run; with
   * `synchronous`, before run returns); others compute on threads of their own.
   */
  run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]>;
  dispose(): Promise<void>;
  /** Where `run` computes: on the calling thread (blocking it for the run) or on a thread of its own. */
  readonly thread?: 'main' | 'worker';
  /** The run computes within the call (not in a later turn of the event loop); its promise is settled on return. */
  readonly synchronous?: boolean;
  /** A synchronous session's run with its outputs returned, not promised (throws what `run` rejects with). */
  runNow?(feeds: readonly Tensor[], outputNames: readonly string[]): Tensor[];
  /** False while the session cannot run (a process-isolated one whose child is being restarted). */
  readonly ready?: boolean;
  /**
   * The compute time of the session's last answered run as timed where it ran, µs: for a session on a thread or
   * process of its own, without the hand-off each way. Undefined where the caller's own timing is the run's.
   */
  readonly lastComputeUs?: number;
  /** Resident memory the session holds outside this process (a child process's RSS once loaded), bytes. */
  readonly externalBytes?: number;
}

export interface Backend {
  readonly name: string;
  createSession(model: ModelSource, options?: SessionOptions): Promise<Session>;
}
