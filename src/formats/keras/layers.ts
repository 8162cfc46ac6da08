// One converter per Keras layer class. Tensors keep Keras's own layout (channels-last) everywhere, so Flatten,
// Reshape, Dense and Concatenate need no layout bookkeeping; only the ONNX ops that want channels-first
// (Conv, pooling) are wrapped in a Transpose pair, which onnxruntime's transpose optimizer folds away.
import { activationSpec, applyActivation, rnnActivation, type ActivationContext } from './activations.ts';
import { KerasImportError, unsupported } from './errors.ts';
import type { FloatTensor } from './hdf5.ts';
import type { LayerWeights } from './weights.ts';
import type { KerasLayer } from './model-config.ts';
import { DT, type GraphBuilder, type Shape, type Value } from './onnx-builder.ts';

export interface LayerContext extends ActivationContext {
  layer: KerasLayer;
  inputs: Value[];
  /** The layer's weights in the order Keras created them; `expected` names them for the error message. */
  weights(expected: string[]): FloatTensor[];
  /** All of the layer's weights with the names the file gives them (wrappers sort them by name). */
  rawWeights(): LayerWeights;
  /** An initializer shared by every call of the layer (a layer called twice uses its weights once). */
  constant(key: string, make: () => string): string;
  notes: string[];
}

export type LayerConverter = (ctx: LayerContext) => Value[];

type Cfg = Record<string, unknown>;

// ---- config helpers --------------------------------------------------------------------------------

function cfgOf(ctx: LayerContext): Cfg {
  return ctx.layer.config;
}

function bool(cfg: Cfg, key: string, fallback: boolean): boolean {
  const v = cfg[key];
  return typeof v === 'boolean' ? v : fallback;
}

function num(cfg: Cfg, key: string, fallback: number): number {
  const v = cfg[key];
  return typeof v === 'number' ? v : fallback;
}

function str(cfg: Cfg, key: string, fallback: string): string {
  const v = cfg[key];
  return typeof v === 'string' ? v : fallback;
}

/** An int-or-tuple option (kernel_size, strides, ...) as n ints. */
function tuple(ctx: LayerContext, key: string, n: number, fallback?: number[]): number[] {
  const v = cfgOf(ctx)[key];
  if (typeof v === 'number') return Array(n).fill(v);
  if (Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number')) return v as number[];
  if ((v === undefined || v === null) && fallback) return fallback;
  throw unsupported(ctx.layer, `option ${key}=${JSON.stringify(v)} is not ${n === 1 ? 'an integer' : `an integer or ${n} integers`}`);
}

function oneInput(ctx: LayerContext): Value {
  if (ctx.inputs.length !== 1) throw unsupported(ctx.layer, `expects one input, got ${ctx.inputs.length}`);
  return ctx.inputs[0];
}

function rank(ctx: LayerContext, v: Value, ...allowed: number[]): number {
  if (!allowed.includes(v.shape.length)) {
    throw unsupported(ctx.layer, `input has rank ${v.shape.length} (shape [${v.shape.map((d) => d ?? 'None')}]); expected rank ${allowed.join(' or ')}`);
  }
  return v.shape.length;
}

function channelsFirst(ctx: LayerContext): boolean {
  const f = str(cfgOf(ctx), 'data_format', 'channels_last');
  if (f !== 'channels_last' && f !== 'channels_first') throw unsupported(ctx.layer, `data_format '${f}' is not channels_last or channels_first`);
  return f === 'channels_first';
}

function activation(ctx: LayerContext, x: string, hint: string): string {
  return applyActivation(ctx, x, activationSpec(ctx, cfgOf(ctx).activation), hint);
}

function f32(t: FloatTensor): Float32Array {
  return t.data;
}

function checkShape(ctx: LayerContext, what: string, t: FloatTensor, expected: (number | null)[]): void {
  const ok = t.shape.length === expected.length && expected.every((d, i) => d === null || d === t.shape[i]);
  if (!ok) {
    throw new KerasImportError(
      'MISSING_WEIGHTS',
      `layer '${ctx.layer.name}' (${ctx.layer.className}): weight '${what}' has shape [${t.shape}], expected [${expected.map((d) => d ?? '?')}] from the layer config`,
      ctx.layer,
    );
  }
}

/** Transposes a row-major array of the given dims by perm (numpy.transpose semantics). */
export function transposeArray(data: Float32Array, dims: number[], perm: number[]): { data: Float32Array; dims: number[] } {
  const r = dims.length;
  const outDims = perm.map((p) => dims[p]);
  const inStrides = new Array<number>(r);
  let s = 1;
  for (let i = r - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= dims[i];
  }
  const out = new Float32Array(data.length);
  const idx = new Array<number>(r).fill(0);
  const permStrides = perm.map((p) => inStrides[p]);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < r; i++) src += idx[i] * permStrides[i];
    out[o] = data[src];
    for (let i = r - 1; i >= 0; i--) {
      if (++idx[i] < outDims[i]) break;
      idx[i] = 0;
    }
  }
  return { data: out, dims: outDims };
}

const value = (name: string, shape: Shape, elemType: number = DT.FLOAT): Value => ({ name, shape, elemType });

// ---- core layers -----------------------------------------------------------------------------------

const dense: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const cfg = cfgOf(ctx);
  const units = num(cfg, 'units', NaN);
  const useBias = bool(cfg, 'use_bias', true);
  const w = ctx.weights(useBias ? ['kernel', 'bias'] : ['kernel']);
  const inDim = x.shape[x.shape.length - 1];
  checkShape(ctx, 'kernel', w[0], [inDim, Number.isNaN(units) ? null : units]);
  const outUnits = w[0].shape[1];
  const { b, layer } = ctx;
  const kernel = ctx.constant('kernel', () => b.floatConst(`${layer.name}/kernel`, w[0].shape, f32(w[0])));
  // MatMul broadcasts over leading axes, which is exactly Keras's Dense on rank > 2 (applied to the last axis).
  let y = b.op1('MatMul', [x.name, kernel], `${layer.name}/MatMul`);
  if (useBias) {
    checkShape(ctx, 'bias', w[1], [outUnits]);
    const bias = ctx.constant('bias', () => b.floatConst(`${layer.name}/bias`, [outUnits], f32(w[1])));
    y = b.op1('Add', [y, bias], `${layer.name}/BiasAdd`);
  }
  return [value(activation(ctx, y, `${layer.name}/${activationName(ctx)}`), [...x.shape.slice(0, -1), outUnits])];
};

function activationName(ctx: LayerContext): string {
  const a = cfgOf(ctx).activation;
  return typeof a === 'string' ? a : 'activation';
}

const activationLayer: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  return [value(activation(ctx, x.name, `${ctx.layer.name}/${activationName(ctx)}`), x.shape)];
};

const identity: LayerConverter = (ctx) => [oneInput(ctx)];

/** Layers that only act while training; reported in the conversion notes. */
export function isTrainingOnly(className: string): boolean {
  return LAYERS[className] === identity;
}

const relu: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const cfg = cfgOf(ctx);
  const { b, layer } = ctx;
  const maxValue = cfg.max_value;
  const slope = num(cfg, 'negative_slope', 0);
  const threshold = num(cfg, 'threshold', 0);
  if (threshold !== 0) throw unsupported(layer, 'ReLU with a non-zero threshold is not supported');
  let y = slope === 0 ? b.op1('Relu', [x.name], `${layer.name}/Relu`) : b.op1('LeakyRelu', [x.name], `${layer.name}/LeakyRelu`, { alpha: { f: slope } });
  if (typeof maxValue === 'number') {
    y = b.op1('Min', [y, b.floatConst(`${layer.name}/max_value`, [], [maxValue])], `${layer.name}/Min`);
  }
  return [value(y, x.shape)];
};

