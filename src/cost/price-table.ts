// Price tables are data (data/prices/*.json), not code: a price changes without a release, and every figure must
// carry where it came from and the date it holds for, so a reader can re-check it and `--check` can flag old ones.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../core/errors.ts';

export const DEFAULT_PRICES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../data/prices');

export interface PriceTier {
  /** Upper bound of the tier in the tier's unit (cumulative); null = no bound. */
  upTo: number | null;
  value: number;
}

export interface PriceFact {
  value?: number;
  tiers?: PriceTier[];
  /** For facts that are dates (e.g. when a billing rule started). */
  date?: string;
  unit: string;
  source: string;
  /** YYYY-MM-DD, YYYY-MM or YYYY: as precise as the source. */
  asOf: string;
  asOfKind: 'published' | 'retrieved';
  note?: string;
  [extra: string]: unknown;
}

export interface PriceTable {
  service: string;
  title: string;
  region: string;
  currency: 'USD';
  prices: Record<string, PriceFact>;
  /** File it was read from. */
  file: string;
}

export class PriceTableError extends UserError {}

const AS_OF = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;

/** Reads and validates every *.json in the folder; all problems are reported at once, each naming file and field. */
export function loadPriceTables(dir = DEFAULT_PRICES_DIR): Map<string, PriceTable> {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch {
    throw new PriceTableError(`price tables folder not found: ${dir} (give one with --prices <dir>)`);
  }
  if (files.length === 0) throw new PriceTableError(`no *.json price tables in ${dir}`);
  const tables = new Map<string, PriceTable>();
  const problems: string[] = [];
  for (const f of files) {
    const path = join(dir, f);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      problems.push(`${f}: not valid JSON (${(e as Error).message})`);
      continue;
    }
    const t = raw as Partial<PriceTable>;
    if (typeof t.service !== 'string') problems.push(`${f}: 'service' must be a string`);
    if (t.currency !== 'USD') problems.push(`${f}: 'currency' must be "USD"`);
    if (!t.prices || typeof t.prices !== 'object') {
      problems.push(`${f}: 'prices' must be an object of price facts`);
      continue;
    }
    for (const [key, p] of Object.entries(t.prices)) problems.push(...validateFact(`${f}: prices.${key}`, p));
    if (typeof t.service === 'string') tables.set(t.service, { ...(t as PriceTable), file: path });
  }
  if (problems.length) throw new PriceTableError(`invalid price tables:\n  ${problems.join('\n  ')}`);
  return tables;
}

function validateFact(where: string, p: PriceFact): string[] {
  const out: string[] = [];
  if (!p || typeof p !== 'object') return [`${where}: must be an object`];
  const hasValue = typeof p.value === 'number' && Number.isFinite(p.value) && p.value >= 0;
  const hasTiers = Array.isArray(p.tiers) && p.tiers.length > 0 && p.tiers.every((t) => typeof t.value === 'number' && (t.upTo === null || typeof t.upTo === 'number'));
  const hasDate = typeof p.date === 'string' && AS_OF.test(p.date);
  if (!hasValue && !hasTiers && !hasDate) out.push(`${where}: needs a non-negative 'value', a 'tiers' list or a 'date'`);
  if (hasTiers && p.tiers![p.tiers!.length - 1].upTo !== null) out.push(`${where}: the last tier must have upTo null`);
  if (typeof p.unit !== 'string' || !p.unit) out.push(`${where}: 'unit' is missing`);
  if (typeof p.source !== 'string' || !p.source) out.push(`${where}: 'source' (the address it was read from) is missing`);
  if (typeof p.asOf !== 'string' || !AS_OF.test(p.asOf)) out.push(`${where}: 'asOf' must be YYYY-MM-DD, YYYY-MM or YYYY, got ${JSON.stringify(p.asOf)}`);
  if (p.asOfKind !== 'published' && p.asOfKind !== 'retrieved') out.push(`${where}: 'asOfKind' must be "published" or "retrieved"`);
  return out;
}

/** The earliest day an as-of date can mean (a year-only date counts from 1 January), as UTC midnight. */
export function earliestDate(asOf: string): Date {
  const m = AS_OF.exec(asOf);
  if (!m) throw new PriceTableError(`bad date '${asOf}'`);
  return new Date(Date.UTC(Number(m[1]), m[2] ? Number(m[2]) - 1 : 0, m[3] ? Number(m[3]) : 1));
}

export interface StalePrice {
  service: string;
  key: string;
  asOf: string;
  source: string;
  ageDays: number;
}

/** Every fact whose as-of date is more than `maxAgeDays` before `today`. */
export function stalePrices(tables: Map<string, PriceTable>, today: Date, maxAgeDays = 365): StalePrice[] {
  const out: StalePrice[] = [];
  for (const t of tables.values()) {
    for (const [key, p] of Object.entries(t.prices)) {
      const ageDays = Math.floor((today.getTime() - earliestDate(p.asOf).getTime()) / 86_400_000);
      if (ageDays > maxAgeDays) out.push({ service: t.service, key, asOf: p.asOf, source: p.source, ageDays });
    }
  }
  return out.sort((a, b) => b.ageDays - a.ageDays);
}

/** Looks a fact up, failing with the file and key when a table lacks it. */
export function fact(tables: Map<string, PriceTable>, service: string, key: string): PriceFact {
  const t = tables.get(service);
  if (!t) throw new PriceTableError(`no price table for service '${service}' (expected data/prices/${service}.json)`);
  const p = t.prices[key];
  if (!p) throw new PriceTableError(`price table '${service}' (${t.file}) has no '${key}'`);
  return p;
}

export function value(tables: Map<string, PriceTable>, service: string, key: string): number {
  const p = fact(tables, service, key);
  if (typeof p.value !== 'number') throw new PriceTableError(`price '${service}.${key}' has no single value`);
  return p.value;
}
