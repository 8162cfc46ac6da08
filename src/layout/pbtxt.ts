// Triton's config.pbtxt (a ModelConfig message in protobuf text format) read into dais's own config shape. Only
// the fields dais does the same thing for are taken; any other field is refused by name, pointing at config.yaml,
// so a Triton repository never loads with settings silently dropped (no batching, one instance) that its author
// set. Field meanings: Triton's model_config.proto (max_batch_size, dynamic_batching, instance_group, …).
import { UserError } from '../core/errors.ts';

type PbValue = string | number | boolean | PbMessage;
export interface PbMessage {
  [field: string]: PbValue[];
}

/** Thrown with the 1-based line of the text where parsing stopped. */
export class PbtxtSyntaxError extends UserError {}

const TOKEN = /\s*(?:#[^\n]*\n?\s*)*(?:("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)[fF]?)|([A-Za-z_][\w.]*)|([{}[\]:,;<>]))/y;

/** Parses protobuf text format into fields → lists of values (every field may repeat). */
export function parsePbtxt(text: string): PbMessage {
  const tokens: { kind: 'str' | 'num' | 'id' | 'punct'; text: string; at: number }[] = [];
  TOKEN.lastIndex = 0;
  for (;;) {
    const start = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) {
      if (/^\s*(#[^\n]*\n?\s*)*$/.test(text.slice(start))) break;
      throw new PbtxtSyntaxError(`line ${lineOf(text, start)}: cannot read '${text.slice(start).trim().slice(0, 20)}'`);
    }
    const at = m.index + m[0].length - (m[1] ?? m[2] ?? m[3] ?? m[4]).length;
    if (m[1] !== undefined) tokens.push({ kind: 'str', text: m[1], at });
    else if (m[2] !== undefined) tokens.push({ kind: 'num', text: m[2], at });
    else if (m[3] !== undefined) tokens.push({ kind: 'id', text: m[3], at });
    else tokens.push({ kind: 'punct', text: m[4], at });
  }
  let i = 0;
  const fail = (msg: string): never => {
    throw new PbtxtSyntaxError(`line ${lineOf(text, tokens[i]?.at ?? text.length)}: ${msg}`);
  };
  const peek = () => tokens[i];
  const take = (p: string) => {
    if (peek()?.kind === 'punct' && peek().text === p) {
      i++;
      return true;
    }
    return false;
  };
  const scalar = (): PbValue => {
    const t = tokens[i++] ?? fail('a value is missing');
    if (t.kind === 'str') return JSON.parse(t.text.startsWith("'") ? `"${t.text.slice(1, -1).replace(/"/g, '\\"')}"` : t.text) as string;
    if (t.kind === 'num') return Number(t.text.replace(/[fF]$/, ''));
    if (t.kind === 'id') return t.text === 'true' ? true : t.text === 'false' ? false : t.text; // enum names stay strings
    return fail(`unexpected '${t.text}'`);
  };
  const message = (close: string | undefined): PbMessage => {
    const out: PbMessage = {};
    for (;;) {
      if (close ? take(close) : i >= tokens.length) return out;
      const name = tokens[i++];
      if (!name || name.kind !== 'id') fail(`a field name was expected${name ? `, got '${name.text}'` : ''}`);
      const colon = take(':');
      const values = (out[name.text] ??= []);
      const one = (): PbValue => {
        if (take('{')) return message('}');
        if (take('<')) return message('>');
        return scalar();
      };
      if (take('[')) {
        if (!take(']')) {
          do values.push(one());
          while (take(','));
          if (!take(']')) fail(`']' expected to close the list of '${name.text}'`);
        }
      } else if (!colon && !(peek()?.text === '{' || peek()?.text === '<')) {
        fail(`':' expected after '${name.text}'`);
      } else values.push(one());
      take(',') || take(';');
    }
  };
  return message(undefined);
}

function lineOf(text: string, at: number): number {
  return text.slice(0, at).split('\n').length;
}

/** Triton's data types (model_config.proto DataType) → v2 datatypes. */
const TRITON_TYPES: Record<string, string> = {
  TYPE_BOOL: 'BOOL', TYPE_UINT8: 'UINT8', TYPE_UINT16: 'UINT16', TYPE_UINT32: 'UINT32', TYPE_UINT64: 'UINT64',
  TYPE_INT8: 'INT8', TYPE_INT16: 'INT16', TYPE_INT32: 'INT32', TYPE_INT64: 'INT64', TYPE_FP16: 'FP16',
  TYPE_FP32: 'FP32', TYPE_FP64: 'FP64', TYPE_STRING: 'BYTES', TYPE_BF16: 'BF16',
};

const TOP = ['name', 'platform', 'backend', 'max_batch_size', 'dynamic_batching', 'instance_group', 'version_policy', 'input', 'output'];
const PLATFORMS = ['onnxruntime_onnx', 'onnxruntime'];

const isMessage = (v: PbValue | undefined): v is PbMessage => typeof v === 'object' && v !== null;

/**
 * A config.pbtxt as the raw object dais's config.json would hold (validated by the caller), or the problems that
 * stop it: every field dais cannot honour, named. `modelName` is the model's folder, which Triton requires `name` to equal.
 */
export function tritonConfigToRaw(text: string, modelName: string): { raw: Record<string, unknown>; problems: string[] } {
  const problems: string[] = [];
  let pb: PbMessage;
  try {
    pb = parsePbtxt(text);
  } catch (e) {
    return { raw: {}, problems: [`cannot be parsed as protobuf text: ${(e as Error).message}`] };
  }
  const refuse = (field: string, why: string) =>
    problems.push(`'${field}' ${why}: dais reads only ${TOP.join(', ')} from config.pbtxt; put the settings dais has in config.yaml instead (see 'dais serve --help')`);
  const one = (m: PbMessage, f: string): PbValue | undefined => m[f]?.[m[f].length - 1];
  const num = (m: PbMessage, f: string, where: string): number | undefined => {
    const v = one(m, f);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) problems.push(`'${where}${f}' must be a whole number ≥ 0, got ${JSON.stringify(v)}`);
    return typeof v === 'number' ? v : undefined;
  };
  for (const k of Object.keys(pb)) if (!TOP.includes(k)) refuse(k, 'is not something dais does');
  const raw: Record<string, unknown> = {};

  const name = one(pb, 'name');
  if (name !== undefined && name !== modelName) problems.push(`'name' is ${JSON.stringify(name)} but the model's folder is '${modelName}' (Triton requires them to match)`);
  for (const f of ['platform', 'backend']) {
    const v = one(pb, f);
    if (v !== undefined && !PLATFORMS.includes(String(v))) problems.push(`'${f}' is ${JSON.stringify(v)}: dais serves ONNX models with onnxruntime (${PLATFORMS.join(' or ')})`);
  }

  const maxBatch = num(pb, 'max_batch_size', '') ?? 0;
  const db = one(pb, 'dynamic_batching');
  if (db !== undefined) {
    if (!isMessage(db)) problems.push(`'dynamic_batching' must be a message { … }`);
    else {
      for (const k of Object.keys(db)) if (!['max_queue_delay_microseconds', 'preferred_batch_size'].includes(k)) refuse(`dynamic_batching.${k}`, 'is not something dais does');
      if (maxBatch < 1) problems.push(`'dynamic_batching' needs 'max_batch_size' ≥ 1 (the most rows in one run), as in Triton`);
      else {
        const delayUs = num(db, 'max_queue_delay_microseconds', 'dynamic_batching.') ?? 0;
        raw.dynamic_batching = { max_batch_size: maxBatch, max_queue_delay_ms: delayUs / 1000, ...(db.preferred_batch_size ? { preferred_batch_size: db.preferred_batch_size } : {}) };
      }
    }
  }
  // max_batch_size without dynamic_batching: clients may send batches, the server forms none (Triton's meaning too).

  const groups = pb.instance_group ?? [];
  if (groups.length) {
    let count = 0;
    groups.forEach((g, i) => {
      if (!isMessage(g)) return void problems.push(`'instance_group[${i}]' must be a message { count: N kind: KIND_CPU }`);
      for (const k of Object.keys(g)) if (!['count', 'kind', 'name'].includes(k)) refuse(`instance_group[${i}].${k}`, 'is not something dais does');
      const kind = one(g, 'kind');
      if (kind !== undefined && kind !== 'KIND_CPU' && kind !== 'KIND_AUTO') problems.push(`'instance_group[${i}].kind' is ${String(kind)}: dais runs models on the CPU (KIND_CPU)`);
      count += num(g, 'count', `instance_group[${i}].`) ?? 1;
    });
    raw.instance_count = count;
  }

  const vp = one(pb, 'version_policy');
  if (vp !== undefined) {
    // Triton's {latest {num_versions: N}}, {all {}}, {specific {versions: [..]}}: the config validator reads these.
    if (!isMessage(vp)) problems.push(`'version_policy' must be a message`);
    else {
      const unwrap = (m: PbValue[] | undefined) => (m && isMessage(m[0]) ? Object.fromEntries(Object.entries(m[0]).map(([k, v]) => [k, k === 'versions' ? v : v[v.length - 1]])) : m?.[0]);
      raw.version_policy = Object.fromEntries(Object.keys(vp).map((k) => [k, unwrap(vp[k])]));
    }
  }

  const inputs: Record<string, unknown>[] = [];
  (pb.input ?? []).forEach((t, i) => {
    if (!isMessage(t)) return void problems.push(`'input[${i}]' must be a message { name: … data_type: … dims: [ … ] }`);
    for (const k of Object.keys(t)) if (!['name', 'data_type', 'dims'].includes(k)) refuse(`input[${i}].${k}`, 'is not something dais does');
    const c: Record<string, unknown> = { name: one(t, 'name') };
    const type = one(t, 'data_type');
    if (type !== undefined) {
      if (TRITON_TYPES[String(type)]) c.datatype = TRITON_TYPES[String(type)];
      else problems.push(`'input[${i}].data_type' ${String(type)} is not a Triton data type dais serves`);
    }
    // With max_batch_size > 0, Triton's dims leave out the batch dimension.
    if (t.dims) c.shape = [...(maxBatch > 0 ? [-1] : []), ...t.dims];
    inputs.push(c);
  });
  if (inputs.length) raw.inputs = inputs;
  // output [ … ] only declares what the model returns; onnxruntime reports the real outputs, so it changes nothing.
  (pb.output ?? []).forEach((t, i) => {
    if (isMessage(t)) for (const k of Object.keys(t)) if (!['name', 'data_type', 'dims'].includes(k)) refuse(`output[${i}].${k}`, 'is not something dais does');
  });
  return { raw, problems };
}
