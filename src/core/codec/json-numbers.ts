// A JSON parser for infer request bodies. It gives requestFromJson the same values JSON.parse would, but parses the
// inputs' numeric "data" arrays straight from the bytes into doubles (no JS array of boxed numbers) and avoids
// JSON.parse's fixed costs on the small rest. It vouches only for what it is sure of: on anything else it gives up
// (returns null) and the caller uses JSON.parse on the whole text, which also produces every error message.
//
// Why the values are the same:
// - Numbers: only Clinger's exact fast path is taken here: an integer mantissa below 2^53 (exact in a double; up to
//   9 digits it is summed in int32 arithmetic, beyond that in doubles) and a power of ten from 10^0 to 10^22 (exact
//   too), so the value is one correctly rounded multiplication or division: the double JSON.parse (correctly
//   rounded) gives. -0 stays -0. Any other number token is handed to JSON.parse itself: in "data", the rest of its
//   flat array in one call (float32 values printed as 17-digit doubles then cost what they cost before); elsewhere
//   token by token, a few per body at most (then the whole body is left to JSON.parse).
// - Strings without escapes: short ASCII ones are made from their bytes (one character per byte) and reused when the
//   same bytes come again; others are cut from the body decoded as UTF-8 (the characters JSON.parse would copy).
//   Strings with escapes go through JSON.parse; raw control characters, which JSON forbids, make the parse give up.
// - Generic objects are built key by key; a key already present, or one that reads anything through the prototype
//   chain (__proto__, toString…), makes the parse give up, so JSON.parse's duplicate-key and __proto__ rules never
//   come into it.
// - The root object and the objects in its "inputs" array are not handed out as such: requestFromJson only reads
//   their known members (id, inputs, outputs, parameters; name, shape, datatype, parameters, data), so only those
//   are kept, each parsed exactly; other members are parsed (so the text is checked all the same) and dropped. A
//   known member given twice makes the parse give up.
// - The grammar accepted is a subset of JSON's (same whitespace, literals and number syntax, nothing after the
//   root), so no text that JSON.parse rejects is accepted.
// An input's "data" is tied to its input by position (root → "inputs" → element i → "data"), never by value: the
// parsed input holds a NumberSpan there (a class JSON never produces) and the numbers come separately. A "data"
// array of anything else (BYTES strings, BOOL, mixed) is faster in JSON.parse: the parse gives up at once.
//
// Bodies are taken only when their last byte other than whitespace is `}`. The number loops (with the whitespace
// between numbers) advance only from bytes that are not `}`, so that byte bounds their reads and they need no length
// checks (about a fifth faster); the other loops, which may pass a `}`, check the length.

/**
 * Where an input's "data" was parsed to: `count` numbers from `offset` in {@link ParsedRequestJson.values},
 * flattened in row-major order (nested arrays of one kind at each level, as the codec's flatten() reads them). It
 * stands in the parsed input's `data` field; JSON never produces one, so it cannot be mistaken for a value.
 */
export class NumberSpan {
  readonly offset: number;
  readonly count: number;
  constructor(offset: number, count: number) {
    this.offset = offset;
    this.count = count;
  }
}

/** What {@link parseRequestJson} gives. */
export interface ParsedRequestJson {
  /**
   * The members of the body that requestFromJson reads, as JSON.parse would give them, except that an input's
   * `data` is a {@link NumberSpan} where its numbers were parsed here (inputs that are objects carry only their
   * known members).
   */
  value: Record<string, unknown>;
  /** The numbers of every NumberSpan. A buffer that the next parse reuses: copy what you need out of it first. */
  values: Float64Array;
  /**
   * The exact value of each integer token of 16 digits or more in `values` (by index there), which the double may
   * have rounded: INT64/UINT64 data beyond 2^53 stays exact. Null when there is none.
   */
  exact: Map<number, bigint> | null;
}

