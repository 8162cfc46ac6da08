// A loaded model version: a runtime session plus its v2 metadata, answering decoded infer requests.
import { validateRequest, type InferContext, type InferenceRequest, type InferenceResponse, type ModelEndpoint, type ModelMetadata, type Tensor } from '../core/index.ts';
import type { Backend, Session, SessionOptions } from './backend.ts';

export const ONNX_PLATFORM = 'onnxruntime_onnx';

export interface OnnxModelOptions {
  name: string;
  version: string;
  backend: Backend;
  sessionOptions?: SessionOptions;
  /** Every version of this model the server holds, for the metadata's `versions`. */
  versions?: () => string[];
}

export class OnnxModel implements ModelEndpoint {
  readonly name: string;
  readonly version: string;
  private ready = true;
  /** Built once: validation runs on every request. */
  private readonly base: ModelMetadata;

  private constructor(
    private readonly session: Session,
    private readonly options: OnnxModelOptions,
  ) {
    this.name = options.name;
    this.version = options.version;
    this.base = { name: this.name, platform: ONNX_PLATFORM, inputs: [...session.inputs], outputs: [...session.outputs] };
  }

  static async load(onnx: Uint8Array, options: OnnxModelOptions): Promise<OnnxModel> {
    const session = await options.backend.createSession(onnx, options.sessionOptions);
    return new OnnxModel(session, options);
  }

  isReady(): boolean {
    return this.ready;
  }

  metadata(): ModelMetadata {
    return { ...this.base, versions: this.options.versions?.() ?? [this.version] };
  }

  /** Runs already-validated feeds: the seam where a batcher joins requests. */
  run(feeds: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
    return this.session.run(feeds, outputNames);
  }

  async infer(request: InferenceRequest, _context?: InferContext): Promise<InferenceResponse> {
    validateRequest(request, this.base);
    const names = request.outputs?.map((o) => o.name) ?? this.session.outputs.map((o) => o.name);
    const outputs = await this.run(request.inputs, names);
    const response: InferenceResponse = { model_name: this.name, model_version: this.version, outputs };
    if (request.id !== undefined) response.id = request.id;
    return response;
  }

  async dispose(): Promise<void> {
    this.ready = false;
    await this.session.dispose();
  }
}
