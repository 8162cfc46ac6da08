// Keras activation functions as ONNX opset-17 nodes. Each follows the Keras definition exactly (gelu's erf form,
// each Keras major version's own hard_sigmoid); anything else is refused rather than approximated.
import { unsupported } from './errors.ts';
import type { GraphBuilder } from './onnx-builder.ts';

export interface ActivationContext {
  b: GraphBuilder;
  layer: { name: string; className: string };
  /** 2 for Keras 2 / tf.keras files, 3 for Keras 3: hard_sigmoid differs between them. */
  kerasMajor: number;
}

// Keras's SELU constants (keras/activations.py); ONNX Selu's defaults are the same values rounded to float32.
const SELU_ALPHA = 1.6732632423543772848170429916717;
const SELU_SCALE = 1.0507009873554804934193349852946;

export interface ActivationSpec {
  name: string;
  /** gelu only: the tanh approximation instead of the exact erf form. */
  approximate?: boolean;
}

/** Reads a layer's `activation` field: a name, or (Keras 3 / custom) a serialized {class_name, config}. */
export function activationSpec(ctx: ActivationContext, raw: unknown): ActivationSpec {
  if (raw === undefined || raw === null) return { name: 'linear' };
  if (typeof raw === 'string') return { name: raw };
  if (typeof raw === 'object' && !Array.isArray(raw)) {
    const o = raw as Record<string, unknown>;
    const cfg = (o.config ?? {}) as Record<string, unknown>;
    const name = typeof o.class_name === 'string' ? o.class_name : typeof cfg.name === 'string' ? cfg.name : undefined;
    if (o.class_name === 'function' && typeof o.config === 'string') return { name: o.config };
    if (name) return { name, approximate: cfg.approximate === true };
  }
  throw unsupported(ctx.layer, `activation ${JSON.stringify(raw)} is not one the converter knows`);
}

export const ACTIVATIONS = ['linear', 'relu', 'sigmoid', 'tanh', 'softmax', 'elu', 'selu', 'gelu', 'swish', 'silu', 'hard_sigmoid', 'softplus', 'softsign', 'exponential', 'relu6', 'leaky_relu', 'hard_silu', 'hard_swish', 'mish', 'log_softmax'];

/** Applies the activation to tensor x; returns the output tensor name (x itself for linear). */
export function applyActivation(ctx: ActivationContext, x: string, spec: ActivationSpec, hint: string): string {
  const { b } = ctx;
  const f = (v: number) => ({ f: v });
  switch (spec.name) {
    case 'linear':
      return x;
    case 'relu':
      return b.op1('Relu', [x], hint);
    case 'sigmoid':
      return b.op1('Sigmoid', [x], hint);
    case 'tanh':
      return b.op1('Tanh', [x], hint);
    case 'softmax':
      return b.op1('Softmax', [x], hint, { axis: -1 });
    case 'log_softmax':
      return b.op1('LogSoftmax', [x], hint, { axis: -1 });
    case 'elu':
      return b.op1('Elu', [x], hint, { alpha: f(1) });
    case 'selu':
      return b.op1('Selu', [x], hint, { alpha: f(SELU_ALPHA), gamma: f(SELU_SCALE) });
    case 'softplus':
      return b.op1('Softplus', [x], hint);
    case 'softsign':
      return b.op1('Softsign', [x], hint);
    case 'exponential':
      return b.op1('Exp', [x], hint);
    case 'relu6':
      return b.op1('Clip', [x, b.floatConst(`${hint}/zero`, [], [0]), b.floatConst(`${hint}/six`, [], [6])], hint);
    case 'leaky_relu':
      // keras.activations.leaky_relu's default negative_slope.
      return b.op1('LeakyRelu', [x], hint, { alpha: 0.2 });
    case 'hard_sigmoid':
      return hardSigmoid(ctx, x, hint);
    case 'swish':
    case 'silu':
      return b.op1('Mul', [x, b.op1('Sigmoid', [x], `${hint}/sigmoid`)], hint);
    case 'hard_silu':
    case 'hard_swish':
      if (ctx.kerasMajor < 3) throw unsupported(ctx.layer, `activation '${spec.name}' exists only in Keras 3`);
      return b.op1('Mul', [x, hardSigmoid(ctx, x, `${hint}/hard_sigmoid`)], hint);
    case 'mish':
      return b.op1('Mul', [x, b.op1('Tanh', [b.op1('Softplus', [x], `${hint}/softplus`)], `${hint}/tanh`)], hint);
    case 'gelu':
      return spec.approximate ? geluTanh(b, x, hint) : geluErf(b, x, hint);
    default:
      throw unsupported(ctx.layer, `activation '${spec.name}' is not supported (supported: ${ACTIVATIONS.join(', ')})`);
  }
}