// 10^0 … 10^22: every one is exactly representable as a double.
const POW10 = new Float64Array([
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
  1e21, 1e22,
]);
const TWO_53 = 9007199254740992;
const LONG_DIGITS = /\d{16}/;
const NUMBER_TOKEN = /-?\d[\d.eE+-]*/g;
const INTEGER_TOKEN = /^-?\d+$/;
/** Number tokens off the fast path outside "data" handed to JSON.parse one by one before the body is left to it. */
const MAX_DELEGATED = 16;
/** Nesting deeper than this is left to JSON.parse (no deep recursion here). */
const MAX_DEPTH = 64;
/** The values buffer is kept between parses up to this many elements (512 KiB). */
const KEEP_ELEMENTS = 1 << 16;

const utf8 = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

/** Plain ASCII strings up to this many bytes go through STRING_CACHE (a power of two slots, '' when empty). */
const MAX_CACHED_STRING = 32;
const STRING_CACHE: string[] = new Array<string>(256).fill('');


/** The members of the root object and of an input that requestFromJson reads (at most 31 per list). */
const ROOT_KEYS = ['id', 'inputs', 'outputs', 'parameters'];
const INPUT_KEYS = ['name', 'shape', 'datatype', 'parameters', 'data'];
const ROOT_KEY_BYTES = ROOT_KEYS.map((k) => utf8Encoder.encode(k));
const INPUT_KEY_BYTES = INPUT_KEYS.map((k) => utf8Encoder.encode(k));

/** JSON whitespace: space, tab, line feed, carriage return (WS[c] is 1 for those bytes). */
const WS = new Uint8Array(256);
WS[0x20] = WS[0x09] = WS[0x0a] = WS[0x0d] = 1;

function isWs(c: number): boolean {
  return WS[c] === 1;
}

const EMPTY = new Uint8Array(0);

/** One parse's state. There is one parser, reset for each body (parses never nest). */
class Parser {
  /** The body's bytes. */
  b: Uint8Array = EMPTY;
  n = 0;
  /**
   * The body's first `tBytes` bytes decoded (strings are cut from it), decoded when first needed and then only as far
   * as needed: a prefix ending at an ASCII byte decodes to the same characters as the start of the whole.
   */
  t = '';
  tBytes = 0;
  /** Position in `b`. */
  p = 0;
  /** Bytes minus characters before `p`: non-ASCII UTF-8 (only ever inside strings) makes them differ. */
  shift = 0;
  /** Where parsed "data" numbers go, and how many are there. */
  values: Float64Array = new Float64Array(1024);
  count = 0;
  /** Number tokens handed to JSON.parse so far. */
  delegated = 0;
  /** See {@link ParsedRequestJson.exact}. */
  exact: Map<number, bigint> | null = null;
  /**
   * Set when the parser gives up. Giving up is a flag, not an exception: a throw costs microseconds here (V8 walks
   * the stack to see who catches it), more than parsing a small body.
   */
  bad = false;

  reset(b: Uint8Array): void {
    this.b = b;
    this.n = b.length;
    this.t = '';
    this.tBytes = 0;
    this.p = 0;
    this.shift = 0;
    this.count = 0;
    this.delegated = 0;
    this.exact = null;
    this.bad = false;
  }

  /** Gives up: the caller returns at once, and every caller above checks `bad`. */
  fail(): undefined {
    this.bad = true;
    return undefined;
  }

  /** Lets go of the body (and of a values buffer too big to keep). */
  release(): void {
    this.b = EMPTY;
    this.t = '';
    if (this.values.length > KEEP_ELEMENTS) this.values = new Float64Array(1024);
  }

  /** The text of bytes [from, to), both at ASCII bytes; `shift` is bytes minus characters before `from`. */
  text(from: number, to: number, shift: number): string {
    this.decodeTo(to);
    return this.t.slice(from - shift, to - this.shift);
  }

  /** Makes `t` cover the body up to byte `to` at least. */
  decodeTo(to: number): void {
    if (to > this.tBytes) {
      // The first time, decode a little past what is needed (bodies put "data" last); after that, everything.
      this.tBytes = this.tBytes === 0 ? Math.min(this.n, to + 256) : this.n;
      this.t = utf8.decode(this.b.subarray(0, this.tBytes));
    }
  }