const leakyRelu: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const cfg = cfgOf(ctx);
  // Keras 2 calls the slope alpha (default 0.3), Keras 3 negative_slope (default 0.3).
  const slope = num(cfg, 'negative_slope', num(cfg, 'alpha', 0.3));
  return [value(ctx.b.op1('LeakyRelu', [x.name], `${ctx.layer.name}/LeakyRelu`, { alpha: { f: slope } }), x.shape)];
};

const eluLayer: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  return [value(ctx.b.op1('Elu', [x.name], `${ctx.layer.name}/Elu`, { alpha: { f: num(cfgOf(ctx), 'alpha', 1) } }), x.shape)];
};

const softmaxLayer: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const axis = cfgOf(ctx).axis ?? -1;
  if (typeof axis !== 'number') throw unsupported(ctx.layer, `softmax over several axes (${JSON.stringify(axis)}) is not supported`);
  return [value(ctx.b.op1('Softmax', [x.name], `${ctx.layer.name}/Softmax`, { axis }), x.shape)];
};

const flatten: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const { b, layer } = ctx;
  let src = x.name;
  const r = x.shape.length;
  // Keras's Flatten on channels_first data first moves channels last, so the flat order is always channels-last.
  if (channelsFirst(ctx) && r > 2) {
    src = b.op1('Transpose', [src], `${layer.name}/to_channels_last`, { perm: [0, ...range(2, r), 1] });
  }
  const rest = x.shape.slice(1);
  const size = rest.every((d) => d !== null) ? (rest as number[]).reduce((a, c) => a * c, 1) : null;
  return [value(b.op1('Flatten', [src], `${layer.name}/Flatten`, { axis: 1 }), [x.shape[0], size])];
};

const reshape: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const target = cfgOf(ctx).target_shape;
  if (!Array.isArray(target) || !target.every((d) => typeof d === 'number')) throw unsupported(ctx.layer, `target_shape ${JSON.stringify(target)} is not a list of integers`);
  const t = target as number[];
  const { b, layer } = ctx;
  // 0 copies the batch dimension from the input; a -1 in the target stays -1.
  const shape = b.int64Const(`${layer.name}/shape`, [0, ...t]);
  let outShape: Shape = [x.shape[0], ...t.map((d) => (d === -1 ? null : d))];
  const known = x.shape.slice(1);
  if (t.includes(-1) && known.every((d) => d !== null)) {
    const total = (known as number[]).reduce((a, c) => a * c, 1);
    const rest = t.filter((d) => d !== -1).reduce((a, c) => a * c, 1);
    outShape = [x.shape[0], ...t.map((d) => (d === -1 ? total / rest : d))];
  }
  return [value(b.op1('Reshape', [x.name, shape], `${layer.name}/Reshape`), outShape)];
};

const permute: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const dims = cfgOf(ctx).dims;
  if (!Array.isArray(dims)) throw unsupported(ctx.layer, 'dims is missing');
  const perm = [0, ...(dims as number[])];
  return [value(ctx.b.op1('Transpose', [x.name], `${ctx.layer.name}/Transpose`, { perm }), perm.map((p) => x.shape[p]))];
};

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

// ---- convolutions and pooling ----------------------------------------------------------------------

interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  padding: string;
}

/** ONNX pads (and output sizes) for Keras/TensorFlow padding: 'same' puts the odd extra cell at the end. */
function windowPads(sizes: (number | null)[], w: Window): { pads?: number[]; autoPad?: string; out: (number | null)[] } {
  const n = sizes.length;
  const before: number[] = [];
  const after: number[] = [];
  const out: (number | null)[] = [];
  for (let i = 0; i < n; i++) {
    const eff = (w.kernel[i] - 1) * w.dilations[i] + 1;
    const size = sizes[i];
    const s = w.strides[i];
    if (w.padding === 'valid') {
      before.push(0);
      after.push(0);
      out.push(size === null ? null : Math.floor((size - eff) / s) + 1);
    } else if (w.padding === 'causal') {
      before.push(eff - 1);
      after.push(0);
      out.push(size === null ? null : Math.floor((size - 1) / s) + 1);
    } else if (size !== null) {
      const o = Math.ceil(size / s);
      const total = Math.max((o - 1) * s + eff - size, 0);
      before.push(Math.floor(total / 2));
      after.push(total - Math.floor(total / 2));
      out.push(o);
    } else if (s === 1) {
      before.push(Math.floor((eff - 1) / 2));
      after.push(eff - 1 - Math.floor((eff - 1) / 2));
      out.push(null);
    } else {
      // Unknown size with stride > 1: the padding depends on the size, which ONNX's SAME_UPPER computes at run time.
      return { autoPad: 'SAME_UPPER', out: sizes.map((d) => (d === null ? null : Math.ceil(d / s))) };
    }
  }
  return { pads: [...before, ...after], out };
}

/** Wraps a channels-first ONNX op for a channels-last Keras tensor. */
function channelsFirstOp(ctx: LayerContext, x: Value, cf: boolean, hint: string, body: (nchw: string) => string): string {
  const r = x.shape.length;
  const { b } = ctx;
  const input = cf ? x.name : b.op1('Transpose', [x.name], `${hint}/to_channels_first`, { perm: [0, r - 1, ...range(1, r - 1)] });
  const y = body(input);
  return cf ? y : b.op1('Transpose', [y], `${hint}/to_channels_last`, { perm: [0, ...range(2, r), 1] });
}

function spatial(x: Value, cf: boolean): { sizes: (number | null)[]; channels: number | null } {
  const r = x.shape.length;
  return cf ? { sizes: x.shape.slice(2), channels: x.shape[1] } : { sizes: x.shape.slice(1, r - 1), channels: x.shape[r - 1] };
}

function outShape(x: Value, cf: boolean, sizes: (number | null)[], channels: number | null): Shape {
  return cf ? [x.shape[0], channels, ...sizes] : [x.shape[0], ...sizes, channels];
}

function readWindow(ctx: LayerContext, n: number, opts: { pool?: boolean } = {}): Window {
  const cfg = cfgOf(ctx);
  const padding = str(cfg, 'padding', 'valid').toLowerCase();
  if (!['valid', 'same', ...(opts.pool ? [] : ['causal'])].includes(padding)) throw unsupported(ctx.layer, `padding '${padding}' is not supported`);
  if (opts.pool) {
    // Keras 1-style names (pool_length, stride) are not read: those files are refused earlier.
    const kernel = tuple(ctx, 'pool_size', n);
    return { kernel, strides: tuple(ctx, 'strides', n, kernel), dilations: Array(n).fill(1), padding };
  }
  const kernel = tuple(ctx, 'kernel_size', n);
  const strides = tuple(ctx, 'strides', n, Array(n).fill(1));
  const dilations = tuple(ctx, 'dilation_rate', n, Array(n).fill(1));
  if (strides.some((s) => s !== 1) && dilations.some((d) => d !== 1)) throw unsupported(ctx.layer, 'strides > 1 together with dilation_rate > 1 is not allowed by Keras either');
  return { kernel, strides, dilations, padding };
}

function convOp(ctx: LayerContext, x: Value, cf: boolean, win: Window, weight: string, bias: string | undefined, group: number, outChannels: number, hint: string): Value {
  const { sizes } = spatial(x, cf);
  const p = windowPads(sizes, win);
  const attrs: Record<string, number[] | number | string> = { kernel_shape: win.kernel, strides: win.strides, dilations: win.dilations, group };
  if (p.pads) attrs.pads = p.pads;
  else attrs.auto_pad = p.autoPad!;
  const y = channelsFirstOp(ctx, x, cf, hint, (nchw) => ctx.b.op1('Conv', bias ? [nchw, weight, bias] : [nchw, weight], `${hint}/Conv`, attrs));
  return value(y, outShape(x, cf, p.out, outChannels));
}

