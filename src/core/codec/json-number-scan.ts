// The number scanner under the request parser (json-numbers.ts): the parse's state (the body, the position, where
// parsed numbers go), whitespace, and number tokens — one at a time or a whole "data" array of them.
//
// Numbers: only Clinger's exact fast path is taken here: an integer mantissa below 2^53 (exact in a double; up to
//   9 digits it is summed in int32 arithmetic, beyond that in doubles) and a power of ten from 10^0 to 10^22 (exact
//   too), so the value is one correctly rounded multiplication or division: the double JSON.parse (correctly
//   rounded) gives. -0 stays -0. Any other number token is handed to JSON.parse itself: in "data", the rest of its
//   flat array in one call (float32 values printed as 17-digit doubles then cost what they cost before); elsewhere
//   token by token, a few per body at most (then the whole body is left to JSON.parse).
//
// Bodies are taken only when their last byte other than whitespace is `}`. The number loops (with the whitespace
// between numbers) advance only from bytes that are not `}`, so that byte bounds their reads and they need no length
// checks (about a fifth faster); the other loops, which may pass a `}`, check the length.
import { utf8Decoder, utf8Encoder } from './wire.ts';

// 10^0 … 10^22: every one is exactly representable as a double.
const POW10 = new Float64Array([
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
  1e21, 1e22,
]);
const TWO_53 = 9007199254740992;
/**
 * An integer token of 16 digits or more in a flat array's text (after `[`, `,` or whitespace, and not going on as a
 * fraction or an exponent): the only tokens whose exact digits are kept. A bare /\d{16}/ also matched the fraction of
 * every float printed as a 17-digit double, and sent each of a big tensor's numbers through two more regexes (a
 * 150,528-float body: 79 ms to decode against 35 for JSON.parse, 2026-12-06).
 */
