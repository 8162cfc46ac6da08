// Audio preprocessing: WAV parsing (PCM 8/16/24/32-bit and IEEE float 32/64), mixing to mono, resampling, and the
// keyword example's log-mel features. Pure arithmetic: the same on the server, a Lambda and in a browser.
import { UserError } from '../errors.ts';
import type { AudioWindows } from './windows.ts';

export interface Waveform {
  sampleRate: number;
  /** Mono samples in [-1, 1). */
  samples: Float32Array;
}

/** Thrown for a file that is not a WAV dais can read; the message says why. */
export class AudioFormatError extends UserError {}

/** Parses a RIFF/WAVE file and mixes its channels to mono. */
export function parseWav(bytes: Uint8Array): Waveform {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new AudioFormatError('not a WAV file (no RIFF/WAVE header)');
  let fmt: { format: number; channels: number; rate: number; bits: number } | undefined;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = tag(at);
    const size = dv.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw new AudioFormatError('truncated WAV: the fmt chunk is cut short');
      let format = dv.getUint16(body, true);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
      if (format === 0xfffe && size >= 40 && body + 26 <= bytes.length) format = dv.getUint16(body + 24, true);
      fmt = { format, channels: dv.getUint16(body + 2, true), rate: dv.getUint32(body + 4, true), bits: dv.getUint16(body + 14, true) };
    } else if (id === 'data') {
      if (!fmt) throw new AudioFormatError('WAV data chunk before its fmt chunk');
      return decodePcm(bytes, body, Math.min(size, bytes.length - body), fmt, size > bytes.length - body);
    }
    at = body + size + (size & 1);
  }
  throw new AudioFormatError(fmt ? 'truncated WAV: no data chunk' : 'truncated WAV: no fmt chunk');
}

function decodePcm(bytes: Uint8Array, start: number, length: number, fmt: { format: number; channels: number; rate: number; bits: number }, truncated: boolean): Waveform {
  const { format, channels, rate, bits } = fmt;
  if (channels < 1) throw new AudioFormatError('WAV declares 0 channels');
  if (!(rate > 0)) throw new AudioFormatError('WAV declares a sample rate of 0');
  const pcm = format === 1, float = format === 3;
  if (!(pcm && [8, 16, 24, 32].includes(bits)) && !(float && (bits === 32 || bits === 64))) {
    throw new AudioFormatError(`unsupported WAV encoding (format tag ${format}, ${bits} bits): send PCM 8/16/24/32-bit or IEEE float 32/64-bit`);
  }
  const bytesPer = bits / 8;
  const frames = Math.floor(length / (bytesPer * channels));
  if (truncated && frames === 0) throw new AudioFormatError('truncated WAV: the data chunk holds no complete sample');
  const dv = new DataView(bytes.buffer, bytes.byteOffset + start, frames * bytesPer * channels);
  const read = (o: number): number => {
    if (float) return bits === 32 ? dv.getFloat32(o, true) : dv.getFloat64(o, true);
    if (bits === 8) return (dv.getUint8(o) - 128) / 128;
    if (bits === 16) return dv.getInt16(o, true) / 32768;
    if (bits === 24) return (((dv.getUint8(o + 2) << 24) | (dv.getUint8(o + 1) << 16) | (dv.getUint8(o) << 8)) >> 8) / 8388608;
    return dv.getInt32(o, true) / 2147483648;
  };
  const samples = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    let s = 0;
    for (let c = 0; c < channels; c++) s += read((i * channels + c) * bytesPer);
    samples[i] = s / channels;
  }
  return { sampleRate: rate, samples };
}

/**
 * Resamples with a Hann-windowed sinc low-pass (cut-off at the lower Nyquist, 16 zero crossings each side), so
 * downsampling does not fold high frequencies back into the band the model hears.
 */
export function resample(wave: Waveform, rate: number): Waveform {
  if (wave.sampleRate === rate) return wave;
  const ratio = rate / wave.sampleRate;
  const n = Math.floor(wave.samples.length * ratio);
  const out = new Float32Array(n);
  const cutoff = Math.min(1, ratio);
  const half = 16 / cutoff;
  const x = wave.samples;
  for (let i = 0; i < n; i++) {
    const t = i / ratio;
    const lo = Math.max(0, Math.ceil(t - half)), hi = Math.min(x.length - 1, Math.floor(t + half));
    let s = 0;
    for (let j = lo; j <= hi; j++) {
      const d = j - t;
      const arg = Math.PI * d * cutoff;
      const sinc = d === 0 ? 1 : Math.sin(arg) / arg;
      const w = 0.5 + 0.5 * Math.cos((Math.PI * d) / half);
      s += x[j] * sinc * w * cutoff;
    }
    out[i] = s;
  }
  return { sampleRate: rate, samples: out };
}