/** Keras kernel (*k, in, out) → ONNX weight (out, in, *k). */
function onnxKernel(t: FloatTensor): { data: Float32Array; dims: number[] } {
  const r = t.shape.length;
  return transposeArray(t.data, t.shape, [r - 1, r - 2, ...range(0, r - 2)]);
}

function convN(n: number): LayerConverter {
  return (ctx) => {
    const x = oneInput(ctx);
    rank(ctx, x, n + 2);
    const cfg = cfgOf(ctx);
    const cf = channelsFirst(ctx);
    const win = readWindow(ctx, n);
    if (win.padding === 'causal' && n !== 1) throw unsupported(ctx.layer, "padding 'causal' exists only for Conv1D");
    const groups = num(cfg, 'groups', 1);
    const useBias = bool(cfg, 'use_bias', true);
    const w = ctx.weights(useBias ? ['kernel', 'bias'] : ['kernel']);
    const { channels } = spatial(x, cf);
    const filters = num(cfg, 'filters', w[0].shape[n + 1]);
    checkShape(ctx, 'kernel', w[0], [...win.kernel, channels === null ? null : channels / groups, filters]);
    const { b, layer } = ctx;
    const weight = ctx.constant('kernel', () => {
      const k = onnxKernel(w[0]);
      return b.floatConst(`${layer.name}/kernel`, k.dims, k.data);
    });
    let bias: string | undefined;
    if (useBias) {
      checkShape(ctx, 'bias', w[1], [filters]);
      bias = ctx.constant('bias', () => b.floatConst(`${layer.name}/bias`, [filters], f32(w[1])));
    }
    const y = convOp(ctx, x, cf, win, weight, bias, groups, filters, layer.name);
    return [value(activation(ctx, y.name, `${layer.name}/${activationName(ctx)}`), y.shape)];
  };
}

/** Conv1DTranspose / Conv2DTranspose / Conv3DTranspose: TensorFlow's 'same' and 'valid' output sizes. */
function convTransposeN(n: number): LayerConverter {
  return (ctx) => {
    const x = oneInput(ctx);
    rank(ctx, x, n + 2);
    const cfg = cfgOf(ctx);
    const cf = channelsFirst(ctx);
    const win = readWindow(ctx, n);
    if (win.padding === 'causal') throw unsupported(ctx.layer, "padding 'causal' is not supported");
    if (cfg.output_padding !== undefined && cfg.output_padding !== null) throw unsupported(ctx.layer, 'an explicit output_padding is not supported');
    const useBias = bool(cfg, 'use_bias', true);
    const w = ctx.weights(useBias ? ['kernel', 'bias'] : ['kernel']);
    const { sizes, channels } = spatial(x, cf);
    const filters = num(cfg, 'filters', w[0].shape[n]);
    // Keras stores a transposed kernel as (*k, filters, in_channels); ONNX wants (in_channels, filters, *k).
    checkShape(ctx, 'kernel', w[0], [...win.kernel, filters, channels]);
    const { b, layer } = ctx;
    const weight = ctx.constant('kernel', () => {
      const k = onnxKernel(w[0]);
      return b.floatConst(`${layer.name}/kernel`, k.dims, k.data);
    });
    let bias: string | undefined;
    if (useBias) {
      checkShape(ctx, 'bias', w[1], [filters]);
      bias = ctx.constant('bias', () => b.floatConst(`${layer.name}/bias`, [filters], f32(w[1])));
    }
    // Output size: 'same' in*s, 'valid' in*s + max(k_eff - s, 0) (keras deconv_output_length). The full scatter is
    // (in-1)*s + k_eff long: 'same' crops max(k_eff - s, 0) (the smaller half first), and both pad with
    // output_padding when k_eff < s.
    const before: number[] = [];
    const after: number[] = [];
    const outPad: number[] = [];
    const out: (number | null)[] = [];
    for (let i = 0; i < n; i++) {
      const eff = (win.kernel[i] - 1) * win.dilations[i] + 1;
      const s = win.strides[i];
      const total = win.padding === 'same' ? Math.max(eff - s, 0) : 0;
      before.push(Math.floor(total / 2));
      after.push(total - Math.floor(total / 2));
      outPad.push(Math.max(s - eff, 0));
      const size = sizes[i];
      out.push(size === null ? null : win.padding === 'same' ? size * s : size * s + Math.max(eff - s, 0));
    }
    const attrs = { kernel_shape: win.kernel, strides: win.strides, dilations: win.dilations, pads: [...before, ...after], output_padding: outPad };
    const y = channelsFirstOp(ctx, x, cf, layer.name, (nchw) => b.op1('ConvTranspose', bias ? [nchw, weight, bias] : [nchw, weight], `${layer.name}/ConvTranspose`, attrs));
    return [value(activation(ctx, y, `${layer.name}/${activationName(ctx)}`), outShape(x, cf, out, filters))];
  };
}

/** Keras depthwise kernel (*k, in, multiplier) → ONNX grouped-conv weight (in*multiplier, 1, *k). */
function depthwiseKernel(t: FloatTensor): { data: Float32Array; dims: number[] } {
  const r = t.shape.length;
  const k = t.shape.slice(0, r - 2);
  const merged = t.shape[r - 2] * t.shape[r - 1];
  // (*k, in, mult) read as (*k, in*mult): output channel c*mult + m, the order TensorFlow gives them.
  const tr = transposeArray(t.data, [...k, merged], [k.length, ...range(0, k.length)]);
  return { data: tr.data, dims: [merged, 1, ...k] };
}

function depthwiseN(n: number): LayerConverter {
  return (ctx) => {
    const x = oneInput(ctx);
    rank(ctx, x, n + 2);
    const cfg = cfgOf(ctx);
    const cf = channelsFirst(ctx);
    const win = readWindow(ctx, n);
    const mult = num(cfg, 'depth_multiplier', 1);
    const useBias = bool(cfg, 'use_bias', true);
    const w = ctx.weights(useBias ? ['depthwise_kernel', 'bias'] : ['depthwise_kernel']);
    const { channels } = spatial(x, cf);
    if (channels === null) throw unsupported(ctx.layer, 'the number of input channels is not known from the model config');
    checkShape(ctx, 'depthwise_kernel', w[0], [...win.kernel, channels, mult]);
    const { b, layer } = ctx;
    const weight = ctx.constant('depthwise_kernel', () => {
      const k = depthwiseKernel(w[0]);
      return b.floatConst(`${layer.name}/depthwise_kernel`, k.dims, k.data);
    });
    let bias: string | undefined;
    if (useBias) {
      checkShape(ctx, 'bias', w[1], [channels * mult]);
      bias = ctx.constant('bias', () => b.floatConst(`${layer.name}/bias`, [channels * mult], f32(w[1])));
    }
    const y = convOp(ctx, x, cf, win, weight, bias, channels, channels * mult, layer.name);
    return [value(activation(ctx, y.name, `${layer.name}/${activationName(ctx)}`), y.shape)];
  };
}

