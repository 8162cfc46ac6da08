// The library entry for serving: open a repository, build the v2 app over it, listen on HTTP.
import { createV2App, type ServerMetadata } from '../core/index.ts';
import { onnxruntimeNode } from '../runtime/onnxruntime-node.ts';
import type { Backend, SessionOptions } from '../runtime/backend.ts';
import { DEFAULT_MAX_BODY_BYTES, startHttpServer, type RunningHttpServer } from './http-server.ts';
import { ModelRepository, type RepositoryOptions } from './repository.ts';

export const SERVER_NAME = 'dais';
export const SERVER_VERSION = '0.1.0';
export const EXTENSIONS = ['binary_tensor_data'];

export interface ServeOptions {
  /** A model file or a model repository folder. */
  model: string;
  host?: string;
  port?: number;
  maxBodyBytes?: number;
  backend?: Backend;
  sessionOptions?: SessionOptions;
  onLoad?: RepositoryOptions['onLoad'];
}

export interface RunningServer extends RunningHttpServer {
  repository: ModelRepository;
}

export function serverMetadata(): ServerMetadata {
  return { name: SERVER_NAME, version: SERVER_VERSION, extensions: [...EXTENSIONS] };
}

export async function serve(options: ServeOptions): Promise<RunningServer> {
  const repository = await ModelRepository.open(options.model, {
    backend: options.backend ?? onnxruntimeNode,
    sessionOptions: options.sessionOptions,
    onLoad: options.onLoad,
  });
  const handler = createV2App({ registry: repository, server: serverMetadata() });
  const http = await startHttpServer({ handler, host: options.host, port: options.port, maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES });
  return {
    ...http,
    repository,
    async close() {
      repository.setDraining();
      await http.close();
      await repository.close();
    },
  };
}

export { ModelRepository, scanRepository } from './repository.ts';
