// grpc.health.v1.Health on the inference port: SERVING while the server is ready (every model that should serve
// does), NOT_SERVING otherwise, for the whole server ("") and for the inference service by name. Kubernetes'
// gRPC probes use Check; Watch sends the status now and again whenever it changes.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const HEALTH_PROTO_PATH = join(dirname(fileURLToPath(import.meta.url)), 'health.proto');
export const INFERENCE_SERVICE_NAME = 'inference.GRPCInferenceService';
const SERVICES = new Set(['', INFERENCE_SERVICE_NAME]);
/** How often Watch looks at readiness (it has no event to wait on). */
const WATCH_POLL_MS = 1000;

export function loadHealthService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(HEALTH_PROTO_PATH, { keepCase: true, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return pkg.grpc.health.v1.Health;
}

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** Adds the service; the function returned ends every Watch stream (call it when the server shuts down). */
export function addHealthService(server: grpc.Server, isReady: () => boolean): () => void {
  const watches = new Set<() => void>();
  const statusOf = (service: string | undefined): Status => (!SERVICES.has(service ?? '') ? 'SERVICE_UNKNOWN' : isReady() ? 'SERVING' : 'NOT_SERVING');
  server.addService(loadHealthService().service, {
    Check: (call: grpc.ServerUnaryCall<{ service?: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const status = statusOf(call.request.service);
      // The protocol answers an unknown service with NOT_FOUND rather than a status.
      if (status === 'SERVICE_UNKNOWN') callback({ code: grpc.status.NOT_FOUND, details: `unknown service '${call.request.service}': this server has '' and '${INFERENCE_SERVICE_NAME}'` });
      else callback(null, { status });
    },
    Watch: (call: grpc.ServerWritableStream<{ service?: string }, unknown>) => {
      let last: Status | undefined;
      const tick = () => {
        const status = statusOf(call.request.service);
        if (status !== last) call.write({ status });
        last = status;
      };
      tick();
      const timer = setInterval(tick, WATCH_POLL_MS);
      const stop = () => {
        clearInterval(timer);
        watches.delete(end);
      };
      // A shutdown ends the stream, with NOT_SERVING last, so that tryShutdown does not wait on it.
      const end = () => {
        stop();
        call.write({ status: 'NOT_SERVING' });
        call.end();
      };
      watches.add(end);
      call.on('cancelled', stop);
      call.on('close', stop);
    },
  });
  return () => {
    for (const end of [...watches]) end();
  };
}
