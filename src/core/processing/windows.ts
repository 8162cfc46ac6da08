// A recurrent audio model run over a file window by window, its state carried from one window to the next inside
// one request (Silero VAD: `input` [N, 512] at 16 kHz, `state` [2, N, 128], `sr` INT64 scalar → `output` [N, 1],
// `stateN`), and the speech segments read from the per-window probabilities. Runtime-agnostic: the model run is
// passed in.
import type { TensorMetadata } from '../protocol.ts';
import type { Tensor } from '../tensor.ts';

export interface AudioWindows {
  /** Samples per window (Silero: 512 at 16 kHz, 256 at 8 kHz). The last window is padded with zeros. */
  size: number;
  /** The input carrying the recurrent state: zeros at the start of each file. */
  state: string;
  /** The output fed back as `state` for the next window. */
  state_output: string;
  /** An INT64 scalar input given the sample rate, when the model takes one. */
  sample_rate_input?: string;
}

export interface SpeechStep {
  /** A window is speech from this probability (Silero's default 0.5). */
  threshold: number;
  /** Speech ends only after the probability stays below threshold − 0.15 this long. */
  min_silence_ms: number;
  /** Shorter segments are dropped. */
  min_speech_ms: number;
  /** Each segment is widened by this much on both sides (within the file). */
  pad_ms: number;
}

export const SPEECH_DEFAULTS: SpeechStep = { threshold: 0.5, min_silence_ms: 100, min_speech_ms: 250, pad_ms: 30 };

export type RunModel = (feeds: Tensor[], outputs: string[]) => Promise<{ outputs: Tensor[]; queueMs: number; computeMs: number }>;

/**
 * Runs files (mono samples at the model's rate) through the model window by window, N files at once (shorter
 * files padded with silence); returns `probabilityOutput` as [N, windows] and the total queue/compute time.
 */
export async function runWindows(
  files: Float32Array[],
  step: AudioWindows & { input: string; sample_rate: number },
  stateMeta: TensorMetadata,
  probabilityOutput: string,
  run: RunModel,
): Promise<{ outputs: Tensor[]; queueMs: number; computeMs: number; windows: number[] }> {
  const n = files.length;
  const windows = files.map((f) => Math.max(1, Math.ceil(f.length / step.size)));
  const total = Math.max(...windows);
  const stateShape = stateMeta.shape.map((d) => (d < 0 ? n : d));
  let state: Tensor = { name: step.state, datatype: 'FP32', shape: stateShape, data: new Float32Array(stateShape.reduce((a, b) => a * b, 1)) };
  const rate: Tensor[] = step.sample_rate_input ? [{ name: step.sample_rate_input, datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(step.sample_rate)) }] : [];
  const probs = new Float32Array(n * total);
  let queueMs = 0;
  let computeMs = 0;
  for (let w = 0; w < total; w++) {
    const chunk = new Float32Array(n * step.size);
    files.forEach((f, i) => chunk.set(f.subarray(w * step.size, Math.min(f.length, (w + 1) * step.size)), i * step.size));
    const r = await run([{ name: step.input, datatype: 'FP32', shape: [n, step.size], data: chunk }, state, ...rate], [probabilityOutput, step.state_output]);
    queueMs += r.queueMs;
    computeMs += r.computeMs;
    const p = r.outputs.find((t) => t.name === probabilityOutput)!.data as Float32Array;
    for (let i = 0; i < n; i++) probs[i * total + w] = p[i];
    const next = r.outputs.find((t) => t.name === step.state_output)!;
    state = { name: step.state, datatype: 'FP32', shape: next.shape, data: next.data };
  }
  return { outputs: [{ name: probabilityOutput, datatype: 'FP32', shape: [n, total], data: probs }], queueMs, computeMs, windows };
}

/** Speech segments in seconds from per-window probabilities (hysteresis: speech from threshold, silence below threshold − 0.15). */
export function speechSegments(probs: ArrayLike<number>, windowSize: number, rate: number, samples: number, s: SpeechStep): { start: number; end: number }[] {
  const off = Math.max(0.01, s.threshold - 0.15);
  const minSilence = (s.min_silence_ms * rate) / 1000;
  const raw: [number, number][] = [];
  let start = -1;
  let silentFrom = -1;
  for (let w = 0; w < probs.length; w++) {
    const at = w * windowSize;
    const p = probs[w];
    if (start < 0) {
      if (p >= s.threshold) start = at;
      continue;
    }
    if (p >= s.threshold) silentFrom = -1;
    else if (p < off) {
      if (silentFrom < 0) silentFrom = at;
      if (at + windowSize - silentFrom >= minSilence) {
        raw.push([start, silentFrom]);
        start = -1;
        silentFrom = -1;
      }
    }
  }
  if (start >= 0) raw.push([start, samples]);
  const pad = (s.pad_ms * rate) / 1000;
  return raw
    .filter(([a, b]) => b - a >= (s.min_speech_ms * rate) / 1000)
    .map(([a, b]) => ({ start: round3(Math.max(0, a - pad) / rate), end: round3(Math.min(samples, b + pad) / rate) }));
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
