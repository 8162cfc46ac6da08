// The declared processing steps of a model (`preprocess` and `postprocess` in its config.yaml), validated the way
// the rest of the config is: every problem at once, each naming its key; unknown keys refused.
import { DEFAULT_MAX_PIXELS, type ImageStep } from './image.ts';
import type { AudioStep, LogMelFeatures } from './audio.ts';
import { SPEECH_DEFAULTS, type AudioWindows, type SpeechStep } from './windows.ts';

export interface TextStep {
  /** tokenizer.json, relative to the model's folder. */
  tokenizer: string;
  max_length: number;
  /** Cut longer texts to max_length (keeping the special tokens) instead of refusing them. Default false. */
  truncation: boolean;
  /** 'longest': pad a batch to its longest text; 'max_length': always to max_length. */
  padding: 'longest' | 'max_length';
  /** Model input names; absent = the model's input of that conventional name, when it has one. */
  input_ids?: string;
  attention_mask?: string;
  token_type_ids?: string;
}

export interface PostStep {
  /** The output the steps apply to; absent = the model's first output. */
  output?: string;
  softmax: boolean;
  /** How many classes a request without its own `classification` count gets (convenience form, the page). */
  top_k?: number;
  /** Labels file relative to the model's folder; absent = labels.txt there when it exists. */
  labels?: string;
  pooling?: 'mean' | 'cls';
  normalize: boolean;
  /** With preprocess.audio.windows: speech segments from the per-window probabilities. */
  speech?: SpeechStep;
}

export interface ProcessingSpec {
  image?: Partial<ImageStep> & Omit<ImageStep, 'input'>;
  audio?: Omit<AudioStep, 'input'> & { input?: string };
  text?: TextStep;
  post?: PostStep;
}

const IMAGE_KEYS = ['input', 'resize', 'crop', 'scale', 'mean', 'std', 'layout', 'max_pixels'];
const AUDIO_KEYS = ['input', 'sample_rate', 'features', 'samples', 'windows'];
const WINDOWS_KEYS = ['size', 'state', 'state_output', 'sample_rate_input'];
const SPEECH_KEYS = ['threshold', 'min_silence_ms', 'min_speech_ms', 'pad_ms'];
const LOG_MEL_KEYS = ['type', 'window', 'hop', 'n_fft', 'n_mels', 'frames', 'decimals'];
const TEXT_KEYS = ['tokenizer', 'max_length', 'truncation', 'padding', 'input_ids', 'attention_mask', 'token_type_ids'];
const POST_KEYS = ['output', 'softmax', 'top_k', 'labels', 'pooling', 'normalize', 'speech'];
function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

class Checker {
  constructor(
    readonly problems: string[],
    readonly obj: Record<string, unknown>,
    readonly where: string,
    known: string[],
  ) {
    for (const k of Object.keys(obj)) if (!known.includes(k)) problems.push(`unknown key '${where}${k}' (allowed: ${known.join(', ')})`);
  }
  int(key: string, min: number, max: number): number | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    this.problems.push(`'${this.where}${key}' must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return undefined;
  }
  string(key: string): string | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (typeof v === 'string' && v) return v;
    this.problems.push(`'${this.where}${key}' must be a non-empty string, got ${JSON.stringify(v)}`);
    return undefined;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined) return fallback;
    if (typeof v === 'boolean') return v;
    this.problems.push(`'${this.where}${key}' must be true or false, got ${JSON.stringify(v)}`);
    return fallback;
  }
  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (allowed.includes(v as T)) return v as T;
    this.problems.push(`'${this.where}${key}' must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    return undefined;
  }
  triple(key: string, fallback: [number, number, number], positive: boolean): [number, number, number] {
    const v = this.obj[key];
    if (v === undefined) return fallback;
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0))) return v as [number, number, number];
    this.problems.push(`'${this.where}${key}' must be a list of 3 ${positive ? 'positive ' : ''}numbers (R, G, B), got ${JSON.stringify(v)}`);
    return fallback;
  }
}

