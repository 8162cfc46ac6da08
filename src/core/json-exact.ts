// The JSON reader for infer bodies that JSON.parse cannot read as Triton does: tritonclient writes INT64/UINT64
// beyond 2^53 as bare integers (Python's json keeps them exact) and non-finite floats as NaN, Infinity and -Infinity
// (Python's json writes those literals). JSON.parse would round the first and refuse the second.
//
// parseJsonExact is JSON.parse for every other text (it is called only when a cheap test finds a long digit run or
// one of the literals). Otherwise a small recursive reader builds the same values, except: integer tokens of 16 or
// more digits inside a tensor's "data" (root → inputs/outputs → element → data) become ExactInteger (their digits,
// and the double JSON.parse would give), and NaN/Infinity/-Infinity are numbers wherever a value may stand.
// Strings and every other number token go through JSON.parse itself, so escapes and rounding are JSON.parse's.

/** An integer token read exactly: `value` holds every digit, `number` is the double JSON.parse would have given. */
export class ExactInteger {
  readonly value: bigint;
  readonly number: number;
  constructor(readonly text: string) {
    this.value = BigInt(text);
    this.number = Number(text);
  }
}

/** A digit run long enough to be beyond 2^53, or a literal JSON lacks: only then is the slower reader needed. */
const NEEDS_EXACT = /\d{16}|NaN|Infinity/;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const INTEGER = /^-?\d+$/;
const MAX_DEPTH = 512;

/** Where a value stands, as far as the tensor "data" rule cares: the root; its "inputs" or "outputs" array; one of
 * those tensors; inside a tensor's "data"; anywhere else. */
const At = { Root: 0, Tensors: 1, Tensor: 2, Data: 3, Other: 4 } as const;
type At = (typeof At)[keyof typeof At];

/** JSON.parse, reading big integers in tensor data exactly and NaN/Infinity as numbers (see the top of the file). */
export function parseJsonExact(text: string): unknown {
  if (!NEEDS_EXACT.test(text)) return JSON.parse(text);
  const reader = new Reader(text);
  const value = reader.value(At.Root, 0);
  reader.ws();
  if (reader.p !== text.length) reader.fail();
  return value;
}

class Reader {
  p = 0;
  constructor(readonly t: string) {}

  fail(): never {
    throw new SyntaxError(`Unexpected token at position ${this.p} in JSON`);
  }

  ws(): void {
    const t = this.t;
    let c = t.charCodeAt(this.p);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = t.charCodeAt(++this.p);
  }

  value(at: At, depth: number): unknown {
    if (depth > MAX_DEPTH) this.fail();
    this.ws();
    const t = this.t;
    const c = t[this.p];
    if (c === '{') return this.object(at, depth);
    if (c === '[') return this.array(at, depth);
    if (c === '"') return this.string();
    for (const [word, v] of LITERALS) {
      if (t.startsWith(word, this.p)) {
        this.p += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = this.p;
    const m = NUMBER.exec(t);
    if (!m) this.fail();
    this.p += m[0].length;
    const token = m[0];
    if (at === At.Data && token.length >= 16 && INTEGER.test(token)) return new ExactInteger(token);
    return JSON.parse(token) as number;
  }

  string(): string {
    const t = this.t;
    let q = this.p + 1;
    for (;;) {
      const c = t.charCodeAt(q);
      if (Number.isNaN(c)) this.fail();
      if (c === 0x22) break;
      q += c === 0x5c ? 2 : 1;
    }
    const s = JSON.parse(t.slice(this.p, q + 1)) as string;
    this.p = q + 1;
    return s;
  }

  object(at: At, depth: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    this.p++;
    this.ws();
    if (this.t[this.p] === '}') {
      this.p++;
      return o;
    }
    for (;;) {
      this.ws();
      if (this.t[this.p] !== '"') this.fail();
      const key = this.string();
      this.ws();
      if (this.t[this.p] !== ':') this.fail();
      this.p++;
      const inner =
        at === At.Root && (key === 'inputs' || key === 'outputs') ? At.Tensors : at === At.Tensor && key === 'data' ? At.Data : At.Other;
      // defineProperty, as JSON.parse does: "__proto__" is an own member, not the prototype.
      Object.defineProperty(o, key, { value: this.value(inner, depth + 1), writable: true, enumerable: true, configurable: true });
      this.ws();
      const c = this.t[this.p++];
      if (c === '}') return o;
      if (c !== ',') {
        this.p--;
        this.fail();
      }
    }
  }

  array(at: At, depth: number): unknown[] {
    const a: unknown[] = [];
    const inner = at === At.Tensors ? At.Tensor : at === At.Data ? At.Data : At.Other;
    this.p++;
    this.ws();
    if (this.t[this.p] === ']') {
      this.p++;
      return a;
    }
    for (;;) {
      a.push(this.value(inner, depth + 1));
      this.ws();
      const c = this.t[this.p++];
      if (c === ']') return a;
      if (c !== ',') {
        this.p--;
        this.fail();
      }
    }
  }
}

const LITERALS: [string, unknown][] = [
  ['true', true],
  ['false', false],
  ['null', null],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
];

/**
 * JSON text for a flat tensor "data" array whose numbers JSON.stringify would not write as Triton does: BigInt
 * elements as their exact digits, non-finite floats as NaN/Infinity/-Infinity. Every finite number is written as
 * JSON.stringify writes it (both use Number::toString).
 */
export function numbersJson(values: ArrayLike<number | bigint>): string {
  return '[' + Array.prototype.join.call(values, ',') + ']';
}
