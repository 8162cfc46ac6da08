// `dais log export <file.sqlite>`: the prediction log (dais serve --log-db) as JSON Lines or CSV.
import { createWriteStream, existsSync } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { CliError, flags, intFlag, parseFlags, type Command } from './command.ts';

/** Statements kept reachable until their database is closed (see the export loop). */
const held: unknown[] = [];

const HELP = `Usage: dais log export <predictions.sqlite> [options]

Writes the prediction log that 'dais serve --log-db <file>' keeps, oldest first, one record per logged
request: ts (ISO time), model, version, request_id (the response's x-request-id), role (primary = what the
client got, shadow = a shadow version's answer to the same request), duration_ms, error, inputs and outputs
(JSON: {"<tensor>": {"datatype", "shape", "data"}}), and truth (the ground truth sent as feedback, if any).

Options:
  --format <f>      jsonl (default) or csv (inputs, outputs and truth as JSON text in their cells)
  --out <file>      write here instead of stdout
  --model <name>    only this model
  --version <v>     only this version
  --role <r>        only primary or only shadow records
  --since <time>    only records at or after this ISO time (e.g. 2026-11-24T10:00:00Z)
  --limit <n>       at most n records (the newest n within the other filters)
  -h, --help        show this help
`;

interface Row {
  id: number;
  ts: number;
  model: string;
  version: string;
  request_id: string | null;
  role: string;
  duration_ms: number | null;
  inputs: string | null;
  outputs: string | null;
  error: string | null;
  truth: string | null;
}

const COLUMNS = ['ts', 'model', 'version', 'request_id', 'role', 'duration_ms', 'error', 'inputs', 'outputs', 'truth'] as const;

export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  // Text a client chose (an x-request-id of '=1+2' or '@SUM(…)') would run as a formula in a spreadsheet: a leading
  // quote makes it text (OWASP's advice on CSV injection). Numbers are written as they are.
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function record(r: Row): Record<string, unknown> {
  const parse = (s: string | null) => (s === null ? null : JSON.parse(s));
  return {
    ts: new Date(r.ts).toISOString(),
    model: r.model,
    version: r.version,
    request_id: r.request_id,
    role: r.role,
    duration_ms: r.duration_ms,
    error: r.error,
    inputs: parse(r.inputs),
    outputs: parse(r.outputs),
    truth: parse(r.truth),
  };
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

export const command: Command = {
  name: 'log',
  summary: 'Export the prediction log (SQLite) to JSON Lines or CSV',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('log', argv, flags({ string: ['format', 'out', 'model', 'version', 'role', 'since', 'limit'] }));
    if (positionals[0] !== 'export') throw new CliError(`unknown subcommand '${positionals[0] ?? ''}': use 'dais log export <predictions.sqlite>'`);
    if (positionals.length !== 2) throw new CliError(`give one prediction log file: dais log export <predictions.sqlite> (see 'dais log --help')`);
    const file = positionals[1];
    const format = values.format ?? 'jsonl';
    if (format !== 'jsonl' && format !== 'csv') throw new CliError(`--format must be jsonl or csv, got '${format}'`);
    if (values.role !== undefined && values.role !== 'primary' && values.role !== 'shadow') throw new CliError(`--role must be primary or shadow, got '${values.role}'`);
    let since: number | undefined;
    if (values.since !== undefined) {
      since = Date.parse(values.since);
      if (Number.isNaN(since)) throw new CliError(`--since must be an ISO time such as 2026-11-24T10:00:00Z, got '${values.since}'`);
    }
    const limit = values.limit === undefined ? undefined : intFlag('limit', values.limit, 0, 1);
    if (!existsSync(file)) throw new CliError(`prediction log not found: ${file} (dais serve --log-db <file> writes one)`);
    const { DatabaseSync } = await import('@photostructure/sqlite');
    let db;
    try {
      db = new DatabaseSync(file, { readOnly: true });
      db.prepare('SELECT 1 FROM predictions LIMIT 1').get();
    } catch (e) {
      throw new CliError(`${file} is not a dais prediction log: ${(e as Error).message}`);
    }
    const where: string[] = [];
    const params: unknown[] = [];
    if (values.model) (where.push('p.model = ?'), params.push(values.model));
    if (values.version) (where.push('p.version = ?'), params.push(values.version));
    if (values.role) (where.push('p.role = ?'), params.push(values.role));
    if (since !== undefined) (where.push('p.ts >= ?'), params.push(since));
    const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
    // Feedback is joined to the primary record of its request only.
    const base = `SELECT p.*, (SELECT f.truth FROM feedback f WHERE f.request_id = p.request_id AND p.role = 'primary' ORDER BY f.id DESC LIMIT 1) AS truth FROM predictions p ${filter}`;
    const sql = limit ? `SELECT * FROM (${base} ORDER BY p.id DESC LIMIT ${limit}) ORDER BY id` : `${base} ORDER BY p.id`;
    const out: Writable = values.out ? createWriteStream(values.out) : process.stdout;
    let n = 0;
    if (format === 'csv') await write(out, COLUMNS.join(',') + '\n');
    // The statement is held until the database is closed: the loop awaits the output stream between rows, and a
    // statement only its iterator referenced could be collected meanwhile — the export then died with SIGSEGV part
    // way through (seen in about 1 of 5 exports of the test's log, test/monitor-log.test.ts).
    const statement = db.prepare(sql);
    for (const row of statement.iterate(...(params as (string | number)[])) as unknown as IterableIterator<Row>) {
      const r = record(row);
      if (format === 'jsonl') await write(out, JSON.stringify(r) + '\n');
      else await write(out, COLUMNS.map((c) => csvField(c === 'inputs' || c === 'outputs' || c === 'truth' ? (r[c] === null ? null : JSON.stringify(r[c])) : r[c])).join(',') + '\n');
      n++;
    }
    held.push(statement);
    db.close();
    held.length = 0;
    if (values.out) {
      out.end();
      await once(out, 'finish');
      process.stderr.write(`wrote ${n} records to ${values.out}\n`);
    }
    return 0;
  },
};