  /** Skips whitespace; returns the next character code (0 at the end). */
  ws(): number {
    const b = this.b;
    const n = this.n;
    let p = this.p;
    let c = p < n ? b[p] : 0;
    if (c > 0x20) return c;
    while (isWs(c)) c = ++p < n ? b[p] : 0;
    this.p = p;
    return c;
  }

  /** The value that starts with `c` at `p` (undefined, with `bad` set, when the parser gives up). */
  value(c: number, depth: number): unknown {
    if (c === 0x22) return this.string();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (depth > MAX_DEPTH) return this.fail();
    if (c === 0x7b) return this.object(depth + 1);
    if (c === 0x5b) return this.array(depth + 1);
    if (c === 0x74) return this.literal('true', true);
    if (c === 0x66) return this.literal('false', false);
    if (c === 0x6e) return this.literal('null', null);
    return this.fail();
  }

  literal(word: string, v: boolean | null): boolean | null | undefined {
    const b = this.b;
    const p = this.p;
    if (p + word.length > this.n) return this.fail();
    for (let i = 1; i < word.length; i++) if (b[p + i] !== word.charCodeAt(i)) return this.fail();
    this.p = p + word.length;
    return v;
  }

  /** At `{`: a generic object. */
  object(depth: number): Record<string, unknown> | undefined {
    const o: Record<string, unknown> = {};
    this.p++;
    let c = this.ws();
    if (c === 0x7d) {
      this.p++;
      return o;
    }
    for (;;) {
      if (c !== 0x22) return this.fail();
      const key = this.string();
      if (key === undefined) return undefined;
      // Also true of __proto__ and of names on Object.prototype: leave those (and duplicates) to JSON.parse.
      if (o[key] !== undefined) return this.fail();
      if (this.ws() !== 0x3a) return this.fail();
      this.p++;
      const v = this.value(this.ws(), depth);
      if (this.bad) return undefined;
      o[key] = v;
      c = this.ws();
      if (c === 0x2c) {
        this.p++;
        c = this.ws();
      } else if (c === 0x7d) {
        this.p++;
        return o;
      } else return this.fail();
    }
  }

  /** At `{`: the root object; only the members in ROOT_KEYS are kept. */
  root(): Record<string, unknown> | undefined {
    const o = { id: undefined as unknown, inputs: undefined as unknown, outputs: undefined as unknown, parameters: undefined as unknown };
    return this.members(o, ROOT_KEYS, ROOT_KEY_BYTES, (k, c) => {
      if (k === 0) o.id = this.value(c, 1);
      else if (k === 1) o.inputs = c === 0x5b ? this.inputs() : this.value(c, 1);
      else if (k === 2) o.outputs = this.value(c, 1);
      else if (k === 3) o.parameters = this.value(c, 1);
      else this.value(c, 1);
    });
  }

  /** At `{`: an element of the root's "inputs"; only the members in INPUT_KEYS are kept. */
  input(): Record<string, unknown> | undefined {
    const o = {
      name: undefined as unknown,
      shape: undefined as unknown,
      datatype: undefined as unknown,
      parameters: undefined as unknown,
      data: undefined as unknown,
    };
    return this.members(o, INPUT_KEYS, INPUT_KEY_BYTES, (k, c) => {
      if (k === 0) o.name = this.value(c, 3);
      else if (k === 1) o.shape = c === 0x5b ? this.smallInts() : this.value(c, 3);
      else if (k === 2) o.datatype = this.value(c, 3);
      else if (k === 3) o.parameters = this.value(c, 3);
      else if (k === 4) o.data = c === 0x5b ? this.data() : this.value(c, 3);
      else this.value(c, 3);
    });
  }

