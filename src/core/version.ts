// The one version of dais. Kept here, not imported from package.json, so bundles (Lambda, edge, container) do not
// carry package.json's dependency list; test/architecture.test.ts checks that it equals package.json's version.
import type { ServerMetadata } from './protocol.ts';

export const DAIS_VERSION = '0.1.0';

/** What the server says of itself at GET /v2 (a Lambda bundle or a container image carries the same). */
export const SERVER_NAME = 'dais';
export const SERVER_EXTENSIONS = ['binary_tensor_data', 'model_configuration', 'model_repository', 'statistics'];

export function serverMetadata(): ServerMetadata {
  return { name: SERVER_NAME, version: DAIS_VERSION, extensions: [...SERVER_EXTENSIONS] };
}
