import { pino, destination, type Logger as PinoLogger } from 'pino';

/** Structured logger (JSON lines on stderr). Child loggers carry slot/unit/step context. */
export type Logger = PinoLogger;

/**
 * Root logger. Level from PLUGRIG_LOG (default 'warn' so CLI output stays readable;
 * 'silent' in tests unless asked). Always stderr: stdout belongs to --json/--tap output.
 */
export function createLogger(bindings: Record<string, unknown> = {}, level?: string): Logger {
  const lvl = level ?? process.env.PLUGRIG_LOG ?? (process.env.TAP ? 'silent' : 'warn');
  return pino({ level: lvl, base: { ...bindings } }, destination(2));
}

let root: Logger | undefined;
export function rootLogger(): Logger {
  root ??= createLogger();
  return root;
}