function separableN(n: number): LayerConverter {
  return (ctx) => {
    const x = oneInput(ctx);
    rank(ctx, x, n + 2);
    const cfg = cfgOf(ctx);
    const cf = channelsFirst(ctx);
    const win = readWindow(ctx, n);
    const mult = num(cfg, 'depth_multiplier', 1);
    const useBias = bool(cfg, 'use_bias', true);
    const w = ctx.weights(useBias ? ['depthwise_kernel', 'pointwise_kernel', 'bias'] : ['depthwise_kernel', 'pointwise_kernel']);
    const { channels } = spatial(x, cf);
    if (channels === null) throw unsupported(ctx.layer, 'the number of input channels is not known from the model config');
    const filters = num(cfg, 'filters', w[1].shape[n + 1]);
    checkShape(ctx, 'depthwise_kernel', w[0], [...win.kernel, channels, mult]);
    checkShape(ctx, 'pointwise_kernel', w[1], [...Array(n).fill(1), channels * mult, filters]);
    const { b, layer } = ctx;
    const dw = ctx.constant('depthwise_kernel', () => {
      const k = depthwiseKernel(w[0]);
      return b.floatConst(`${layer.name}/depthwise_kernel`, k.dims, k.data);
    });
    const pw = ctx.constant('pointwise_kernel', () => {
      const k = onnxKernel(w[1]);
      return b.floatConst(`${layer.name}/pointwise_kernel`, k.dims, k.data);
    });
    let bias: string | undefined;
    if (useBias) {
      checkShape(ctx, 'bias', w[2], [filters]);
      bias = ctx.constant('bias', () => b.floatConst(`${layer.name}/bias`, [filters], f32(w[2])));
    }
    const { sizes } = spatial(x, cf);
    const p = windowPads(sizes, win);
    const dwAttrs: Record<string, number[] | number | string> = { kernel_shape: win.kernel, strides: win.strides, dilations: win.dilations, group: channels };
    if (p.pads) dwAttrs.pads = p.pads;
    else dwAttrs.auto_pad = p.autoPad!;
    const y = channelsFirstOp(ctx, x, cf, layer.name, (nchw) => {
      const d = b.op1('Conv', [nchw, dw], `${layer.name}/depthwise`, dwAttrs);
      return b.op1('Conv', bias ? [d, pw, bias] : [d, pw], `${layer.name}/pointwise`, { kernel_shape: Array(n).fill(1), group: 1 });
    });
    return [value(activation(ctx, y, `${layer.name}/${activationName(ctx)}`), outShape(x, cf, p.out, filters))];
  };
}

function poolN(n: number, kind: 'max' | 'avg'): LayerConverter {
  return (ctx) => {
    const x = oneInput(ctx);
    rank(ctx, x, n + 2);
    const cf = channelsFirst(ctx);
    const win = readWindow(ctx, n, { pool: true });
    const { sizes, channels } = spatial(x, cf);
    const p = windowPads(sizes, win);
    const attrs: Record<string, number[] | number | string> = { kernel_shape: win.kernel, strides: win.strides };
    if (p.pads) attrs.pads = p.pads;
    else attrs.auto_pad = p.autoPad!;
    // TensorFlow averages over the real cells of a padded window only.
    if (kind === 'avg') attrs.count_include_pad = 0;
    const { layer } = ctx;
    const y = channelsFirstOp(ctx, x, cf, layer.name, (nchw) => ctx.b.op1(kind === 'max' ? 'MaxPool' : 'AveragePool', [nchw], `${layer.name}/${kind === 'max' ? 'MaxPool' : 'AveragePool'}`, attrs));
    return [value(y, outShape(x, cf, p.out, channels))];
  };
}

function globalPoolN(n: number, kind: 'max' | 'avg'): LayerConverter {
  return (ctx) => {
    const x = oneInput(ctx);
    rank(ctx, x, n + 2);
    const cf = channelsFirst(ctx);
    const keep = bool(cfgOf(ctx), 'keepdims', false);
    const axes = cf ? range(2, n + 2) : range(1, n + 1);
    const op = kind === 'max' ? 'ReduceMax' : 'ReduceMean';
    const y = ctx.b.op1(op, [x.name], `${ctx.layer.name}/${op}`, { axes, keepdims: keep ? 1 : 0 });
    const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    return [value(y, shape)];
  };
}

function zeroPaddingN(n: number): LayerConverter {
  return (ctx) => {
    const x = oneInput(ctx);
    const r = rank(ctx, x, n + 2);
    const cf = channelsFirst(ctx);
    const raw = cfgOf(ctx).padding;
    let pairs: [number, number][];
    if (typeof raw === 'number') pairs = Array.from({ length: n }, () => [raw, raw]);
    else if (Array.isArray(raw) && raw.length === n && raw.every((v) => typeof v === 'number')) pairs = (raw as number[]).map((v) => [v, v]);
    else if (Array.isArray(raw) && raw.length === n && raw.every((v) => Array.isArray(v) && v.length === 2)) pairs = raw as [number, number][];
    else if (n === 1 && Array.isArray(raw) && raw.length === 2 && raw.every((v) => typeof v === 'number')) pairs = [raw as [number, number]];
    else throw unsupported(ctx.layer, `padding ${JSON.stringify(raw)} is not understood`);
    const before = new Array<number>(r).fill(0);
    const after = new Array<number>(r).fill(0);
    const first = cf ? 2 : 1;
    pairs.forEach(([a, z], i) => {
      before[first + i] = a;
      after[first + i] = z;
    });
    const { b, layer } = ctx;
    const pads = b.int64Const(`${layer.name}/pads`, [...before, ...after]);
    const y = b.op1('Pad', [x.name, pads], `${layer.name}/Pad`, { mode: 'constant' });
    return [value(y, x.shape.map((d, i) => (d === null ? null : d + before[i] + after[i])))];
  };
}

// ---- normalization ---------------------------------------------------------------------------------

const batchNormalization: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const cfg = cfgOf(ctx);
  const r = x.shape.length;
  let axis = cfg.axis ?? -1;
  if (Array.isArray(axis)) {
    if (axis.length !== 1) throw unsupported(ctx.layer, `normalizing over several axes (${JSON.stringify(axis)}) is not supported`);
    axis = axis[0];
  }
  if (typeof axis !== 'number') throw unsupported(ctx.layer, `axis ${JSON.stringify(axis)} is not an integer`);
  const ax = axis < 0 ? r + axis : axis;
  if (ax <= 0 || ax >= r) throw unsupported(ctx.layer, `axis ${axis} does not fit an input of rank ${r}`);
  const c = x.shape[ax];
  if (c === null) throw unsupported(ctx.layer, `the size of axis ${axis} is not known from the model config`);
  const scale = bool(cfg, 'scale', true);
  const center = bool(cfg, 'center', true);
  const eps = num(cfg, 'epsilon', 1e-3);
  const names = [...(scale ? ['gamma'] : []), ...(center ? ['beta'] : []), 'moving_mean', 'moving_variance'];
  const w = ctx.weights(names);
  w.forEach((t, i) => checkShape(ctx, names[i], t, [c]));
  const gamma = scale ? w[0].data : undefined;
  const beta = center ? w[scale ? 1 : 0].data : undefined;
  const mean = w[names.length - 2].data;
  const variance = w[names.length - 1].data;
  // Inference-time batch norm is an affine map per channel; folded in float64, applied as one Mul and one Add.
  const mul = new Float32Array(c);
  const add = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const s = (gamma ? gamma[i] : 1) / Math.sqrt(variance[i] + eps);
    mul[i] = s;
    add[i] = (beta ? beta[i] : 0) - mean[i] * s;
  }
  const dims = [c, ...Array(r - 1 - ax).fill(1)];
  const { b, layer } = ctx;
  const m = ctx.constant('scale', () => b.floatConst(`${layer.name}/scale`, dims, mul));
  const a = ctx.constant('shift', () => b.floatConst(`${layer.name}/shift`, dims, add));
  const y = b.op1('Add', [b.op1('Mul', [x.name, m], `${layer.name}/Mul`), a], `${layer.name}/Add`);
  return [value(y, x.shape)];
};