function imageOf(raw: unknown, problems: string[]): ProcessingSpec['image'] {
  if (!isObject(raw)) return void problems.push(`'preprocess.image' must be an object with ${IMAGE_KEYS.join(', ')}`);
  const c = new Checker(problems, raw, 'preprocess.image.', IMAGE_KEYS);
  let crop: [number, number] | undefined;
  if (raw.crop !== undefined) {
    const v = raw.crop;
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) crop = [v, v];
    else if (Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x) && x > 0)) crop = v as [number, number];
    else problems.push(`'preprocess.image.crop' must be a size or [height, width], got ${JSON.stringify(v)}`);
  }
  const scale = raw.scale === undefined ? 1 / 255 : raw.scale;
  if (typeof scale !== 'number' || !Number.isFinite(scale)) problems.push(`'preprocess.image.scale' must be a number, got ${JSON.stringify(raw.scale)}`);
  const step: NonNullable<ProcessingSpec['image']> = {
    resize: c.int('resize', 1, 16384),
    crop,
    scale: scale as number,
    mean: c.triple('mean', [0, 0, 0], false),
    std: c.triple('std', [1, 1, 1], true),
    layout: c.oneOf('layout', ['NCHW', 'NHWC'] as const) ?? 'NCHW',
    maxPixels: c.int('max_pixels', 1, 2 ** 40) ?? DEFAULT_MAX_PIXELS,
  };
  const input = c.string('input');
  if (input) step.input = input;
  return step;
}

function audioOf(raw: unknown, problems: string[]): ProcessingSpec['audio'] {
  if (!isObject(raw)) return void problems.push(`'preprocess.audio' must be an object with ${AUDIO_KEYS.join(', ')}`);
  const c = new Checker(problems, raw, 'preprocess.audio.', AUDIO_KEYS);
  const rate = c.int('sample_rate', 1, 1_000_000);
  if (raw.sample_rate === undefined) problems.push("'preprocess.audio.sample_rate' is required (the rate the model was trained at, e.g. 16000)");
  const step: NonNullable<ProcessingSpec['audio']> = { sample_rate: rate ?? 16000 };
  const input = c.string('input');
  if (input) step.input = input;
  const samples = c.int('samples', 1, 1 << 28);
  if (samples !== undefined) step.samples = samples;
  if (raw.features !== undefined) {
    const f = raw.features;
    if (!isObject(f) || f.type !== 'log_mel') problems.push(`'preprocess.audio.features' must be {type: log_mel, window, hop, n_fft, n_mels, frames, decimals?}, got ${JSON.stringify(f)}`);
    else {
      const fc = new Checker(problems, f, 'preprocess.audio.features.', LOG_MEL_KEYS);
      const need = (k: string) => {
        const v = fc.int(k, 1, 1 << 20);
        if (f[k] === undefined) problems.push(`'preprocess.audio.features.${k}' is required`);
        return v ?? 1;
      };
      const feats: LogMelFeatures = { type: 'log_mel', window: need('window'), hop: need('hop'), n_fft: need('n_fft'), n_mels: need('n_mels'), frames: need('frames') };
      const decimals = fc.int('decimals', 0, 12);
      if (decimals !== undefined) feats.decimals = decimals;
      if (feats.n_fft & (feats.n_fft - 1) || feats.n_fft < feats.window) problems.push(`'preprocess.audio.features.n_fft' must be a power of two ≥ window (${feats.window}), got ${feats.n_fft}`);
      step.features = feats;
    }
  }
  if (raw.windows !== undefined) {
    const w = raw.windows;
    if (!isObject(w)) problems.push(`'preprocess.audio.windows' must be {size, state, state_output, sample_rate_input?}, got ${JSON.stringify(w)}`);
    else {
      const wc = new Checker(problems, w, 'preprocess.audio.windows.', WINDOWS_KEYS);
      const need = (k: 'state' | 'state_output') => {
        if (w[k] === undefined) problems.push(`'preprocess.audio.windows.${k}' is required (the model's state ${k === 'state' ? 'input' : 'output'})`);
        return wc.string(k) ?? '';
      };
      const size = wc.int('size', 1, 1 << 20);
      if (size === undefined && w.size === undefined) problems.push("'preprocess.audio.windows.size' is required (samples per window, e.g. 512)");
      const windows: AudioWindows = { size: size ?? 512, state: need('state'), state_output: need('state_output') };
      const rate = wc.string('sample_rate_input');
      if (rate) windows.sample_rate_input = rate;
      if (step.features || step.samples !== undefined) problems.push("'preprocess.audio.windows' feeds the waveform window by window: declare it without features or samples");
      step.windows = windows;
    }
  }
  return step;
}

