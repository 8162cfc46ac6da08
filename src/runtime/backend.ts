// The small interface every runtime implements: onnxruntime-node here, onnxruntime-web in browsers and edge bundles.
import type { Tensor, TensorMetadata } from '../core/index.ts';

export interface SessionOptions {
  /** Threads inside one operator (onnxruntime intra-op). 0 = the runtime's default. */
  intraOpThreads?: number;
  /** Threads across independent operators. */
  interOpThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

export interface Session {
  readonly inputs: readonly TensorMetadata[];
  readonly outputs: readonly TensorMetadata[];
  /** Runs the model; never blocks the event loop (onnxruntime runs it on its own threads). */
  run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]>;
  dispose(): Promise<void>;
}

export interface Backend {
  readonly name: string;
  createSession(model: Uint8Array, options?: SessionOptions): Promise<Session>;
}
