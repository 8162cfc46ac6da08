// What every CLI command file exports. Parsing uses node:util parseArgs so flags behave the same everywhere.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../core/errors.ts';

export interface Command {
  name: string;
  /** One line for `dais --help`. */
  summary: string;
  /** Full `dais <name> --help` text. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/** A user-facing failure: printed as one line (no stack), exit code 1. */
export class CliError extends UserError {
  constructor(message: string, exitCode = 1) {
    super(message, { exitCode });
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with strict checking; unknown flags become a CliError that names the flag and points at --help. */
export function parseFlags<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliError(`${(e as Error).message.split('\n')[0]} (see 'dais ${command} --help')`);
  }
}

/** Parses an integer flag, naming the flag in the error. */
export function intFlag(name: string, value: string | undefined, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`--${name} must be an integer from ${min} to ${max}, got '${value}'`);
  return n;
}
