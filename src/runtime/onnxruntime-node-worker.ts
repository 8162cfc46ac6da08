// onnxruntime-node on a worker thread per session. onnxruntime-node's `run` executes synchronously on the calling
// thread (its JS wrapper only defers it with setImmediate), so a server that ran it on the main thread would stop
// reading sockets while a batch computes. Each session here owns one worker; the main thread only posts tensors.
// The worker's code and the messages are session-host.ts's (shared with the child-process sessions).
import { Worker } from 'node:worker_threads';
import { InferenceError, type Tensor } from '../core/index.ts';
import type { Backend, ModelSource, Session, SessionOptions } from './backend.ts';
import { ORT_TYPE_OF_ONNX_ELEMENT, ortSessionOptions } from './onnxruntime-node.ts';
import { tensorMetadataOf } from './ort-tensors.ts';
import { hostLoaded, owned, PendingRuns, resolveOrt, resolveOrtBinding, sessionHostSource, type FromHost, type ToHost } from './session-host.ts';

// openDirect: onnxruntime-node's own session object, as onnxruntime-node.ts opens it on the main thread (its run
// returns the result; metadata as onnxruntime-node.ts's valueMetadataOf makes it, types named by workerData.types).
const WORKER_SOURCE = sessionHostSource(`
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const send = (m, transfer) => parentPort.postMessage(m, transfer);
const receive = (f) => parentPort.on('message', f);
const adjust = (feeds) => feeds;
const direct = workerData.bindingPath ? require(workerData.bindingPath) : undefined;
const openDirect = direct && typeof direct.binding?.InferenceSession === 'function' && typeof direct.initOrt === 'function' ? (model, options) => {
  direct.initOrt();
  const native = new direct.binding.InferenceSession();
  if (typeof model === 'string') native.loadModel(model, options);
  else native.loadModel(model.buffer, model.byteOffset, model.byteLength, options);
  const meta = (raw) => raw.map((x) => x.isTensor
    ? { name: x.name, isTensor: true, type: workerData.types[x.type] ?? 'ONNX element type ' + x.type, shape: Array.from(x.shape, (d, i) => (d >= 0 ? d : (x.symbolicDimensions[i] ?? ''))) }
    : { name: x.name, isTensor: false });
  const noOptions = {};
  return {
    inputMetadata: meta(native.inputMetadata),
    outputMetadata: meta(native.outputMetadata),
    run(feeds, names) {
      const fetches = {};
      for (const n of names) fetches[n] = null;
      return native.run(feeds, fetches, noOptions);
    },
    async release() { native.dispose(); },
  };
} : undefined;`);


function post(worker: Worker, m: ToHost, transfer: ArrayBuffer[] = []): void {
  worker.postMessage(m, transfer);
}

class WorkerSession implements Session {
  readonly thread = 'worker' as const;
  inputs: Session['inputs'] = [];
  outputs: Session['outputs'] = [];
  private readonly pending = new PendingRuns();
  private dead: InferenceError | undefined;
  private exited: Promise<void>;

  constructor(private readonly worker: Worker) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromHost) => this.pending.settle(m));
    const fail = (why: string) => {
      this.dead ??= new InferenceError('INFERENCE_FAILED', `the model's worker thread stopped (${why})`);
      this.pending.failAll(this.dead);
    };
    worker.on('error', (e) => fail(e.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
  }

  get lastComputeUs(): number | undefined {
    return this.pending.lastComputeUs;
  }

  run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
    if (this.dead) return Promise.reject(this.dead);
    return this.pending.run(feeds, outputNames, (m, transfer) => post(this.worker, m, transfer), true);
  }

  async dispose(): Promise<void> {
    if (!this.dead) post(this.worker, { op: 'dispose' });
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

export const onnxruntimeNodeWorker: Backend = {
  name: 'onnxruntime-node (worker threads)',
  async createSession(model: ModelSource, options?: SessionOptions): Promise<Session> {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath: resolveOrt(), bindingPath: resolveOrtBinding(), types: ORT_TYPE_OF_ONNX_ELEMENT } });
    const session = new WorkerSession(worker);
    const loaded = await hostLoaded(worker, 'worker thread', () => {
      // A path is read by onnxruntime on the worker; bytes are moved there, not copied, so that no copy of the
      // weights stays on this thread (backend.ts: the caller gives them up).
      const payload = typeof model === 'string' ? model : owned(model);
      post(worker, { op: 'load', model: payload, options: ortSessionOptions(options) }, typeof payload === 'string' ? [] : [payload.buffer]);
    }).catch(async (e: unknown) => {
      // A worker left running after a failed load would keep the process alive.
      await worker.terminate();
      throw e;
    });
    try {
      session.inputs = tensorMetadataOf(loaded.inputs, 'input');
      session.outputs = tensorMetadataOf(loaded.outputs, 'output');
    } catch (e) {
      await session.dispose();
      throw e;
    }
    return session;
  },
};
