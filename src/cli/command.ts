// What every CLI command file exports. Parsing uses node:util parseArgs so flags behave the same everywhere.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../core/errors.ts';
import { closestFlag } from '../node/flags.ts';

export { booleanFlags, flags } from '../node/flags.ts';

export interface Command {
  name: string;
  /** One line for `dais --help`. */
  summary: string;
  /** Full `dais <name> --help` text. */
  help: string;
  /** The help for these arguments when it is not `help` (`dais build --target lambda --help` is the target's). */
  helpFor?(argv: string[]): Promise<string | undefined>;
  run(argv: string[]): Promise<number>;
}

/** A user-facing failure: printed as one line (no stack), exit code 1. */
export class CliError extends UserError {
  constructor(message: string, exitCode = 1) {
    super(message, { exitCode });
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * parseArgs with strict checking; a bad flag becomes a CliError that points at --help (`command` is what follows
 * 'dais', e.g. 'build --target edge'), and a misspelled one also names the closest flag of the command's table.
 */
export function parseFlags<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    const err = e as Error & { code?: string };
    const unknown = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /^Unknown option '--([^'=]+)'/.exec(err.message)?.[1] : undefined;
    const near = unknown === undefined ? undefined : closestFlag(unknown, Object.keys(options));
    const message = near ? `Unknown option '--${unknown}': did you mean --${near}?` : err.message.split('\n')[0];
    throw new CliError(`${message} (see 'dais ${command} --help')`);
  }
}

/** Parses an integer flag, naming the flag in the error; an absent flag is `fallback` (undefined stays undefined). */
export function intFlag(name: string, value: string | undefined, fallback: number, min?: number, max?: number): number;
export function intFlag(name: string, value: string | undefined, fallback: number | undefined, min?: number, max?: number): number | undefined;
export function intFlag(name: string, value: string | undefined, fallback: number | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  return numberFlag(name, value, fallback, min, max, true);
}

/** Parses a number flag (an integer when `integer`), naming the flag and its range in the error. */
export function numberFlag(name: string, value: string | undefined, fallback: number, min: number, max: number, integer?: boolean): number;
export function numberFlag(name: string, value: string | undefined, fallback: number | undefined, min: number, max: number, integer?: boolean): number | undefined;
export function numberFlag(name: string, value: string | undefined, fallback: number | undefined, min: number, max: number, integer = false): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new CliError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${value}'`);
  }
  return n;
}