  /**
   * At `{`: an object of known members. `read(k, c)` reads the value of the member named `names[k]` (k = -1 for any
   * other name) at its first byte `c` into `o`; a known name twice is left to JSON.parse.
   */
  private members<T>(o: T, names: readonly string[], bytes: readonly Uint8Array[], read: (k: number, c: number) => void): T | undefined {
    let seen = 0;
    this.p++;
    let c = this.ws();
    if (c === 0x7d) {
      this.p++;
      return o;
    }
    for (;;) {
      if (c !== 0x22) return this.fail();
      const k = this.keyIn(names, bytes);
      if (k >= 0) {
        if (seen & (1 << k)) return this.fail();
        seen |= 1 << k;
      }
      if (this.bad || this.ws() !== 0x3a) return this.fail();
      this.p++;
      read(k, this.ws());
      if (this.bad) return undefined;
      c = this.ws();
      if (c === 0x2c) {
        this.p++;
        c = this.ws();
      } else if (c === 0x7d) {
        this.p++;
        return o;
      } else return this.fail();
    }
  }

  /** At `[`: the generic array. */
  array(depth: number): unknown[] | undefined {
    const a: unknown[] = [];
    this.p++;
    let c = this.ws();
    if (c === 0x5d) {
      this.p++;
      return a;
    }
    for (;;) {
      const v = this.value(c, depth);
      if (this.bad) return undefined;
      a.push(v);
      c = this.ws();
      if (c === 0x2c) {
        this.p++;
        c = this.ws();
      } else if (c === 0x5d) {
        this.p++;
        return a;
      } else return this.fail();
    }
  }

  /**
   * At `[`: an input's "shape", usually a short array of small non-negative integers, which this reads directly;
   * anything else is read by the generic parser.
   */
  smallInts(): unknown[] | undefined {
    const b = this.b;
    const start = this.p;
    let p = start;
    const a: number[] = [];
    let c = b[++p];
    while (isWs(c)) c = b[++p];
    if (c !== 0x5d) {
      for (;;) {
        // 0 or [1-9][0-9]{0,8}: exact in int32.
        let d = c - 0x30;
        if (d < 0 || d > 9) return this.array(3);
        let v = d;
        c = b[++p];
        if (d !== 0) {
          const digitsStart = p;
          while ((d = c - 0x30) >= 0 && d <= 9) {
            v = v * 10 + d;
            c = b[++p];
          }
          if (p - digitsStart > 8) return this.array(3);
        }
        if (c === 0x2e || c === 0x65 || c === 0x45) return this.array(3);
        a.push(v);
        while (isWs(c)) c = b[++p];
        if (c === 0x2c) {
          c = b[++p];
          while (isWs(c)) c = b[++p];
        } else if (c === 0x5d) break;
        else return this.array(3);
      }
    }
    this.p = p + 1;
    return a;
  }

  /** At `[`: the root's "inputs" array, whose object elements are inputs. */
  inputs(): unknown[] | undefined {
    const a: unknown[] = [];
    this.p++;
    let c = this.ws();
    if (c === 0x5d) {
      this.p++;
      return a;
    }
    for (;;) {
      const v = c === 0x7b ? this.input() : this.value(c, 2);
      if (this.bad) return undefined;
      a.push(v);
      c = this.ws();
      if (c === 0x2c) {
        this.p++;
        c = this.ws();
      } else if (c === 0x5d) {
        this.p++;
        return a;
      } else return this.fail();
    }
  }

  /**
   * At `[`: an input's "data". Numbers go to `values` (a NumberSpan). Anything else (strings, booleans, mixed or
   * malformed arrays) is what JSON.parse reads faster than this parser would: the whole body is left to it.
   */
  data(): NumberSpan | undefined {
    const offset = this.count;
    if (this.numbers(4)) return new NumberSpan(offset, this.count - offset);
    return this.fail();
  }

  /**
   * At `[`: an array whose elements are all numbers on the fast path, or all such arrays (recursively). Appends the
   * numbers in order; false (position and count then undefined) for anything else.
   */
  numbers(depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    const open = this.p;
    this.p++;
    let c = this.ws();
    if (c === 0x5d) {
      this.p++;
      return true;
    }
    if (c === 0x5b) {
      for (;;) {
        if (!this.numbers(depth + 1)) return false;
        c = this.ws();
        if (c === 0x2c) {
          this.p++;
          if (this.ws() !== 0x5b) return false;
        } else if (c === 0x5d) {
          this.p++;
          return true;
        } else return false;
      }
    }
    return this.flatNumbers(c, open);
  }