// ---- merging -------------------------------------------------------------------------------------

function broadcastShape(shapes: Shape[]): Shape {
  const r = Math.max(...shapes.map((s) => s.length));
  const out: Shape = [];
  for (let i = 0; i < r; i++) {
    const dims = shapes.map((s) => s[s.length - r + i]).filter((d) => d !== undefined);
    const known = dims.filter((d): d is number => d !== null && d !== 1);
    out.push(known.length ? known[0] : dims.some((d) => d === null) ? null : 1);
  }
  return out;
}

function merge(op: 'Add' | 'Mul' | 'Max' | 'Min' | 'Mean' | 'Sub'): LayerConverter {
  return (ctx) => {
    const xs = ctx.inputs;
    if (xs.length < 2 || (op === 'Sub' && xs.length !== 2)) throw unsupported(ctx.layer, `expects ${op === 'Sub' ? 'two inputs' : 'at least two inputs'}, got ${xs.length}`);
    const { b, layer } = ctx;
    let y: string;
    if (op === 'Max' || op === 'Min' || op === 'Mean') y = b.op1(op, xs.map((x) => x.name), `${layer.name}/${op}`);
    else {
      y = xs[0].name;
      for (let i = 1; i < xs.length; i++) y = b.op1(op, [y, xs[i].name], `${layer.name}/${op}`);
    }
    return [value(y, broadcastShape(xs.map((x) => x.shape)))];
  };
}

const concatenate: LayerConverter = (ctx) => {
  const xs = ctx.inputs;
  if (xs.length < 1) throw unsupported(ctx.layer, 'has no inputs');
  const axis = num(cfgOf(ctx), 'axis', -1);
  const r = xs[0].shape.length;
  const ax = axis < 0 ? r + axis : axis;
  const shape = xs[0].shape.slice();
  const parts = xs.map((x) => x.shape[ax]);
  shape[ax] = parts.every((d) => d !== null) ? (parts as number[]).reduce((a, c) => a + c, 0) : null;
  return [value(ctx.b.op1('Concat', xs.map((x) => x.name), `${ctx.layer.name}/Concat`, { axis }), shape)];
};

// ---- embedding -----------------------------------------------------------------------------------

const embedding: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const cfg = cfgOf(ctx);
  if (bool(cfg, 'mask_zero', false)) {
    throw unsupported(ctx.layer, 'mask_zero=True makes later layers skip padded steps, which the converter does not reproduce; save the model with mask_zero=False');
  }
  const w = ctx.weights(['embeddings']);
  checkShape(ctx, 'embeddings', w[0], [num(cfg, 'input_dim', w[0].shape[0]), num(cfg, 'output_dim', w[0].shape[1])]);
  const { b, layer } = ctx;
  const table = ctx.constant('embeddings', () => b.floatConst(`${layer.name}/embeddings`, w[0].shape, f32(w[0])));
  // Keras feeds float inputs to Embedding and casts them; Gather wants integer indices.
  const idx = x.elemType === DT.INT64 || x.elemType === DT.INT32 ? x.name : b.op1('Cast', [x.name], `${layer.name}/indices`, { to: DT.INT64 });
  return [value(b.op1('Gather', [table, idx], `${layer.name}/Gather`, { axis: 0 }), [...x.shape, w[0].shape[1]])];
};

// ---- recurrent layers ----------------------------------------------------------------------------

export type RnnKind = 'LSTM' | 'GRU' | 'RNN';

/** Reorders gate blocks of a Keras (in, gates*units) matrix into ONNX's (gates*units, in) with gate order `order`. */
function gateMatrix(t: FloatTensor, units: number, order: number[]): Float32Array {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  order.forEach((kerasGate, onnxGate) => {
    for (let j = 0; j < units; j++) {
      const dst = (onnxGate * units + j) * rows;
      const src = kerasGate * units + j;
      for (let r = 0; r < rows; r++) out[dst + r] = t.data[r * cols + src];
    }
  });
  return out;
}

function gateVector(v: Float32Array, units: number, order: number[]): Float32Array {
  const out = new Float32Array(order.length * units);
  order.forEach((kerasGate, onnxGate) => out.set(v.subarray(kerasGate * units, (kerasGate + 1) * units), onnxGate * units));
  return out;
}

const RNN_KINDS: Record<string, RnnKind> = { LSTM: 'LSTM', GRU: 'GRU', SimpleRNN: 'RNN' };

/**
 * A recurrent layer (one direction, or both for Bidirectional) as one ONNX LSTM/GRU/RNN node.
 * `sets` holds each direction's weights (kernel, recurrent_kernel[, bias]); `merge` is Bidirectional's merge_mode.
 * Returns the Keras outputs: the sequence or last output, then (return_state) the states.
 */