function hardSigmoid(ctx: ActivationContext, x: string, hint: string): string {
  // Keras 2: clip(0.2x + 0.5, 0, 1). Keras 3: relu6(x + 3) / 6 = clip(x/6 + 0.5, 0, 1).
  const alpha = ctx.kerasMajor >= 3 ? 1 / 6 : 0.2;
  return ctx.b.op1('HardSigmoid', [x], hint, { alpha: { f: alpha }, beta: { f: 0.5 } });
}

function geluErf(b: GraphBuilder, x: string, hint: string): string {
  // 0.5 x (1 + erf(x / sqrt 2)): opset 17 has no Gelu operator (it arrived in opset 20).
  const erf = b.op1('Erf', [b.op1('Mul', [x, b.floatConst(`${hint}/rsqrt2`, [], [Math.SQRT1_2])], `${hint}/scaled`)], `${hint}/erf`);
  const onePlus = b.op1('Add', [erf, b.floatConst(`${hint}/one`, [], [1])], `${hint}/one_plus`);
  const half = b.op1('Mul', [x, b.floatConst(`${hint}/half`, [], [0.5])], `${hint}/half_x`);
  return b.op1('Mul', [half, onePlus], hint);
}

function geluTanh(b: GraphBuilder, x: string, hint: string): string {
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  const x3 = b.op1('Mul', [b.op1('Mul', [x, x], `${hint}/x2`), x], `${hint}/x3`);
  const inner = b.op1('Add', [x, b.op1('Mul', [x3, b.floatConst(`${hint}/c`, [], [0.044715])], `${hint}/cx3`)], `${hint}/inner`);
  const t = b.op1('Tanh', [b.op1('Mul', [inner, b.floatConst(`${hint}/k`, [], [Math.sqrt(2 / Math.PI)])], `${hint}/scaled`)], `${hint}/tanh`);
  const onePlus = b.op1('Add', [t, b.floatConst(`${hint}/one`, [], [1])], `${hint}/one_plus`);
  const half = b.op1('Mul', [x, b.floatConst(`${hint}/half`, [], [0.5])], `${hint}/half_x`);
  return b.op1('Mul', [half, onePlus], hint);
}

/** The same activation as an ONNX RNN activation name (+ alpha/beta where that function takes them). */
export function rnnActivation(ctx: ActivationContext, spec: ActivationSpec): { name: string; alpha?: number; beta?: number } {
  switch (spec.name) {
    case 'tanh':
      return { name: 'Tanh' };
    case 'sigmoid':
      return { name: 'Sigmoid' };
    case 'relu':
      return { name: 'Relu' };
    case 'linear':
      return { name: 'Affine', alpha: 1, beta: 0 };
    case 'hard_sigmoid':
      return { name: 'HardSigmoid', alpha: ctx.kerasMajor >= 3 ? 1 / 6 : 0.2, beta: 0.5 };
    case 'softsign':
      return { name: 'Softsign' };
    case 'softplus':
      return { name: 'Softplus' };
    case 'elu':
      return { name: 'Elu', alpha: 1 };
    default:
      throw unsupported(ctx.layer, `activation '${spec.name}' inside a recurrent layer is not supported (supported there: tanh, sigmoid, relu, linear, hard_sigmoid, softsign, softplus, elu)`);
  }
}
