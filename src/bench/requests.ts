// The request a bench sends: an example's v2 JSON request, and the same tensors as a binary-extension body
// (inputs binary, outputs asked binary), so both request paths carry identical data.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { isVersionFolder } from '../layout/repository.ts';
import { encodeInferRequest, requestFromJson, type InferenceRequest } from '../core/index.ts';
import { UserError } from '../core/errors.ts';

export interface BenchModel {
  /** The model file served and run. */
  path: string;
  name: string;
  sizeBytes: number;
  requestFile: string;
  request: InferenceRequest;
  json: { body: string; contentType: string };
  binary: { body: Uint8Array; contentType: string; headerLength: number };
}

export class BenchInputError extends UserError {}

/** `<dir>` is an example (`<dir>/<version>/model.onnx` + `<dir>/requests/*.json`) or a model file. */
export function resolveBenchModel(target: string, requestFile?: string): BenchModel {
  const abs = resolve(target);
  if (!existsSync(abs)) throw new BenchInputError(`model not found: ${target}`);
  let path = abs;
  let exampleDir: string | undefined;
  if (statSync(abs).isDirectory()) {
    const versions = readdirSync(abs).filter((v) => isVersionFolder(v) && existsSync(join(abs, v, 'model.onnx'))).sort((a, b) => Number(b) - Number(a));
    if (existsSync(join(abs, 'model.onnx'))) path = join(abs, 'model.onnx');
    else if (versions.length) path = join(abs, versions[0], 'model.onnx');
    else throw new BenchInputError(`${target} holds no model.onnx nor <version>/model.onnx`);
    exampleDir = existsSync(join(abs, 'requests')) ? abs : undefined;
  } else {
    const up = dirname(dirname(abs));
    if (existsSync(join(up, 'requests'))) exampleDir = up;
  }
  let reqPath = requestFile ? resolve(requestFile) : undefined;
  if (!reqPath && exampleDir) {
    const files = readdirSync(join(exampleDir, 'requests')).filter((f) => f.endsWith('.json')).sort();
    const pick = files.find((f) => f === 'single.json') ?? files[0];
    if (pick) reqPath = join(exampleDir, 'requests', pick);
  }
  if (!reqPath) throw new BenchInputError(`no request to send: give --request <v2 request.json> (an example folder's requests/ is used when there is one)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(reqPath, 'utf8'));
  } catch (e) {
    throw new BenchInputError(`cannot read request ${reqPath}: ${(e as Error).message}`);
  }
  let request: InferenceRequest;
  try {
    request = requestFromJson(parsed);
  } catch (e) {
    throw new BenchInputError(`${reqPath} is not a v2 infer request: ${(e as Error).message}`);
  }
  const jsonEnc = encodeInferRequest({ ...request, outputs: undefined });
  const binEnc = encodeInferRequest({ ...request, outputs: undefined, parameters: { ...request.parameters, binary_data_output: true } }, () => true);
  const name = exampleDir ? basename(exampleDir) : basename(path).replace(/\.onnx$/, '');
  return {
    path,
    name,
    sizeBytes: statSync(path).size,
    requestFile: reqPath,
    request,
    json: { body: jsonEnc.body as string, contentType: 'application/json' },
    binary: { body: binEnc.body as Uint8Array, contentType: binEnc.contentType, headerLength: binEnc.headerLength ?? 0 },
  };
}