export function recurrentOp(ctx: LayerContext, kind: RnnKind, cfg: Cfg, sets: FloatTensor[][], merge?: string | null): Value[] {
  const x = oneInput(ctx);
  rank(ctx, x, 3);
  const { b, layer } = ctx;
  if (bool(cfg, 'stateful', false)) throw unsupported(layer, 'stateful=True carries state between calls, which a served model cannot; save it with stateful=False');
  if (bool(cfg, 'time_major', false)) throw unsupported(layer, 'time_major=True is not supported');
  const units = num(cfg, 'units', NaN);
  if (!Number.isInteger(units)) throw unsupported(layer, 'units is missing');
  const gates = kind === 'LSTM' ? 4 : kind === 'GRU' ? 3 : 1;
  const useBias = bool(cfg, 'use_bias', true);
  const resetAfter = kind === 'GRU' && bool(cfg, 'reset_after', false);
  const inDim = x.shape[2];
  for (const w of sets) {
    checkShape(ctx, 'kernel', w[0], [inDim, gates * units]);
    checkShape(ctx, 'recurrent_kernel', w[1], [units, gates * units]);
    if (useBias) checkShape(ctx, 'bias', w[2], resetAfter ? [2, gates * units] : [gates * units]);
  }
  const dirs = sets.length;
  const features = sets[0][0].shape[0];
  // Keras LSTM gates are i, f, c, o; ONNX wants i, o, f, c. GRU (z, r, h) and SimpleRNN already match.
  const order = kind === 'LSTM' ? [0, 3, 1, 2] : kind === 'GRU' ? [0, 1, 2] : [0];
  const G = gates * units;
  const stack = (part: (w: FloatTensor[]) => Float32Array, size: number) => {
    const out = new Float32Array(dirs * size);
    sets.forEach((w, d) => out.set(part(w), d * size));
    return out;
  };
  const W = ctx.constant('W', () => b.floatConst(`${layer.name}/W`, [dirs, G, features], stack((w) => gateMatrix(w[0], units, order), G * features)));
  const R = ctx.constant('R', () => b.floatConst(`${layer.name}/R`, [dirs, G, units], stack((w) => gateMatrix(w[1], units, order), G * units)));
  const inputs = [W, R];
  if (useBias) {
    const B = ctx.constant('B', () => {
      const biases = (w: FloatTensor[]) => {
        const both = new Float32Array(2 * G);
        if (resetAfter) {
          both.set(gateVector(w[2].data.subarray(0, G), units, order), 0);
          both.set(gateVector(w[2].data.subarray(G), units, order), G);
        } else {
          both.set(gateVector(w[2].data, units, order), 0);
        }
        return both;
      };
      return b.floatConst(`${layer.name}/B`, [dirs, 2 * G], stack(biases, 2 * G));
    });
    inputs.push(B);
  }
  const act = rnnActivation(ctx, activationSpec(ctx, cfg.activation ?? 'tanh'));
  // Keras 2.0's default recurrent_activation was hard_sigmoid; its configs always spell it out.
  const recAct = kind === 'RNN' ? undefined : rnnActivation(ctx, activationSpec(ctx, cfg.recurrent_activation ?? 'sigmoid'));
  const one = kind === 'LSTM' ? [recAct!, act, act] : kind === 'GRU' ? [recAct!, act] : [act];
  const acts = dirs === 2 ? [...one, ...one] : one;
  const attrs: Record<string, number | string | string[] | { floats: number[] }> = {
    hidden_size: units,
    activations: acts.map((a) => a.name),
    direction: dirs === 2 ? 'bidirectional' : 'forward',
  };
  const alphas = acts.filter((a) => a.alpha !== undefined).map((a) => a.alpha!);
  const betas = acts.filter((a) => a.beta !== undefined).map((a) => a.beta!);
  if (alphas.length) attrs.activation_alpha = { floats: alphas };
  if (betas.length) attrs.activation_beta = { floats: betas };
  if (kind === 'GRU') attrs.linear_before_reset = resetAfter ? 1 : 0;
  // ONNX recurrent ops take (time, batch, features).
  let seq = b.op1('Transpose', [x.name], `${layer.name}/time_major`, { perm: [1, 0, 2] });
  if (bool(cfg, 'go_backwards', false)) {
    if (dirs === 2) throw unsupported(layer, 'go_backwards=True inside Bidirectional is not supported');
    // Keras reads the steps last to first and returns outputs in that reading order: a reversed input does both.
    seq = b.op1('Slice', [seq, b.int64Const(`${layer.name}/rev_starts`, [-1]), b.int64Const(`${layer.name}/rev_ends`, [Number.MIN_SAFE_INTEGER]), b.int64Const(`${layer.name}/rev_axes`, [0]), b.int64Const(`${layer.name}/rev_steps`, [-1])], `${layer.name}/reversed`);
  }
  const outs = b.op(kind, [seq, ...inputs], layer.name, attrs, kind === 'LSTM' ? 3 : 2);
  const returnSequences = bool(cfg, 'return_sequences', false);
  const returnState = bool(cfg, 'return_state', false);
  const batch = x.shape[0];
  const steps = x.shape[1];
  // Per direction d: the output sequence [batch, time, units] or last output [batch, units], and the states.
  // ONNX's reverse direction reports each step at its own time position, as Keras's Bidirectional re-aligns it.
  const axisConst = (a: number) => b.int64Const(`${layer.name}/axis${a}`, [a]);
  const direction = (t: string, axis: number, d: number, hint: string) =>
    dirs === 1 ? b.op1('Squeeze', [t, axisConst(axis)], hint) : b.op1('Squeeze', [b.op1('Slice', [t, b.int64Const(`${hint}/start`, [d]), b.int64Const(`${hint}/end`, [d + 1]), axisConst(axis)], `${hint}/slice`), axisConst(axis)], hint);
  const mainOf = (d: number): Value =>
    returnSequences
      ? value(b.op1('Transpose', [direction(outs[0], 1, d, `${layer.name}/Y${d}`)], `${layer.name}/sequences${d}`, { perm: [1, 0, 2] }), [batch, steps, units])
      : value(direction(outs[1], 0, d, `${layer.name}/last${d}`), [batch, units]);
  const states = (d: number): Value[] => {
    const h = value(direction(outs[1], 0, d, `${layer.name}/state_h${d}`), [batch, units]);
    return kind === 'LSTM' ? [h, value(direction(outs[2], 0, d, `${layer.name}/state_c${d}`), [batch, units])] : [h];
  };
  if (dirs === 1) return returnState ? [mainOf(0), ...states(0)] : [mainOf(0)];
  const fwd = mainOf(0);
  const bwd = mainOf(1);
  let merged: Value[];
  const mode = merge === undefined ? 'concat' : merge;
  if (mode === 'concat') merged = [value(b.op1('Concat', [fwd.name, bwd.name], `${layer.name}/concat`, { axis: -1 }), [...fwd.shape.slice(0, -1), 2 * units])];
  else if (mode === 'sum') merged = [value(b.op1('Add', [fwd.name, bwd.name], `${layer.name}/sum`), fwd.shape)];
  else if (mode === 'mul') merged = [value(b.op1('Mul', [fwd.name, bwd.name], `${layer.name}/mul`), fwd.shape)];
  else if (mode === 'ave') merged = [value(b.op1('Mean', [fwd.name, bwd.name], `${layer.name}/ave`), fwd.shape)];
  else if (mode === null) merged = [fwd, bwd];
  else throw unsupported(layer, `merge_mode '${mode}' is not supported (concat, sum, mul, ave, None)`);
  return returnState ? [...merged, ...states(0), ...states(1)] : merged;
}

function recurrent(kind: RnnKind): LayerConverter {
  return (ctx) => {
    const useBias = bool(cfgOf(ctx), 'use_bias', true);
    return recurrentOp(ctx, kind, cfgOf(ctx), [ctx.weights(useBias ? ['kernel', 'recurrent_kernel', 'bias'] : ['kernel', 'recurrent_kernel'])]);
  };
}

/** Bidirectional(LSTM|GRU|SimpleRNN): one ONNX node with direction=bidirectional. */
const bidirectional: LayerConverter = (ctx) => {
  const cfg = cfgOf(ctx);
  const inner = cfg.layer as { class_name?: string; config?: Cfg } | undefined;
  const kind = inner?.class_name ? RNN_KINDS[inner.class_name] : undefined;
  if (!inner?.config || !kind) throw unsupported(ctx.layer, `wraps ${inner?.class_name ?? 'an unknown layer'}; only LSTM, GRU and SimpleRNN can be converted`);
  const back = cfg.backward_layer as { class_name?: string; config?: Cfg } | undefined;
  if (back?.config) {
    const same = ['units', 'activation', 'recurrent_activation', 'use_bias', 'reset_after', 'return_sequences', 'return_state'].every((k) => JSON.stringify(back.config![k]) === JSON.stringify(inner.config![k]));
    if (back.class_name !== inner.class_name || !same) throw unsupported(ctx.layer, 'a backward_layer that differs from the forward layer is not supported');
  }
  const useBias = bool(inner.config, 'use_bias', true);
  const per = useBias ? 3 : 2;
  const all = ctx.rawWeights();
  // Legacy names say forward_<rnn>/backward_<rnn>; Keras 3 paths say forward_layer/backward_layer.
  const isBackward = (n: string) => n.split('/').some((part) => part.startsWith('backward'));
  const fwd = all.tensors.filter((_, i) => !isBackward(all.names[i]));
  const bwd = all.tensors.filter((_, i) => isBackward(all.names[i]));
  if (fwd.length !== per || bwd.length !== per) {
    throw new KerasImportError('MISSING_WEIGHTS', `layer '${ctx.layer.name}' (Bidirectional): expected ${per} forward and ${per} backward weights, found ${fwd.length} and ${bwd.length} (${all.names.join(', ') || 'none'})`, ctx.layer);
  }
  const merge = 'merge_mode' in cfg ? (cfg.merge_mode as string | null) : 'concat';
  return recurrentOp(ctx, kind, inner.config, [fwd, bwd], merge);
};

// ---- more shape and preprocessing layers ----------------------------------------------------------

const INT64_MAX = Number.MAX_SAFE_INTEGER;

