// Structured JSON logs (pino). Everything in serve/ logs through this small interface, so a library user can pass
// their own pino (or anything with the same four methods) and tests can capture lines.
import { pino, type DestinationStream } from 'pino';

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  isLevelEnabled?(level: string): boolean;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A pino logger writing JSON lines to `destination` (default: stderr, so stdout stays free for --json output). */
export function createLogger(level: LogLevel = 'info', destination?: DestinationStream, fields: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { service: 'dais', ...fields }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? pino.destination({ fd: 2, sync: true }));
}

const noop = () => {};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop, isLevelEnabled: () => false };
