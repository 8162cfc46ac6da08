// A model's declared processing (config.yaml `preprocess` / `postprocess`), bound to the model's inputs and
// outputs and to the platform's image decoder. ServedModelVersion runs it around every infer, so the server, a Lambda and
// the browser SDK apply the same steps; only `decodeImage` differs per platform. No node:* here.
import { InferenceError, type InferenceRequest, type ModelMetadata, type RequestedOutput, type Tensor, type TensorMetadata } from '../core/index.ts';
import { elementCount } from '../core/tensor.ts';
import { audioToTensor, AudioFormatError, parseWav, resample, type AudioStep } from '../core/processing/audio.ts';
import { runWindows, speechSegments, type RunModel } from '../core/processing/windows.ts';
import { imageToTensor, sniffImage, type ImageStep, type RgbImage } from '../core/processing/image.ts';
import { classify, l2NormalizeRows, pool, softmaxRows } from '../core/processing/postprocess.ts';
import type { PostStep, ProcessingSpec, TextStep } from '../core/processing/spec.ts';

/** The platform's image decoder: bytes → RGB pixels, EXIF orientation applied. Throws for a corrupt file. */
export type DecodeImage = (bytes: Uint8Array, maxPixels: number) => Promise<RgbImage>;

export interface ProcessingResources {
  /** Lines of the labels file, when the model has one. */
  labels?: string[];
  /**
   * The tokenizer for preprocess.text (in Node and the browser: @huggingface/tokenizers' Tokenizer built from the
   * model's tokenizer.json). Given by the platform, so a bundle without text steps does not carry a tokenizer.
   */
  tokenizer?: TextTokenizer;
  decodeImage?: DecodeImage;
}

/** The part of @huggingface/tokenizers' Tokenizer the text step uses. */
export interface TextTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
}

/** What a request carried through `before`, for `after`. */
export interface ProcessingContext {
  attentionMask?: BigInt64Array;
  /** Tokens the texts gave (padding excluded), reported as the response's `prompt_tokens` parameter. */
  tokens?: number;
  /** preprocess.audio.windows: each file's samples, run window by window by `runWindows` instead of one run. */
  waves?: Float32Array[];
}

/** The BYTES output that carries each file's speech segments (postprocess.speech). */
export const SPEECH_SEGMENTS_OUTPUT = 'speech_segments';

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Where the low 32 bits of a 64-bit integer lie, counted in 32-bit words: 0 on little-endian machines. */
const LOW_HALF = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;

const textEncoder = new TextEncoder();

function only(list: readonly TensorMetadata[], what: string, model: string): string {
  if (list.length !== 1) throw new Error(`model '${model}' has ${list.length} ${what}s (${list.map((t) => t.name).join(', ')}): name the one the step feeds`);
  return list[0].name;
}