  /** Inside the `[` at `open`, at the first number: the numbers up to `]`. The hot loop. */
  flatNumbers(c: number, open: number): boolean {
    const t = this.b;
    let p = this.p;
    const first = this.count;
    let k = first;
    let out = this.values;
    for (;;) {
      // Grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
      const start = p;
      let neg = false;
      if (c === 0x2d) {
        neg = true;
        c = t[++p];
      }
      // Up to 9 digits the mantissa is accumulated in int32 arithmetic, exactly; with more, the int32 has wrapped
      // and the number is parsed again in doubles (fastNumber).
      const intStart = p;
      let w = 0;
      let d = c - 0x30;
      if (d === 0) {
        c = t[++p];
      } else if (d > 0 && d <= 9) {
        w = d;
        for (;;) {
          c = t[++p];
          d = c - 0x30;
          if (d < 0 || d > 9) break;
          w = (w * 10 + d) | 0;
        }
      } else return false;
      let digits = p - intStart;
      let e10 = 0;
      if (c === 0x2e) {
        const fracStart = p + 1;
        for (;;) {
          c = t[++p];
          d = c - 0x30;
          if (d < 0 || d > 9) break;
          w = (w * 10 + d) | 0;
        }
        if (p === fracStart) return false;
        e10 = fracStart - p;
        digits += p - fracStart;
      }
      let v: number;
      if (digits > 9) {
        v = fastNumber(t, start);
        if (v !== v) return this.offPathAt(open, first, start, k);
        p = numberEnd;
        c = t[p];
      } else {
        if (c === 0x65 || c === 0x45) {
          c = t[++p];
          let expNeg = false;
          if (c === 0x2d || c === 0x2b) {
            expNeg = c === 0x2d;
            c = t[++p];
          }
          const expStart = p;
          let x = 0;
          for (;;) {
            d = c - 0x30;
            if (d < 0 || d > 9) break;
            if (x < 100000) x = x * 10 + d;
            c = t[++p];
          }
          if (p === expStart) return false;
          e10 += expNeg ? -x : x;
        }
        if (e10 > 22 || e10 < -22) return this.offPathAt(open, first, start, k);
        // w < 10^9: exact, and so is 10^|e10|; one correctly rounded operation.
        v = e10 === 0 ? w : e10 > 0 ? w * POW10[e10] : w / POW10[-e10];
        if (neg) v = -v;
      }
      if (k === out.length) {
        const bigger = new Float64Array(out.length * 2);
        bigger.set(out);
        this.values = out = bigger;
      }
      out[k++] = v;
      if (c === 0x2c) {
        c = t[++p];
        if (c <= 0x20) while (isWs(c)) c = t[++p];
        continue;
      }
      while (isWs(c)) c = t[++p];
      if (c === 0x2c) {
        c = t[++p];
        while (isWs(c)) c = t[++p];
        continue;
      }
      if (c === 0x5d) {
        this.p = p + 1;
        this.count = k;
        return true;
      }
      return false;
    }
  }