const layerNormalization: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const cfg = cfgOf(ctx);
  const r = x.shape.length;
  if (bool(cfg, 'rms_scaling', false)) throw unsupported(ctx.layer, 'rms_scaling=True is not supported');
  const raw = cfg.axis ?? -1;
  const list = (Array.isArray(raw) ? raw : [raw]) as number[];
  const axes = list.map((a) => (a < 0 ? r + a : a)).sort((p, q) => p - q);
  // ONNX normalizes over every axis from `axis` on; Keras's axes must be that trailing block.
  if (!axes.length || axes.some((a, i) => a !== r - axes.length + i) || axes[0] < 1) throw unsupported(ctx.layer, `normalizing over axes ${JSON.stringify(raw)} (not the trailing axes) is not supported`);
  const dims = x.shape.slice(axes[0]);
  if (dims.some((d) => d === null)) throw unsupported(ctx.layer, 'the normalized axes must have sizes known from the model config');
  const size = (dims as number[]).reduce((a, c) => a * c, 1);
  const scale = bool(cfg, 'scale', true);
  const center = bool(cfg, 'center', true);
  const w = ctx.weights([...(scale ? ['gamma'] : []), ...(center ? ['beta'] : [])]);
  const { b, layer } = ctx;
  if (scale) checkShape(ctx, 'gamma', w[0], dims);
  if (center) checkShape(ctx, 'beta', w[scale ? 1 : 0], dims);
  const gamma = ctx.constant('gamma', () => b.floatConst(`${layer.name}/gamma`, dims as number[], scale ? w[0].data : new Float32Array(size).fill(1)));
  const inputs = [x.name, gamma];
  if (center) {
    inputs.push(ctx.constant('beta', () => b.floatConst(`${layer.name}/beta`, dims as number[], w[scale ? 1 : 0].data)));
  }
  const y = b.op1('LayerNormalization', inputs, `${layer.name}/LayerNormalization`, { axis: axes[0], epsilon: { f: num(cfg, 'epsilon', 1e-3) } });
  return [value(y, x.shape)];
};

/** A number or per-channel list from the config (Rescaling's scale/offset, Normalization's mean/variance). */
function numbers(v: unknown): number[] | undefined {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) {
    const flat = (v as unknown[]).flat(Infinity);
    if (flat.every((n) => typeof n === 'number')) return flat as number[];
  }
  return undefined;
}

const rescaling: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const cfg = cfgOf(ctx);
  const scale = numbers(cfg.scale ?? 1);
  const offset = numbers(cfg.offset ?? 0);
  if (!scale || !offset) throw unsupported(ctx.layer, 'scale and offset must be numbers or lists of numbers');
  const { b, layer } = ctx;
  const m = b.op1('Mul', [x.name, b.floatConst(`${layer.name}/scale`, scale.length === 1 ? [] : [scale.length], scale)], `${layer.name}/scale`);
  return [value(b.op1('Add', [m, b.floatConst(`${layer.name}/offset`, offset.length === 1 ? [] : [offset.length], offset)], `${layer.name}/offset`), x.shape)];
};

const normalization: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const cfg = cfgOf(ctx);
  const r = x.shape.length;
  let mean = numbers(cfg.mean);
  let variance = numbers(cfg.variance);
  if (!mean || !variance) {
    // Adapted statistics are weights: mean, variance (and tf.keras's count).
    const raw = ctx.rawWeights();
    if (raw.tensors.length < 2) throw new KerasImportError('MISSING_WEIGHTS', `layer '${ctx.layer.name}' (Normalization): no mean/variance in the config or the weights`, ctx.layer);
    mean = Array.from(raw.tensors[0].data);
    variance = Array.from(raw.tensors[1].data);
  }
  const axisRaw = cfg.axis === undefined ? -1 : cfg.axis;
  let dims: number[] = [];
  if (mean.length > 1) {
    const axis = Array.isArray(axisRaw) && axisRaw.length === 1 ? axisRaw[0] : axisRaw;
    if (typeof axis !== 'number') throw unsupported(ctx.layer, `per-element statistics over axes ${JSON.stringify(axisRaw)} are not supported`);
    const ax = axis < 0 ? r + axis : axis;
    if (x.shape[ax] !== mean.length) throw unsupported(ctx.layer, `${mean.length} means for an axis of size ${x.shape[ax]}`);
    dims = [mean.length, ...Array(r - 1 - ax).fill(1)];
  }
  // Keras: (x - mean) / max(sqrt(variance), epsilon); invert=True undoes it.
  const EPS = 1e-7;
  const std = variance.map((v) => Math.max(Math.sqrt(v), EPS));
  const { b, layer } = ctx;
  const meanC = b.floatConst(`${layer.name}/mean`, dims, mean);
  if (bool(cfg, 'invert', false)) {
    const y = b.op1('Add', [b.op1('Mul', [x.name, b.floatConst(`${layer.name}/std`, dims, std)], `${layer.name}/scaled`), meanC], `${layer.name}/Add`);
    return [value(y, x.shape)];
  }
  const y = b.op1('Div', [b.op1('Sub', [x.name, meanC], `${layer.name}/centered`), b.floatConst(`${layer.name}/std`, dims, std)], `${layer.name}/Div`);
  return [value(y, x.shape)];
};

const prelu: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  const w = ctx.weights(['alpha']);
  const shared = ((cfgOf(ctx).shared_axes as number[] | null) ?? []).map((a) => (a < 0 ? x.shape.length + a : a));
  checkShape(ctx, 'alpha', w[0], x.shape.slice(1).map((d, i) => (shared.includes(i + 1) ? 1 : d)));
  const { b, layer } = ctx;
  const slope = ctx.constant('alpha', () => b.floatConst(`${layer.name}/alpha`, w[0].shape, w[0].data));
  return [value(b.op1('PRelu', [x.name, slope], `${layer.name}/PRelu`), x.shape)];
};