const LONG_INTEGER = /(?:^|[[,\s])-?\d{16,}(?![\d.eE])/;
const NUMBER_TOKEN = /-?\d[\d.eE+-]*/g;
const INTEGER_TOKEN = /^-?\d+$/;
/** Number tokens off the fast path outside "data" handed to JSON.parse one by one before the body is left to it. */
const MAX_DELEGATED = 16;
/** Nesting deeper than this is left to JSON.parse (no deep recursion here). */
export const MAX_DEPTH = 64;
/**
 * The values buffer is kept between parses up to this many elements (8 MiB; only the pages a parse wrote are
 * resident). It was 64 Ki: then every request of 250,000 JSON numbers grew a new one by doubling — 4 MB of garbage
 * outside the V8 heap per request, which kept V8 collecting on "external memory pressure" every ~30 ms under 1 MB
 * JSON requests and promoting the requests in flight (issue 22's slow readers, 2026-12-06).
 */
const KEEP_ELEMENTS = 1 << 20;

/** JSON whitespace: space, tab, line feed, carriage return (WS[c] is 1 for those bytes). */
const WS = new Uint8Array(256);
WS[0x20] = WS[0x09] = WS[0x0a] = WS[0x0d] = 1;

export function isWs(c: number): boolean {
  return WS[c] === 1;
}

const EMPTY = new Uint8Array(0);

/** One parse's state and its number scanning; json-numbers.ts's parser walks the objects on top of it. */
export class NumberScanner {
  /** The body's bytes, and how many there are. */
  bytes: Uint8Array = EMPTY;
  length = 0;
  /**
   * The body's first `decodedBytes` bytes decoded (strings are cut from it), decoded when first needed and then only as far
   * as needed: a prefix ending at an ASCII byte decodes to the same characters as the start of the whole.
   */
  text = '';
  decodedBytes = 0;
  /** Position in `bytes`. */
  pos = 0;
  /** Bytes minus characters before `pos`: non-ASCII UTF-8 (only ever inside strings) makes them differ. */
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
    this.bytes = b;
    this.length = b.length;
    this.text = '';
    this.decodedBytes = 0;
    this.pos = 0;
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
    this.bytes = EMPTY;
    this.text = '';
    if (this.values.length > KEEP_ELEMENTS) this.values = new Float64Array(1024);
  }

  /** The text of bytes [from, to), both at ASCII bytes; `shift` is bytes minus characters before `from`. */
  textAt(from: number, to: number, shift: number): string {
    this.decodeTo(to);
    return this.text.slice(from - shift, to - this.shift);
  }

  /** Makes `text` cover the body up to byte `to` at least. */
  decodeTo(to: number): void {
    if (to > this.decodedBytes) {
      // The first time, decode a little past what is needed (bodies put "data" last); after that, everything.
      this.decodedBytes = this.decodedBytes === 0 ? Math.min(this.length, to + 256) : this.length;
      this.text = utf8Decoder.decode(this.bytes.subarray(0, this.decodedBytes));
    }
  }

  /** Skips whitespace; returns the next character code (0 at the end). */
  ws(): number {
    const b = this.bytes;
    const n = this.length;
    let p = this.pos;
    let c = p < n ? b[p] : 0;
    if (c > 0x20) return c;
    while (isWs(c)) c = ++p < n ? b[p] : 0;
    this.pos = p;
    return c;
  }

  /**
   * At `[`: an array whose elements are all numbers on the fast path, or all such arrays (recursively). Appends the
   * numbers in order; false (position and count then undefined) for anything else.
   */
  numbers(depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    const open = this.pos;
    this.pos++;
    let c = this.ws();
    if (c === 0x5d) {
      this.pos++;
      return true;
    }
    if (c === 0x5b) {
      for (;;) {
        if (!this.numbers(depth + 1)) return false;
        c = this.ws();
        if (c === 0x2c) {
          this.pos++;
          if (this.ws() !== 0x5b) return false;
        } else if (c === 0x5d) {
          this.pos++;
          return true;
        } else return false;
      }
    }
    return this.flatNumbers(c, open);
  }

  /** Inside the `[` at `open`, at the first number: the numbers up to `]`. The hot loop. */
  flatNumbers(c: number, open: number): boolean {
    const t = this.bytes;
    let p = this.pos;
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
          const x = exponentAt(t, p + 1);
          if (x !== x) return false;
          e10 += x;
          p = numberEnd;
          c = t[p];
        }
        if (e10 > 22 || e10 < -22) return this.offPathAt(open, first, start, k);
        // w < 10^9: exact, and so is 10^|e10|; one correctly rounded operation.
        v = e10 === 0 ? w : e10 > 0 ? w * POW10[e10] : w / POW10[-e10];
        if (neg) v = -v;
      }
      if (k === out.length) {
        const bigger = new Float64Array(out.length * 4);
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
        this.pos = p + 1;
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
    this.decodeTo(this.length);
    const close = this.text.indexOf(']', token - shift) + shift;
    if (close < shift) return false;
    const fromOpen = count - first < 32;
    if (fromOpen) count = first;
    let read: unknown;
    try {
      read = JSON.parse(fromOpen ? this.text.slice(open - shift, close + 1 - shift) : '[' + this.text.slice(token - shift, close + 1 - shift));
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
    const cut = fromOpen ? this.text.slice(open - shift, close - shift) : this.text.slice(token - shift, close - shift);
    if (LONG_INTEGER.test(cut)) {
      const tokens = cut.match(NUMBER_TOKEN) ?? [];
      for (let i = 0; i < tokens.length; i++) {
        if (tokens[i].length >= 16 && INTEGER_TOKEN.test(tokens[i])) (this.exact ??= new Map()).set(count + i, BigInt(tokens[i]));
      }
    }
    this.count = count + rest.length;
    this.pos = close + 1;
    return true;
  }

  /** At `-` or a digit: one number. Off the fast path the token goes to JSON.parse. */
  number(): number | undefined {
    const b = this.bytes;
    const start = this.pos;
    const v = fastNumber(b, start);
    if (v === v) {
      this.pos = numberEnd;
      return v;
    }
    let p = start;
    let c = b[p];
    // Everything a number token could be made of; JSON.parse judges the token.
    while ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45) c = ++p < this.length ? b[p] : 0;
    if (++this.delegated > MAX_DELEGATED) return this.fail();
    const token = this.textAt(start, p, this.shift);
    this.pos = p;
    try {
      return JSON.parse(token) as number;
    } catch {
      return this.fail(); // not a JSON number
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
    const x = exponentAt(t, p + 1);
    if (x !== x) return NaN;
    e10 += x;
    p = numberEnd;
  }
  if (w >= TWO_53 || e10 > 22 || e10 < -22) return NaN;
  const v = e10 >= 0 ? w * POW10[e10] : w / POW10[-e10];
  numberEnd = p;
  return neg ? -v : v;
}

/**
 * The exponent that starts at `t[p]` (after the `e`): its value, which stops growing past 100000 (only whether it is
 * within ±22 matters), and {@link numberEnd} set past it; NaN when it has no digits.
 */
function exponentAt(t: Uint8Array, p: number): number {
  let c = t[p];
  let neg = false;
  if (c === 0x2d || c === 0x2b) {
    neg = c === 0x2d;
    c = t[++p];
  }
  const start = p;
  let x = 0;
  for (;;) {
    const d = c - 0x30;
    if (d < 0 || d > 9) break;
    if (x < 100000) x = x * 10 + d;
    c = t[++p];
  }
  numberEnd = p;
  if (p === start) return NaN;
  return neg ? -x : x;
}

/**
 * The value of the JSON number token `token` when this module parses it itself (exact fast path, whole token);
 * undefined when it leaves it to JSON.parse. For tests.
 */
export function parseFastNumber(token: string): number | undefined {
  const v = fastNumber(utf8Encoder.encode(token + '}'), 0);
  return v === v && numberEnd === token.length ? v : undefined;
}