/** Whether a requested output asks for Triton's classification extension, and for how many classes. */
export function classificationCount(o: RequestedOutput | undefined): number | undefined {
  const v = o?.parameters?.classification;
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new InferenceError('INVALID_REQUEST', `output '${o!.name}': parameters.classification must be a whole number of classes ≥ 1, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Replaces each output that asked for classification with its BYTES "score:index[:label]" strings, shape [batch, k]. */
export function classifyOutputs(outputs: Tensor[], requested: readonly RequestedOutput[] | undefined, labelsFor: (output: string) => string[] | undefined): Tensor[] {
  // Most requests name no outputs, or name them without parameters: nothing to classify, the outputs as they are.
  if (!requested?.some((o) => o.parameters?.classification !== undefined)) return outputs;
  return outputs.map((t) => {
    const k = classificationCount(requested?.find((o) => o.name === t.name));
    if (k === undefined) return t;
    if (t.datatype === 'BYTES' || t.datatype === 'BOOL' || t.datatype === 'FP16') {
      throw new InferenceError('INVALID_REQUEST', `output '${t.name}' is ${t.datatype}: classification needs a numeric output`);
    }
    const rows = t.shape.length >= 2 ? t.shape[0] : 1;
    const cols = rows === 0 ? 0 : elementCount(t.shape) / rows;
    const labels = labelsFor(t.name);
    if (labels && labels.length < cols) {
      throw new InferenceError('LABELS_MISMATCH', `output '${t.name}' has ${cols} classes but the labels file has ${labels.length} lines: one label per class is needed`);
    }
    const values = Array.from(t.data as ArrayLike<number | bigint>, Number);
    const strings = classify(values, cols, k, labels, !t.datatype.startsWith('FP'));
    const kk = Math.min(k, cols);
    return { name: t.name, datatype: 'BYTES', shape: t.shape.length >= 2 ? [rows, kk] : [kk], data: strings.map((s) => textEncoder.encode(s)) };
  });
}

export type FileKind = 'image' | 'audio' | 'text';

export class ModelProcessing {
  /** The model input a file (or text) is sent under. */
  readonly fileInput: string | undefined;
  readonly kind: FileKind | undefined;
  private readonly image?: ImageStep;
  private readonly audio?: AudioStep;
  private readonly text?: TextStep & { input_ids: string };
  private readonly tokenizer?: TextTokenizer;
  private readonly post?: PostStep & { output: string };
  private readonly labels?: string[];
  private readonly decodeImage?: DecodeImage;

  /** Binds the steps to a model; throws (a load error) when a name does not match the model. */
  constructor(
    readonly spec: ProcessingSpec,
    private readonly model: Pick<ModelMetadata, 'name' | 'inputs' | 'outputs'>,
    resources: ProcessingResources,
  ) {
    const inputNames = model.inputs.map((t) => t.name);
    const check = (name: string, where: string) => {
      if (!inputNames.includes(name)) throw new Error(`${where} names input '${name}', but model '${model.name}' has inputs: ${inputNames.join(', ')}`);
      return name;
    };
    if (spec.image) {
      this.image = { ...spec.image, input: check(spec.image.input ?? only(model.inputs, 'input', model.name), 'preprocess.image.input') };
      if (!resources.decodeImage) throw new Error('this platform has no image decoder');
      this.decodeImage = resources.decodeImage;
      this.kind = 'image';
      this.fileInput = this.image.input;
    } else if (spec.audio) {
      const w = spec.audio.windows;
      // A windowed model has state inputs beside the waveform: its input is named or called `input`.
      const audioInput = spec.audio.input ?? (w && inputNames.includes('input') ? 'input' : only(model.inputs, 'input', model.name));
      this.audio = { ...spec.audio, input: check(audioInput, 'preprocess.audio.input') };
      if (w) {
        check(w.state, 'preprocess.audio.windows.state');
        if (w.sample_rate_input) check(w.sample_rate_input, 'preprocess.audio.windows.sample_rate_input');
        if (!model.outputs.some((t) => t.name === w.state_output)) throw new Error(`preprocess.audio.windows.state_output names '${w.state_output}', but model '${model.name}' has outputs: ${model.outputs.map((t) => t.name).join(', ')}`);
      }
      this.kind = 'audio';
      this.fileInput = this.audio.input;
    } else if (spec.text) {
      const t = spec.text;
      const has = (n: string) => inputNames.includes(n);
      const ids = check(t.input_ids ?? (has('input_ids') ? 'input_ids' : only(model.inputs, 'input', model.name)), 'preprocess.text.input_ids');
      const mask = t.attention_mask ? check(t.attention_mask, 'preprocess.text.attention_mask') : has('attention_mask') ? 'attention_mask' : undefined;
      const types = t.token_type_ids ? check(t.token_type_ids, 'preprocess.text.token_type_ids') : has('token_type_ids') ? 'token_type_ids' : undefined;
      this.text = { ...t, input_ids: ids, attention_mask: mask, token_type_ids: types };
      if (!resources.tokenizer) throw new Error(`preprocess.text: the tokenizer file '${t.tokenizer}' was not loaded`);
      this.tokenizer = resources.tokenizer;
      this.kind = 'text';
      this.fileInput = ids;
    }
    const outputNames = model.outputs.map((t) => t.name);
    if (spec.post) {
      const output = spec.post.output ?? model.outputs.find((t) => t.name !== spec.audio?.windows?.state_output)?.name ?? '';
      if (!outputNames.includes(output)) throw new Error(`postprocess.output names '${output}', but model '${model.name}' has outputs: ${outputNames.join(', ')}`);
      this.post = { ...spec.post, output };
    }
    this.labels = resources.labels;
  }

  /** The output the labels file and the declared steps apply to. */
  get mainOutput(): string | undefined {
    return this.post?.output ?? this.model.outputs.find((t) => t.name !== this.audio?.windows?.state_output)?.name;
  }

  /** Whether files run window by window with the state carried (preprocess.audio.windows). */
  get windowed(): boolean {
    return this.audio?.windows !== undefined;
  }

  /** Whether the model answers with an embedding (pooling declared). */
  get pooling(): boolean {
    return this.post?.pooling !== undefined;
  }

  /** Dimensions of the tensor one file gives (the model's input has one more when it is batched). */
  private get fileRank(): number {
    if (this.image) return 3;
    return this.audio?.features ? 2 : 1;
  }

  /** For the metadata's parameters: what a client may send and what comes back. */
  describe(): Record<string, unknown> {
    const d: Record<string, unknown> = {};
    if (this.kind) {
      d.input = { name: this.fileInput, kind: this.kind };
      d.tensor_inputs = this.model.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape }));
    }
    // What a bare-file request (Content-Type image/*, audio/wav) is answered with: the top k of the main output.
    if (this.windowed) d.windows = { ...this.audio!.windows, ...(this.post?.speech ? { speech: this.post.speech } : {}) };
    else if (!this.pooling && this.mainOutput) d.classification = { output: this.mainOutput, top_k: this.post?.top_k ?? 5 };
    if (this.post) d.postprocess = { output: this.post.output, ...(this.post.top_k ? { top_k: this.post.top_k } : {}), ...(this.post.pooling ? { pooling: this.post.pooling, normalize: this.post.normalize } : {}), softmax: this.post.softmax };
    if (this.labels) d.labels = this.labels.length;
    return d;
  }

  /**
   * The model as a client sees it through the steps, for the metadata and the model configuration: the file (or
   * text) input becomes BYTES, one file per batch row ([-1], or [1] for a model without a batch dimension), the
   * inputs the steps fill in (attention_mask, token_type_ids) are left out, and the declared output has the shape
   * the steps give (pooling: [batch, hidden]). The tensor form keeps working: its inputs are listed in
   * `parameters.processing.tensor_inputs`.
   */
  served(): { inputs: TensorMetadata[]; outputs: TensorMetadata[] } {
    const w = this.audio?.windows;
    const filled = new Set([this.text?.attention_mask, this.text?.token_type_ids, w?.state, w?.sample_rate_input].filter((n): n is string => n !== undefined));
    const inputs = this.model.inputs.flatMap((t): TensorMetadata[] => {
      if (filled.has(t.name)) return [];
      if (t.name !== this.fileInput) return [t];
      const batched = this.text !== undefined || w !== undefined || t.shape.length > this.fileRank;
      const file: TensorMetadata = { name: t.name, datatype: 'BYTES', shape: [batched ? -1 : 1] };
      if (batched && t.dimNames) file.dimNames = [t.dimNames[0]];
      return [file];
    });
    const post = this.post;
    if (w) {
      const main = this.mainOutput!;
      const outputs: TensorMetadata[] = [{ name: main, datatype: 'FP32', shape: [-1, -1] }];
      if (post?.speech) outputs.push({ name: SPEECH_SEGMENTS_OUTPUT, datatype: 'BYTES', shape: [-1] });
      return { inputs, outputs };
    }
    const outputs = this.model.outputs.map((t): TensorMetadata => {
      if (!post || t.name !== post.output) return t;
      if (post.pooling && t.shape.length === 3) {
        const pooled: TensorMetadata = { name: t.name, datatype: 'FP32', shape: [t.shape[0], t.shape[2]] };
        if (t.dimNames) pooled.dimNames = [t.dimNames[0], t.dimNames[2]];
        return pooled;
      }
      if (post.softmax || post.normalize) return { ...t, datatype: 'FP32' };
      return t;
    });
    return { inputs, outputs };
  }

  /** Turns the file (BYTES) input into the model's tensors; a request in tensor form passes through unchanged. */
  async before(request: InferenceRequest): Promise<{ request: InferenceRequest; context: ProcessingContext }> {
    const context: ProcessingContext = {};
    const at = this.fileInput === undefined ? -1 : request.inputs.findIndex((t) => t.name === this.fileInput && t.datatype === 'BYTES');
    if (at < 0) return { request, context };
    const file = request.inputs[at];
    const items = file.data as Uint8Array[];
    const model = this.model.inputs.find((t) => t.name === file.name)!;
    if (this.windowed) {
      if (items.length === 0) throw new InferenceError('INVALID_REQUEST', `input '${file.name}' holds no file`);
      context.waves = items.map((b) => this.waveform(file.name, b));
      return { request: { ...request, inputs: request.inputs.filter((_, i) => i !== at) }, context };
    }
    const produced = this.text ? this.tokenize(file.name, items, context) : [await this.fileTensor(file.name, items, model)];
    const inputs = request.inputs.filter((_, i) => i !== at).concat(produced);
    return { request: { ...request, inputs }, context };
  }

  private async fileTensor(name: string, items: Uint8Array[], model: TensorMetadata): Promise<Tensor> {
    if (items.length === 0) throw new InferenceError('INVALID_REQUEST', `input '${name}' holds no file`);
    const one: { data: Float32Array; shape: number[] }[] = [];
    for (const bytes of items) one.push(this.image ? await this.imageTensor(name, bytes) : this.audioTensor(name, bytes));
    const shape = one[0].shape;
    for (const t of one) {
      if (t.shape.join() !== shape.join()) throw new InferenceError('SHAPE_MISMATCH', `input '${name}': the files give tensors of different shapes ([${shape}] and [${t.shape}]); declare preprocess.image.crop so every image has one size`);
    }
    const data = new Float32Array(one.length * one[0].data.length);
    one.forEach((t, i) => data.set(t.data, i * t.data.length));
    // A model without a batch dimension takes exactly one file.
    if (model.shape.length === shape.length) {
      if (one.length !== 1) throw new InferenceError('SHAPE_MISMATCH', `input '${name}' takes one file (the model has no batch dimension), got ${one.length}`);
      return { name, datatype: 'FP32', shape, data };
    }
    return { name, datatype: 'FP32', shape: [one.length, ...shape], data };
  }

  private async imageTensor(name: string, bytes: Uint8Array): Promise<{ data: Float32Array; shape: number[] }> {
    const step = this.image!;
    const kind = sniffImage(bytes);
    if (!kind || kind.format === 'gif') {
      throw new InferenceError('UNSUPPORTED_FILE_FORMAT', `input '${name}': ${kind ? 'GIF' : 'the bytes are not'} ${kind ? 'is not read' : 'a JPEG, PNG or WebP image'}${kind ? ': send JPEG, PNG or WebP' : ''}`);
    }
    if (kind.width !== undefined && kind.height !== undefined && kind.width * kind.height > step.maxPixels) {
      throw new InferenceError('IMAGE_TOO_LARGE', `input '${name}': the ${kind.format.toUpperCase()} declares ${kind.width}×${kind.height} pixels, over this model's limit of ${step.maxPixels} (preprocess.image.max_pixels)`);
    }
    let rgb: RgbImage;
    try {
      rgb = await this.decodeImage!(bytes, step.maxPixels);
    } catch (e) {
      if (e instanceof InferenceError) throw e;
      throw new InferenceError('UNDECODABLE_INPUT', `input '${name}': the ${kind.format.toUpperCase()} image cannot be decoded (${(e as Error).message.split('\n')[0]})`);
    }
    try {
      return imageToTensor(rgb, step);
    } catch (e) {
      throw new InferenceError('INVALID_DATA', `input '${name}': ${(e as Error).message}`);
    }
  }

  private audioTensor(name: string, bytes: Uint8Array): { data: Float32Array; shape: number[] } {
    return this.readWav(name, () => audioToTensor(bytes, this.audio!));
  }

  private waveform(name: string, bytes: Uint8Array): Float32Array {
    return this.readWav(name, () => resample(parseWav(bytes), this.audio!.sample_rate).samples);
  }

  private readWav<T>(name: string, read: () => T): T {
    try {
      return read();
    } catch (e) {
      if (!(e instanceof AudioFormatError)) throw e;
      const unsupported = e.message.startsWith('unsupported') || e.message.startsWith('not a WAV');
      throw new InferenceError(unsupported ? 'UNSUPPORTED_FILE_FORMAT' : 'UNDECODABLE_INPUT', `input '${name}': ${e.message}`);
    }
  }

  /** Token ids of one text, cut to max_length (keeping the special tokens) when truncation is on. */
  encodeText(name: string, text: string): number[] {
    const t = this.text!;
    if (text.trim() === '') throw new InferenceError('INVALID_TEXT', `input '${name}': the text is empty`);
    const full = this.tokenizer!.encode(text).ids;
    if (full.length <= t.max_length) return full;
    if (!t.truncation) throw new InferenceError('INVALID_TEXT', `input '${name}': the text is ${full.length} tokens, over this model's max_length of ${t.max_length} (set preprocess.text.truncation: true to cut it)`);
    const plain = this.tokenizer!.encode(text, { add_special_tokens: false }).ids;
    // The special tokens the template adds around the text: keep them and cut the text between.
    let prefix = 0;
    while (prefix < full.length && full[prefix] !== plain[0]) prefix++;
    const suffix = full.slice(prefix + plain.length);
    const room = t.max_length - prefix - suffix.length;
    if (room < 1) throw new InferenceError('INVALID_TEXT', `input '${name}': max_length ${t.max_length} leaves no room for text beside the special tokens`);
    return [...full.slice(0, prefix), ...plain.slice(0, room), ...suffix];
  }

  /** Texts → the model's input_ids, attention_mask and token_type_ids (INT64, [batch, length]). */
  tokenize(name: string, items: Uint8Array[], context: ProcessingContext): Tensor[] {
    const t = this.text!;
    if (items.length === 0) throw new InferenceError('INVALID_TEXT', `input '${name}' holds no text`);
    const encoded = items.map((b) => {
      let s: string;
      try {
        s = textDecoder.decode(b);
      } catch {
        throw new InferenceError('INVALID_TEXT', `input '${name}': the text is not valid UTF-8`);
      }
      return this.encodeText(name, s);
    });
    const length = t.padding === 'max_length' ? t.max_length : Math.max(...encoded.map((e) => e.length));
    const n = encoded.length;
    const ids = new BigInt64Array(n * length);
    const mask = new BigInt64Array(n * length);
    // Written as the low 32-bit halves (token ids are small non-negative integers, the high halves stay 0): a BigInt
    // made per token was a tenth of the text step's own time.
    const ids32 = new Int32Array(ids.buffer);
    const mask32 = new Int32Array(mask.buffer);
    let tokens = 0;
    for (let i = 0; i < n; i++) {
      const e = encoded[i];
      tokens += e.length;
      for (let j = 0, k = 2 * i * length + LOW_HALF; j < e.length; j++, k += 2) {
        ids32[k] = e[j];
        mask32[k] = 1;
      }
    }
    context.attentionMask = mask;
    context.tokens = tokens;
    const shape = [n, length];
    const out: Tensor[] = [{ name: t.input_ids, datatype: 'INT64', shape, data: ids }];
    if (t.attention_mask) out.push({ name: t.attention_mask, datatype: 'INT64', shape, data: mask });
    if (t.token_type_ids) out.push({ name: t.token_type_ids, datatype: 'INT64', shape, data: new BigInt64Array(n * length) });
    return out;
  }

  /** Each file's speech segments as JSON ([{start, end}] in seconds), BYTES [N]. */
  private segments(probs: Tensor, waves: Float32Array[], speech: NonNullable<PostStep['speech']>): Tensor {
    const [n, total] = probs.shape;
    const a = this.audio!;
    const data = waves.map((wave, i) => {
      const windows = Math.max(1, Math.ceil(wave.length / a.windows!.size));
      const p = (probs.data as Float32Array).subarray(i * total, i * total + windows);
      return textEncoder.encode(JSON.stringify(speechSegments(p, a.windows!.size, a.sample_rate, wave.length, speech)));
    });
    return { name: SPEECH_SEGMENTS_OUTPUT, datatype: 'BYTES', shape: [n], data };
  }

  /** preprocess.audio.windows: the files of `context` through the model window by window, the state carried. */
  runWindows(context: ProcessingContext, run: RunModel) {
    const a = this.audio!;
    const state = this.model.inputs.find((t) => t.name === a.windows!.state)!;
    return runWindows(context.waves!, { ...a.windows!, input: a.input, sample_rate: a.sample_rate }, state, this.mainOutput!, run);
  }

  /** Softmax / pooling / normalisation on the declared output, then the classification extension. */
  after(outputs: Tensor[], requested: readonly RequestedOutput[] | undefined, context: ProcessingContext): Tensor[] {
    const post = this.post;
    let result = outputs;
    if (context.waves) {
      if (post?.speech) result = [...outputs, this.segments(outputs[0], context.waves, post.speech)];
      return requested?.length ? result.filter((t) => requested.some((o) => o.name === t.name)) : result;
    }
    if (post) {
      result = outputs.map((t) => {
        if (t.name !== post.output || t.datatype === 'BYTES') return t;
        const values = t.data as ArrayLike<number>;
        if (post.softmax) {
          const cols = t.shape.length ? t.shape[t.shape.length - 1] : 1;
          return { ...t, datatype: 'FP32', data: softmaxRows(values, cols) };
        }
        if (post.pooling && t.shape.length === 3) {
          const pooled = pool(values, t.shape, post.pooling, context.attentionMask);
          if (post.normalize) l2NormalizeRows(pooled, t.shape[2]);
          return { ...t, datatype: 'FP32', shape: [t.shape[0], t.shape[2]], data: pooled };
        }
        if (post.normalize) {
          const cols = t.shape[t.shape.length - 1];
          return { ...t, datatype: 'FP32', data: l2NormalizeRows(Float32Array.from(values), cols) };
        }
        return t;
      });
    }
    const main = this.mainOutput;
    return classifyOutputs(result, requested, (name) => (name === main ? this.labels : undefined));
  }
}
