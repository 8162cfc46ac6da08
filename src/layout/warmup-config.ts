// The config file's `warmup` key, as the repository layout declares it (what it does when a version loads is
// src/serve/warmup.ts).

/** The config file's `warmup` key: `false` turns it off; otherwise every field is optional. */
export interface WarmupConfig {
  /** Runs per batch size, on every instance (default 2: src/serve/warmup.ts says why). */
  runs?: number;
  /** Batch sizes to warm (dimension 0, where it is variable); default [1]. */
  batch_sizes?: number[];
  /** `zeros` (default) or `random`: random values reach code paths zeros can skip (e.g. sparse shortcuts). */
  data?: 'zeros' | 'random';
}

export const DEFAULT_WARMUP_RUNS = 2;

export const WARMUP_KEYS = ['runs', 'batch_sizes', 'data'];

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Validates a config's `warmup` value, pushing one problem per bad field (the config parser's convention). */
export function parseWarmup(raw: unknown, problems: string[]): WarmupConfig | false | undefined {
  if (raw === undefined) return undefined;
  if (raw === false) return false;
  if (raw === true) return {};
  if (!isObject(raw)) {
    problems.push(`'warmup' must be false or an object {runs, batch_sizes, data}, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  const out: WarmupConfig = {};
  for (const k of Object.keys(raw)) if (!WARMUP_KEYS.includes(k)) problems.push(`unknown key 'warmup.${k}' (allowed: ${WARMUP_KEYS.join(', ')})`);
  if (raw.runs !== undefined) {
    if (!Number.isInteger(raw.runs) || (raw.runs as number) < 0 || (raw.runs as number) > 10_000) problems.push(`'warmup.runs' must be a whole number from 0 to 10000, got ${JSON.stringify(raw.runs)}`);
    else out.runs = raw.runs as number;
  }
  if (raw.batch_sizes !== undefined) {
    const b = raw.batch_sizes;
    if (!Array.isArray(b) || b.length === 0 || !b.every((x) => Number.isInteger(x) && x >= 1 && x <= 1 << 16)) {
      problems.push(`'warmup.batch_sizes' must be a non-empty list of whole numbers from 1 to 65536, got ${JSON.stringify(b)}`);
    } else out.batch_sizes = b as number[];
  }
  if (raw.data !== undefined) {
    if (raw.data !== 'zeros' && raw.data !== 'random') problems.push(`'warmup.data' must be 'zeros' or 'random', got ${JSON.stringify(raw.data)}`);
    else out.data = raw.data;
  }
  return out;
}
