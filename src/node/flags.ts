// Command-line flag tables declared by kind, in node:util parseArgs's shape: one line per command instead of one
// `{ type: 'string' }` per flag. Below serve, monitor and cli (it imports nothing) so all their flag sets use it.

type Kinds<S extends string, B extends string, M extends string> = { string?: readonly S[]; boolean?: readonly B[]; multiple?: readonly M[] };

/** parseArgs's options table for these flags (types kept, so parsed values are typed). */
export type FlagTable<S extends string = never, B extends string = never, M extends string = never> = {
  [K in S | B | M]: K extends M ? { type: 'string'; multiple: true } : K extends B ? { type: 'boolean' } : { type: 'string' };
};

/** `flags({ string: ['out'], boolean: ['json'], multiple: ['request'] })`: string flags take a value, boolean flags none, multiple ones repeat. */
export function flags<const S extends string = never, const B extends string = never, const M extends string = never>(kinds: Kinds<S, B, M>): FlagTable<S, B, M> {
  const table: Record<string, { type: 'string' | 'boolean'; multiple?: true }> = {};
  for (const k of kinds.boolean ?? []) table[k] = { type: 'boolean' };
  for (const k of kinds.string ?? []) table[k] = { type: 'string' };
  for (const k of kinds.multiple ?? []) table[k] = { type: 'string', multiple: true };
  return table as FlagTable<S, B, M>;
}

/** The flags of a table that take no value (the word after them is not theirs). */
export function booleanFlags(table: Readonly<Record<string, { type: string }>>): Set<string> {
  return new Set(Object.entries(table).filter(([, o]) => o.type === 'boolean').map(([k]) => k));
}

/** Levenshtein distance, for "did you mean" on a misspelled flag. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The known flag closest to a misspelled one, when it is close enough to be what was meant (at most 2 edits, and under half the word). */
export function closestFlag(unknown: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(unknown, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.min(2, Math.floor(unknown.length / 2)) ? best : undefined;
}