  /**
   * flatNumbers at a number token off the exact path (at `token`; the array opened at `open`, its numbers so far are
   * in `values` from `first` to `count`): JSON.parse reads the rest of this flat array, up to the next `]`, in one
   * call (a number token means the same wherever it stands); from the `[` itself when few numbers came before, which
   * spares a copy. True when what it read is numbers only (then they are stored); false otherwise, including when
   * the cut is not JSON (a `]` inside a string, say), and the array is then parsed generically.
   */
  offPathAt(open: number, first: number, token: number, count: number): boolean {
    // Numbers only means nothing beyond ASCII up to the `]`, so there the text and the bytes line up (`shift`).
    const shift = this.shift;
    this.decodeTo(this.n);
    const close = this.t.indexOf(']', token - shift) + shift;
    if (close < shift) return false;
    const fromOpen = count - first < 32;
    if (fromOpen) count = first;
    let read: unknown;
    try {
      read = JSON.parse(fromOpen ? this.t.slice(open - shift, close + 1 - shift) : '[' + this.t.slice(token - shift, close + 1 - shift));
    } catch {
      return false;
    }
    const rest = read as unknown[];
    for (let i = 0; i < rest.length; i++) if (typeof rest[i] !== 'number') return false;
    let out = this.values;
    if (count + rest.length > out.length) {
      const bigger = new Float64Array(Math.max(out.length * 2, count + rest.length));
      bigger.set(out.subarray(0, count));
      this.values = out = bigger;
    }
    for (let i = 0; i < rest.length; i++) out[count + i] = rest[i] as number;
    // Every integer beyond 2^53 is off the fast path, so it is here: keep its digits too (the tokens, numbers only,
    // come in the order of `rest`).
    const cut = fromOpen ? this.t.slice(open - shift, close - shift) : this.t.slice(token - shift, close - shift);
    if (LONG_DIGITS.test(cut)) {
      const tokens = cut.match(NUMBER_TOKEN) ?? [];
      for (let i = 0; i < tokens.length; i++) {
        if (tokens[i].length >= 16 && INTEGER_TOKEN.test(tokens[i])) (this.exact ??= new Map()).set(count + i, BigInt(tokens[i]));
      }
    }
    this.count = count + rest.length;
    this.p = close + 1;
    return true;
  }

  /** At `-` or a digit: one number. Off the fast path the token goes to JSON.parse. */
  number(): number | undefined {
    const b = this.b;
    const start = this.p;
    const v = fastNumber(b, start);
    if (v === v) {
      this.p = numberEnd;
      return v;
    }
    let p = start;
    let c = b[p];
    // Everything a number token could be made of; JSON.parse judges the token.
    while ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45) c = ++p < this.n ? b[p] : 0;
    if (++this.delegated > MAX_DELEGATED) return this.fail();
    const token = this.text(start, p, this.shift);
    this.p = p;
    try {
      return JSON.parse(token) as number;
    } catch {
      return this.fail(); // not a JSON number
    }
  }

  /** At `"`: an object key. Returns its index in `names` (spelled as `bytes`), or -1. */
  keyIn(names: readonly string[], bytes: readonly Uint8Array[]): number {
    const b = this.b;
    const start = this.p + 1;
    const first = start < this.n ? b[start] : 0;
    for (let k = 0; k < bytes.length; k++) {
      const name = bytes[k];
      if (name[0] !== first) continue;
      const end = start + name.length;
      // The name's bytes then a quote: that quote closes the key (the names hold no backslash).
      if (end >= this.n || b[end] !== 0x22) continue;
      let i = 1;
      while (i < name.length && b[start + i] === name[i]) i++;
      if (i === name.length) {
        this.p = end + 1;
        return k;
      }
    }
    const key = this.string(); // another key, or one spelled with escapes: decode it
    return key === undefined ? -1 : names.indexOf(key);
  }

  /** At `"`. */
  string(): string | undefined {
    const b = this.b;
    const n = this.n;
    const start = this.p + 1;
    let q = start;
    let plain = true; // no escapes, no bytes beyond ASCII
    let ascii = true;
    let h = 0;
    for (;;) {
      if (q >= n) return this.fail();
      const c = b[q];
      if (c === 0x22) break;
      if (c === 0x5c) {
        plain = false;
        q += 2;
      } else if (c < 0x20) {
        return this.fail(); // JSON.parse refuses raw control characters
      } else {
        if (c >= 0x80) plain = ascii = false;
        h = (h * 31 + c) | 0;
        q++;
      }
    }
    this.p = q + 1;
    const shift = this.shift;
    if (plain) {
      const len = q - start;
      if (len <= MAX_CACHED_STRING) {
        // Short ASCII strings (names, datatypes, ids…) recur from request to request: reuse the same string.
        const slot = (h ^ (h >>> 10)) & (STRING_CACHE.length - 1);
        const cached = STRING_CACHE[slot];
        if (cached.length === len) {
          let i = 0;
          while (i < len && cached.charCodeAt(i) === b[start + i]) i++;
          if (i === len) return cached;
        }
        // Made from the bytes (ASCII: one character each), so the cache holds no slice of a body's text.
        const fresh = String.fromCharCode.apply(null, b.subarray(start, q) as unknown as number[]);
        STRING_CACHE[slot] = fresh;
        return fresh;
      }
      return this.text(start, q, shift);
    }
    if (!ascii) {
      // `"` and `\` never occur inside a UTF-8 sequence, and decoding stops and restarts cleanly at ASCII bytes, so
      // this string's characters in the text are exactly the decoded bytes between its quotes.
      this.shift += q - start - utf8.decode(b.subarray(start, q)).length;
    }
    const token = this.text(start - 1, q + 1, shift);
    try {
      return JSON.parse(token) as string;
    } catch {
      return this.fail(); // a bad escape
    }
  }
}

