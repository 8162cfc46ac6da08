// A JSON parser for infer request bodies. It gives requestFromJson the same values JSON.parse would, but parses the
// inputs' numeric "data" arrays straight from the bytes into doubles (no JS array of boxed numbers) and avoids
// JSON.parse's fixed costs on the small rest. It vouches only for what it is sure of: on anything else it gives up
// (returns null) and the caller uses JSON.parse on the whole text, which also produces every error message.
//
// Why the values are the same:
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
//
// Numbers, and the bounds that let the number loops skip length checks: json-number-scan.ts.
import { isWs, MAX_DEPTH, NumberScanner } from './json-number-scan.ts';
import { utf8Decoder, utf8Encoder } from './wire.ts';

export { parseFastNumber } from './json-number-scan.ts';

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

/** Plain ASCII strings up to this many bytes go through STRING_CACHE (a power of two slots, '' when empty). */
const MAX_CACHED_STRING = 32;
const STRING_CACHE: string[] = new Array<string>(256).fill('');

/**
 * The members of the root object and of an input that requestFromJson reads, each with its index in its list (the
 * bit `members` marks it seen with: at most 31 per list); keyIn finds a key's index.
 */
const ROOT = { id: 0, inputs: 1, outputs: 2, parameters: 3 } as const;
const INPUT = { name: 0, shape: 1, datatype: 2, parameters: 3, data: 4 } as const;

/** What open() and next() give once the object or array is closed (or, with `bad` set, given up on): no byte is -1. */
const CLOSED = -1;

/** A list of member names, and the same names as bytes (keyIn compares them with the body's bytes). */
interface KnownKeys {
  names: readonly string[];
  bytes: readonly Uint8Array[];
}

function knownKeys(indexOf: Record<string, number>): KnownKeys {
  const names = Object.keys(indexOf).sort((a, b) => indexOf[a] - indexOf[b]);
  return { names, bytes: names.map((k) => utf8Encoder.encode(k)) };
}

const ROOT_KEYS = knownKeys(ROOT);
const INPUT_KEYS = knownKeys(INPUT);

