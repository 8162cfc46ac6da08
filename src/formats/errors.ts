import { UserError } from '../core/errors.ts';
// Errors from reading model files. Kept apart from index.ts so that the ONNX codec (which browser and Lambda
// bundles may include) does not pull in node:fs through it.
export class ModelFileError extends UserError {
  readonly code = 'MODEL_FILE_INVALID';
}
