// The Open Inference Protocol's objects, decoded: what adapters hand to a model and get back.
import type { Datatype } from './datatypes.ts';
import type { Parameters, Tensor } from './tensor.ts';

export interface RequestedOutput {
  name: string;
  parameters?: Parameters;
}

export interface InferenceRequest {
  id?: string;
  parameters?: Parameters;
  inputs: Tensor[];
  /** Absent = every output of the model. */
  outputs?: RequestedOutput[];
}

export interface InferenceResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: Tensor[];
}

/** A tensor as model metadata describes it: -1 for a dimension of any size. */
export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  shape: number[];
  /** Symbolic dimension names from the model file, where it has them (e.g. ["N", null, null]). */
  dimNames?: (string | null)[];
}

export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
  parameters?: Record<string, unknown>;
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}
