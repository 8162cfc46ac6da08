// ModelStreamInfer's answers, as Triton gives them for a model that is not decoupled: one response per request, in
// the order the requests came (each is written once it and every earlier one are done), each carrying the parameter
// triton_final_response = true; a failed request answers with error_message and an infer_response holding its id.
import type * as grpc from '@grpc/grpc-js';
import { toInferenceError } from '../../core/index.ts';

interface StreamRequest {
  id?: string;
  model_name?: string;
  model_version?: string;
}

const FINAL = { triton_final_response: { bool_param: true } };

export function streamResponder(call: grpc.ServerDuplexStream<unknown, unknown>) {
  let tail: Promise<void> = Promise.resolve();
  let pending = 0;
  let ended = false;
  const maybeEnd = () => {
    if (ended && pending === 0) call.end();
  };
  return {
    /** Queues the answer to `req`, which `response` (the ModelInferResponse, or its failure) gives. */
    add(req: StreamRequest, response: Promise<Record<string, unknown>>): void {
      pending++;
      // Settled now, written in turn: a later request that finishes first waits for the earlier ones.
      const message = response.then(
        (res) => ({ error_message: '', infer_response: { ...res, parameters: { ...(res.parameters as object), ...FINAL } } }),
        (e: unknown) => ({
          error_message: toInferenceError(e).message,
          infer_response: { id: req.id ?? '', model_name: req.model_name ?? '', model_version: req.model_version ?? '', parameters: FINAL },
        }),
      );
      tail = tail.then(async () => {
        call.write(await message);
        pending--;
        maybeEnd();
      });
    },
    /** The client half-closed: end once every queued answer is written. */
    end(): void {
      ended = true;
      maybeEnd();
    },
  };
}