/** One parse (there is one parser, reset for each body: parses never nest): the objects and strings. */
class RequestParser extends NumberScanner {
  /** The value that starts with `c` at `pos` (undefined, with `bad` set, when the parser gives up). */
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
    const b = this.bytes;
    const p = this.pos;
    if (p + word.length > this.length) return this.fail();
    for (let i = 1; i < word.length; i++) if (b[p + i] !== word.charCodeAt(i)) return this.fail();
    this.pos = p + word.length;
    return v;
  }

  /** At an opening bracket: steps in; CLOSED when `close` follows at once (then past it), else the next byte. */
  open(close: number): number {
    this.pos++;
    const c = this.ws();
    if (c !== close) return c;
    this.pos++;
    return CLOSED;
  }

  /** After an element or a member: past a `,`, the next byte; past `close`, CLOSED; anything else gives up (CLOSED). */
  next(close: number): number {
    const c = this.ws();
    if (c === 0x2c) {
      this.pos++;
      return this.ws();
    }
    if (c === close) this.pos++;
    else this.fail();
    return CLOSED;
  }

  /** At `{`: a generic object. */
  object(depth: number): Record<string, unknown> | undefined {
    const o: Record<string, unknown> = {};
    for (let c = this.open(0x7d); c !== CLOSED; c = this.next(0x7d)) {
      if (c !== 0x22) return this.fail();
      const key = this.string();
      if (key === undefined) return undefined;
      // Also true of __proto__ and of names on Object.prototype: leave those (and duplicates) to JSON.parse.
      if (o[key] !== undefined) return this.fail();
      if (this.ws() !== 0x3a) return this.fail();
      this.pos++;
      const v = this.value(this.ws(), depth);
      if (this.bad) return undefined;
      o[key] = v;
    }
    return this.bad ? undefined : o;
  }

  /** At `{`: the root object; only the members in ROOT are kept. */
  root(): Record<string, unknown> | undefined {
    const o = { id: undefined as unknown, inputs: undefined as unknown, outputs: undefined as unknown, parameters: undefined as unknown };
    return this.members(o, ROOT_KEYS, (k, c) => {
      if (k === ROOT.id) o.id = this.value(c, 1);
      else if (k === ROOT.inputs) o.inputs = c === 0x5b ? this.inputs() : this.value(c, 1);
      else if (k === ROOT.outputs) o.outputs = this.value(c, 1);
      else if (k === ROOT.parameters) o.parameters = this.value(c, 1);
      else this.value(c, 1);
    });
  }

  /** At `{`: an element of the root's "inputs"; only the members in INPUT are kept. */
  input(): Record<string, unknown> | undefined {
    const o = {
      name: undefined as unknown,
      shape: undefined as unknown,
      datatype: undefined as unknown,
      parameters: undefined as unknown,
      data: undefined as unknown,
    };
    return this.members(o, INPUT_KEYS, (k, c) => {
      if (k === INPUT.name) o.name = this.value(c, 3);
      else if (k === INPUT.shape) o.shape = c === 0x5b ? this.smallInts() : this.value(c, 3);
      else if (k === INPUT.datatype) o.datatype = this.value(c, 3);
      else if (k === INPUT.parameters) o.parameters = this.value(c, 3);
      else if (k === INPUT.data) o.data = c === 0x5b ? this.data() : this.value(c, 3);
      else this.value(c, 3);
    });
  }

  /**
   * At `{`: an object of known members. `read(k, c)` reads the value of the member named `keys.names[k]` (k = -1 for any
   * other name) at its first byte `c` into `o`; a known name twice is left to JSON.parse.
   */
  private members<T>(o: T, keys: KnownKeys, read: (k: number, c: number) => void): T | undefined {
    let seen = 0;
    for (let c = this.open(0x7d); c !== CLOSED; c = this.next(0x7d)) {
      if (c !== 0x22) return this.fail();
      const k = this.keyIn(keys);
      if (k >= 0) {
        if (seen & (1 << k)) return this.fail();
        seen |= 1 << k;
      }
      if (this.bad || this.ws() !== 0x3a) return this.fail();
      this.pos++;
      read(k, this.ws());
      if (this.bad) return undefined;
    }
    return this.bad ? undefined : o;
  }

  /** At `[`: the generic array. */
  array(depth: number): unknown[] | undefined {
    const a: unknown[] = [];
    for (let c = this.open(0x5d); c !== CLOSED; c = this.next(0x5d)) {
      const v = this.value(c, depth);
      if (this.bad) return undefined;
      a.push(v);
    }
    return this.bad ? undefined : a;
  }

  /**
   * At `[`: an input's "shape", usually a short array of small non-negative integers, which this reads directly;
   * anything else is read by the generic parser.
   */
  smallInts(): unknown[] | undefined {
    const b = this.bytes;
    const start = this.pos;
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
    this.pos = p + 1;
    return a;
  }

  /** At `[`: the root's "inputs" array, whose object elements are inputs. */
  inputs(): unknown[] | undefined {
    const a: unknown[] = [];
    for (let c = this.open(0x5d); c !== CLOSED; c = this.next(0x5d)) {
      const v = c === 0x7b ? this.input() : this.value(c, 2);
      if (this.bad) return undefined;
      a.push(v);
    }
    return this.bad ? undefined : a;
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

  /** At `"`: an object key. Returns its index in `names` (spelled as `bytes`), or -1. */
  keyIn({ names, bytes }: KnownKeys): number {
    const b = this.bytes;
    const start = this.pos + 1;
    const first = start < this.length ? b[start] : 0;
    for (let k = 0; k < bytes.length; k++) {
      const name = bytes[k];
      if (name[0] !== first) continue;
      const end = start + name.length;
      // The name's bytes then a quote: that quote closes the key (the names hold no backslash).
      if (end >= this.length || b[end] !== 0x22) continue;
      let i = 1;
      while (i < name.length && b[start + i] === name[i]) i++;
      if (i === name.length) {
        this.pos = end + 1;
        return k;
      }
    }
    const key = this.string(); // another key, or one spelled with escapes: decode it
    return key === undefined ? -1 : names.indexOf(key);
  }

  /** At `"`. */
  string(): string | undefined {
    const b = this.bytes;
    const n = this.length;
    const start = this.pos + 1;
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
    this.pos = q + 1;
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
      return this.textAt(start, q, shift);
    }
    if (!ascii) {
      // `"` and `\` never occur inside a UTF-8 sequence, and decoding stops and restarts cleanly at ASCII bytes, so
      // this string's characters in the text are exactly the decoded bytes between its quotes.
      this.shift += q - start - utf8Decoder.decode(b.subarray(start, q)).length;
    }
    const token = this.textAt(start - 1, q + 1, shift);
    try {
      return JSON.parse(token) as string;
    } catch {
      return this.fail(); // a bad escape
    }
  }
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
    if (parser.pos !== parser.length) return null;
    return { value, values: parser.values, exact: parser.exact };
  } catch {
    return null; // nothing here throws on purpose; anything unforeseen leaves the body to JSON.parse
  } finally {
    parser.release();
  }
}

const PARSER = new RequestParser();