/** Where the last {@link fastNumber} call stopped. */
let numberEnd = 0;

/**
 * The number token at `t[p]` (a `}` must follow somewhere: reads are not checked) when it is on the exact fast path (and sets {@link numberEnd} past it); NaN when it is
 * not, or is not a number token's start. The token's end is not checked: the caller checks what follows.
 */
function fastNumber(t: Uint8Array, p: number): number {
  let c = t[p];
  let neg = false;
  if (c === 0x2d) {
    neg = true;
    c = t[++p];
  }
  let w = 0;
  let d = c - 0x30;
  if (d === 0) {
    c = t[++p];
  } else if (d > 0 && d <= 9) {
    w = d;
    for (;;) {
      c = t[++p];
      d = c - 0x30;
      if (d < 0 || d > 9) break;
      w = w * 10 + d;
    }
  } else return NaN;
  let e10 = 0;
  if (c === 0x2e) {
    const fracStart = p + 1;
    for (;;) {
      c = t[++p];
      d = c - 0x30;
      if (d < 0 || d > 9) break;
      w = w * 10 + d;
    }
    if (p === fracStart) return NaN;
    e10 = fracStart - p;
  }
  if (c === 0x65 || c === 0x45) {
    c = t[++p];
    let expNeg = false;
    if (c === 0x2d || c === 0x2b) {
      expNeg = c === 0x2d;
      c = t[++p];
    }
    const expStart = p;
    let x = 0;
    for (;;) {
      d = c - 0x30;
      if (d < 0 || d > 9) break;
      if (x < 100000) x = x * 10 + d;
      c = t[++p];
    }
    if (p === expStart) return NaN;
    e10 += expNeg ? -x : x;
  }
  if (w >= TWO_53 || e10 > 22 || e10 < -22) return NaN;
  const v = e10 >= 0 ? w * POW10[e10] : w / POW10[-e10];
  numberEnd = p;
  return neg ? -v : v;
}

/**
 * The value of the JSON number token `token` when this module parses it itself (exact fast path, whole token);
 * undefined when it leaves it to JSON.parse. For tests.
 */
export function parseFastNumber(token: string): number | undefined {
  const v = fastNumber(utf8Encoder.encode(token + '}'), 0);
  return v === v && numberEnd === token.length ? v : undefined;
}

/**
 * Parses a request body's bytes, which JSON.parse would read decoded as UTF-8 (invalid bytes replaced, a leading BOM
 * dropped). Returns null where it leaves the text to JSON.parse: a root that is not an object, anything it does not
 * vouch for, and every malformed text.
 */
export function parseRequestJson(bytes: Uint8Array): ParsedRequestJson | null {
  let last = bytes.length - 1;
  while (last >= 0 && isWs(bytes[last])) last--;
  if (last < 0 || bytes[last] !== 0x7d) return null; // see the note on bounds at the top
  const parser = PARSER;
  parser.reset(bytes);
  try {
    if (parser.ws() !== 0x7b) return null;
    const value = parser.root();
    if (value === undefined || parser.bad) return null;
    parser.ws();
    if (parser.p !== parser.n) return null;
    return { value, values: parser.values, exact: parser.exact };
  } catch {
    return null; // nothing here throws on purpose; anything unforeseen leaves the body to JSON.parse
  } finally {
    parser.release();
  }
}

const PARSER = new Parser();