function upSamplingN(n: number): LayerConverter {
  return (ctx) => {
    const x = oneInput(ctx);
    const r = rank(ctx, x, n + 2);
    const cfg = cfgOf(ctx);
    const interpolation = str(cfg, 'interpolation', 'nearest');
    if (interpolation !== 'nearest') throw unsupported(ctx.layer, `interpolation '${interpolation}' is not supported (nearest is)`);
    const size = n === 1 ? [num(cfg, 'size', 2)] : tuple(ctx, 'size', n);
    const cf = n > 1 && channelsFirst(ctx);
    const first = cf ? 2 : 1;
    const scales = new Array<number>(r).fill(1);
    size.forEach((s, i) => (scales[first + i] = s));
    const { b, layer } = ctx;
    // Nearest with asymmetric coordinates and floor rounding repeats each cell `size` times, as Keras does.
    const y = b.op1('Resize', [x.name, '', b.floatConst(`${layer.name}/scales`, [r], scales)], `${layer.name}/Resize`, {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
    return [value(y, x.shape.map((d, i) => (d === null ? null : d * scales[i])))];
  };
}

function croppingN(n: number): LayerConverter {
  return (ctx) => {
    const x = oneInput(ctx);
    rank(ctx, x, n + 2);
    const raw = cfgOf(ctx).cropping;
    let pairs: [number, number][];
    if (typeof raw === 'number') pairs = Array.from({ length: n }, () => [raw, raw]);
    else if (n === 1 && Array.isArray(raw) && raw.length === 2 && raw.every((v) => typeof v === 'number')) pairs = [raw as [number, number]];
    else if (Array.isArray(raw) && raw.length === n && raw.every((v) => typeof v === 'number')) pairs = (raw as number[]).map((v) => [v, v]);
    else if (Array.isArray(raw) && raw.length === n && raw.every((v) => Array.isArray(v) && v.length === 2)) pairs = raw as [number, number][];
    else throw unsupported(ctx.layer, `cropping ${JSON.stringify(raw)} is not understood`);
    const cf = n > 1 && channelsFirst(ctx);
    const first = cf ? 2 : 1;
    const axes = pairs.map((_, i) => first + i);
    const { b, layer } = ctx;
    const y = b.op1('Slice', [
      x.name,
      b.int64Const(`${layer.name}/starts`, pairs.map(([a]) => a)),
      b.int64Const(`${layer.name}/ends`, pairs.map(([, z]) => (z === 0 ? INT64_MAX : -z))),
      b.int64Const(`${layer.name}/axes`, axes),
    ], `${layer.name}/Slice`);
    const shape = x.shape.slice();
    axes.forEach((a, i) => (shape[a] = shape[a] === null ? null : shape[a]! - pairs[i][0] - pairs[i][1]));
    return [value(y, shape)];
  };
}

const repeatVector: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  rank(ctx, x, 2);
  const n = num(cfgOf(ctx), 'n', NaN);
  const { b, layer } = ctx;
  const u = b.op1('Unsqueeze', [x.name, b.int64Const(`${layer.name}/axis1`, [1])], `${layer.name}/Unsqueeze`);
  return [value(b.op1('Expand', [u, b.int64Const(`${layer.name}/shape`, [1, n, 1])], `${layer.name}/Expand`), [x.shape[0], n, x.shape[1]])];
};

/** TimeDistributed(layer): folds time into the batch axis, applies the layer, unfolds. */
const timeDistributed: LayerConverter = (ctx) => {
  const x = oneInput(ctx);
  if (x.shape.length < 3) throw unsupported(ctx.layer, 'needs an input with a time axis (rank >= 3)');
  const inner = cfgOf(ctx).layer as { class_name?: string; config?: Cfg } | undefined;
  const cls = inner?.class_name;
  const convert = cls ? LAYERS[cls] : undefined;
  if (!inner?.config || !cls || !convert || cls in RNN_KINDS || cls === 'Bidirectional' || cls === 'TimeDistributed') {
    throw unsupported(ctx.layer, `wraps ${cls ?? 'an unknown layer'}, which TimeDistributed cannot convert`);
  }
  const { b, layer } = ctx;
  const shapeX = b.op1('Shape', [x.name], `${layer.name}/input_shape`);
  const tail = b.op1('Slice', [shapeX, b.int64Const(`${layer.name}/two`, [2]), b.int64Const(`${layer.name}/end`, [INT64_MAX])], `${layer.name}/step_shape`);
  const folded = b.op1('Reshape', [x.name, b.op1('Concat', [b.int64Const(`${layer.name}/minus_one`, [-1]), tail], `${layer.name}/folded_shape`, { axis: 0 })], `${layer.name}/folded`);
  const innerLayer: KerasLayer = { name: layer.name, className: cls, config: inner.config, calls: [] };
  const outs = convert({ ...ctx, layer: innerLayer, inputs: [value(folded, [null, ...x.shape.slice(2)], x.elemType)] });
  if (outs.length !== 1) throw unsupported(ctx.layer, `wraps ${cls} with ${outs.length} outputs`);
  const y = outs[0];
  const head = b.op1('Slice', [shapeX, b.int64Const(`${layer.name}/zero`, [0]), b.int64Const(`${layer.name}/two_end`, [2])], `${layer.name}/batch_time`);
  const yTail = b.op1('Slice', [b.op1('Shape', [y.name], `${layer.name}/output_shape`), b.int64Const(`${layer.name}/one`, [1]), b.int64Const(`${layer.name}/end2`, [INT64_MAX])], `${layer.name}/output_step_shape`);
  const unfolded = b.op1('Reshape', [y.name, b.op1('Concat', [head, yTail], `${layer.name}/unfolded_shape`, { axis: 0 })], `${layer.name}/unfolded`);
  return [value(unfolded, [x.shape[0], x.shape[1], ...y.shape.slice(1)], y.elemType)];
};

// ---- the table -----------------------------------------------------------------------------------

export const LAYERS: Record<string, LayerConverter> = {
  Dense: dense,
  Activation: activationLayer,
  ReLU: relu,
  LeakyReLU: leakyRelu,
  ELU: eluLayer,
  Softmax: softmaxLayer,
  Flatten: flatten,
  Reshape: reshape,
  Permute: permute,
  // Identity at inference: these only act while training.
  Dropout: identity,
  SpatialDropout1D: identity,
  SpatialDropout2D: identity,
  SpatialDropout3D: identity,
  GaussianNoise: identity,
  GaussianDropout: identity,
  AlphaDropout: identity,
  ActivityRegularization: identity,
  Conv1D: convN(1),
  Conv2D: convN(2),
  Conv3D: convN(3),
  Convolution1D: convN(1),
  Convolution2D: convN(2),
  Conv1DTranspose: convTransposeN(1),
  Conv2DTranspose: convTransposeN(2),
  Conv3DTranspose: convTransposeN(3),
  Convolution2DTranspose: convTransposeN(2),
  DepthwiseConv1D: depthwiseN(1),
  DepthwiseConv2D: depthwiseN(2),
  SeparableConv1D: separableN(1),
  SeparableConv2D: separableN(2),
  SeparableConvolution2D: separableN(2),
  MaxPooling1D: poolN(1, 'max'),
  MaxPooling2D: poolN(2, 'max'),
  MaxPooling3D: poolN(3, 'max'),
  MaxPool1D: poolN(1, 'max'),
  MaxPool2D: poolN(2, 'max'),
  AveragePooling1D: poolN(1, 'avg'),
  AveragePooling2D: poolN(2, 'avg'),
  AveragePooling3D: poolN(3, 'avg'),
  AvgPool1D: poolN(1, 'avg'),
  AvgPool2D: poolN(2, 'avg'),
  GlobalAveragePooling1D: globalPoolN(1, 'avg'),
  GlobalAveragePooling2D: globalPoolN(2, 'avg'),
  GlobalAveragePooling3D: globalPoolN(3, 'avg'),
  GlobalMaxPooling1D: globalPoolN(1, 'max'),
  GlobalMaxPooling2D: globalPoolN(2, 'max'),
  GlobalMaxPooling3D: globalPoolN(3, 'max'),
  GlobalAvgPool1D: globalPoolN(1, 'avg'),
  GlobalAvgPool2D: globalPoolN(2, 'avg'),
  GlobalMaxPool1D: globalPoolN(1, 'max'),
  GlobalMaxPool2D: globalPoolN(2, 'max'),
  ZeroPadding1D: zeroPaddingN(1),
  ZeroPadding2D: zeroPaddingN(2),
  ZeroPadding3D: zeroPaddingN(3),
  BatchNormalization: batchNormalization,
  Add: merge('Add'),
  Subtract: merge('Sub'),
  Multiply: merge('Mul'),
  Average: merge('Mean'),
  Maximum: merge('Max'),
  Minimum: merge('Min'),
  Concatenate: concatenate,
  Embedding: embedding,
  LayerNormalization: layerNormalization,
  Rescaling: rescaling,
  Normalization: normalization,
  PReLU: prelu,
  UpSampling1D: upSamplingN(1),
  UpSampling2D: upSamplingN(2),
  UpSampling3D: upSamplingN(3),
  Cropping1D: croppingN(1),
  Cropping2D: croppingN(2),
  Cropping3D: croppingN(3),
  RepeatVector: repeatVector,
  TimeDistributed: timeDistributed,
  LSTM: recurrent('LSTM'),
  Bidirectional: bidirectional,
  GRU: recurrent('GRU'),
  SimpleRNN: recurrent('RNN'),
};