/** The keyword example's features: frames of log-mel energies (see examples/keyword/README.md). */
export interface LogMelFeatures {
  type: 'log_mel';
  window: number;
  hop: number;
  n_fft: number;
  n_mels: number;
  frames: number;
  /** Round each value to this many decimals (the example rounds to 2); absent = no rounding. */
  decimals?: number;
}

export interface AudioStep {
  input: string;
  sample_rate: number;
  /** Absent = the raw mono waveform, padded or trimmed to `samples` when given. */
  features?: LogMelFeatures;
  samples?: number;
  /** Run a recurrent model window by window over the file, carrying its state (Silero VAD). */
  windows?: AudioWindows;
}

function melFilterbank(rate: number, nFft: number, nMels: number): Float64Array[] {
  const toMel = (f: number) => 2595 * Math.log10(1 + f / 700);
  const toHz = (m: number) => 700 * (10 ** (m / 2595) - 1);
  const top = toMel(rate / 2);
  const edges = Array.from({ length: nMels + 2 }, (_, i) => toHz((top * i) / (nMels + 1)));
  const bins = nFft / 2 + 1;
  return Array.from({ length: nMels }, (_, m) => {
    const row = new Float64Array(bins);
    const [lo, mid, hi] = [edges[m], edges[m + 1], edges[m + 2]];
    for (let k = 0; k < bins; k++) {
      const f = (k * rate) / 2 / (bins - 1);
      row[k] = Math.max(0, Math.min((f - lo) / (mid - lo), (hi - f) / (hi - mid)));
    }
    return row;
  });
}

/** In-place radix-2 FFT of (re, im); length a power of two. */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(ang * k), wi = Math.sin(ang * k);
        const a = i + k, b = a + len / 2;
        const tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr; im[b] = im[a] - ti;
        re[a] += tr; im[a] += ti;
      }
    }
  }
}

/** [frames, n_mels] log-mel energies of mono samples at `rate` (padded with zeros or trimmed to fill the frames). */
export function logMel(samples: Float32Array, rate: number, f: LogMelFeatures): Float32Array {
  if (f.n_fft & (f.n_fft - 1) || f.n_fft < f.window) throw new RangeError('n_fft must be a power of two ≥ window');
  const need = f.window + f.hop * (f.frames - 1);
  const x = new Float64Array(need);
  for (let i = 0; i < Math.min(need, samples.length); i++) x[i] = samples[i];
  const fb = melFilterbank(rate, f.n_fft, f.n_mels);
  const win = Float64Array.from({ length: f.window }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / f.window)); // periodic Hann
  const out = new Float32Array(f.frames * f.n_mels);
  const re = new Float64Array(f.n_fft), im = new Float64Array(f.n_fft);
  const power = new Float64Array(f.n_fft / 2 + 1);
  const unit = f.decimals === undefined ? 0 : 10 ** f.decimals;
  for (let t = 0; t < f.frames; t++) {
    re.fill(0); im.fill(0);
    for (let i = 0; i < f.window; i++) re[i] = x[t * f.hop + i] * win[i];
    fft(re, im);
    for (let k = 0; k < power.length; k++) power[k] = re[k] * re[k] + im[k] * im[k];
    for (let m = 0; m < f.n_mels; m++) {
      let e = 0;
      const row = fb[m];
      for (let k = 0; k < power.length; k++) e += power[k] * row[k];
      const v = Math.log(e + 1e-6);
      // numpy rounds half to even; at two decimals of a log the difference is only at exact ties.
      out[t * f.n_mels + m] = unit ? Math.round(v * unit) / unit : v;
    }
  }
  return out;
}

/** A WAV file → the model's tensor for one clip (no batch dimension). */
export function audioToTensor(bytes: Uint8Array, step: AudioStep): { data: Float32Array; shape: number[] } {
  const wave = resample(parseWav(bytes), step.sample_rate);
  if (step.features) {
    const f = step.features;
    return { data: logMel(wave.samples, step.sample_rate, f), shape: [f.frames, f.n_mels] };
  }
  if (step.samples === undefined) return { data: wave.samples, shape: [wave.samples.length] };
  const data = new Float32Array(step.samples);
  data.set(wave.samples.subarray(0, step.samples));
  return { data, shape: [step.samples] };
}