function textOf(raw: unknown, problems: string[]): TextStep | undefined {
  if (!isObject(raw)) return void problems.push(`'preprocess.text' must be an object with ${TEXT_KEYS.join(', ')}`);
  const c = new Checker(problems, raw, 'preprocess.text.', TEXT_KEYS);
  const step: TextStep = {
    tokenizer: c.string('tokenizer') ?? 'tokenizer.json',
    max_length: c.int('max_length', 1, 1 << 20) ?? 512,
    truncation: c.bool('truncation', false),
    padding: c.oneOf('padding', ['longest', 'max_length'] as const) ?? 'longest',
  };
  for (const k of ['input_ids', 'attention_mask', 'token_type_ids'] as const) {
    const v = c.string(k);
    if (v) step[k] = v;
  }
  return step;
}

function postOf(raw: unknown, problems: string[]): PostStep | undefined {
  if (!isObject(raw)) return void problems.push(`'postprocess' must be an object with ${POST_KEYS.join(', ')}`);
  const c = new Checker(problems, raw, 'postprocess.', POST_KEYS);
  const step: PostStep = { softmax: c.bool('softmax', false), normalize: c.bool('normalize', false) };
  const output = c.string('output');
  if (output) step.output = output;
  const k = c.int('top_k', 1, 1 << 20);
  if (k !== undefined) step.top_k = k;
  const labels = c.string('labels');
  if (labels) step.labels = labels;
  const pooling = c.oneOf('pooling', ['mean', 'cls'] as const);
  if (pooling) step.pooling = pooling;
  if (raw.speech !== undefined) {
    if (!isObject(raw.speech)) problems.push(`'postprocess.speech' must be an object with ${SPEECH_KEYS.join(', ')}`);
    else {
      const sc = new Checker(problems, raw.speech, 'postprocess.speech.', SPEECH_KEYS);
      const t = raw.speech.threshold;
      if (t !== undefined && !(typeof t === 'number' && t > 0 && t < 1)) problems.push(`'postprocess.speech.threshold' must be a number between 0 and 1, got ${JSON.stringify(t)}`);
      step.speech = {
        threshold: typeof t === 'number' && t > 0 && t < 1 ? t : SPEECH_DEFAULTS.threshold,
        min_silence_ms: sc.int('min_silence_ms', 0, 600_000) ?? SPEECH_DEFAULTS.min_silence_ms,
        min_speech_ms: sc.int('min_speech_ms', 0, 600_000) ?? SPEECH_DEFAULTS.min_speech_ms,
        pad_ms: sc.int('pad_ms', 0, 600_000) ?? SPEECH_DEFAULTS.pad_ms,
      };
    }
  }
  if (step.pooling && (step.softmax || step.top_k !== undefined)) problems.push("'postprocess' has both pooling (an embedding) and softmax/top_k (a classifier): declare one");
  return step;
}

/** Validates `preprocess` / `postprocess` of a parsed config; pushes every problem, returns what is valid. */
export function processingSpecOf(preprocess: unknown, postprocess: unknown, problems: string[]): ProcessingSpec | undefined {
  const spec: ProcessingSpec = {};
  if (preprocess !== undefined) {
    if (!isObject(preprocess)) problems.push("'preprocess' must be an object with one of image, audio, text");
    else {
      new Checker(problems, preprocess, 'preprocess.', ['image', 'audio', 'text']);
      if (preprocess.image !== undefined) spec.image = imageOf(preprocess.image, problems);
      if (preprocess.audio !== undefined) spec.audio = audioOf(preprocess.audio, problems);
      if (preprocess.text !== undefined) spec.text = textOf(preprocess.text, problems);
      const kinds = ['image', 'audio', 'text'].filter((k) => preprocess[k] !== undefined);
      if (kinds.length > 1) problems.push(`'preprocess' declares ${kinds.join(' and ')}: a model takes one kind of file`);
    }
  }
  if (postprocess !== undefined) spec.post = postOf(postprocess, problems);
  if (spec.post?.speech && !spec.audio?.windows) problems.push("'postprocess.speech' reads per-window probabilities: it needs preprocess.audio.windows");
  for (const k of Object.keys(spec) as (keyof ProcessingSpec)[]) if (spec[k] === undefined) delete spec[k];
  return Object.keys(spec).length ? spec : undefined;
}
