import { pino, destination, type Logger as PinoLogger } from 'pino';
import { scrubSecretForms } from './secret-forms.ts';

/** Structured logger (JSON lines). Child loggers carry slot/unit/step context. */
export type Logger = PinoLogger;

/** Where log lines go once the process has decided; until then (and by default) nowhere. */
interface LogSink {
  write(line: string): void;
}
let sink: LogSink | undefined;
let sinkName: 'none' | 'stderr' | 'file' = 'none';
/** Secret values no log line may carry in any form (a trace of the bytes written to the ROM holds the config sector). */
const logSecrets = new Set<string>();

/** Scrub these values (Wi-Fi and web passwords) from every log line from now on, at the sink. */
export function redactInLogs(values: readonly string[]): void {
  for (const v of values) if (v.length > 0) logSecrets.add(v);
}

/**
 * stderr belongs to the one clear message of a failure (and the progress bar), stdout to the output and
 * --json: log lines go to stderr only when asked (`--verbose`), to a file when one is named (`--log-file`,
 * or the run directory's plugrig.log for `plugrig run`), and nowhere otherwise.
 */
export function logToStderr(): void {
  sink = destination({ fd: 2, sync: true });
  sinkName = 'stderr';
}

/** Append log lines to `path` (synchronous writes: a crash loses no line). */
export function logToFile(path: string): void {
  sink = destination({ dest: path, sync: true, append: true, mkdir: true });
  sinkName = 'file';
}

/**
 * Back to no destination (closing a log file, never stderr). `runCli` with caller streams (the in-process
 * entry tests use) calls it after each run, so one run's log file is not the next run's in the same process.
 */
export function resetLogDestination(): void {
  if (sinkName === 'file') (sink as { end?: () => void } | undefined)?.end?.();
  sink = undefined;
  sinkName = 'none';
}

/** True once logToStderr/logToFile chose a destination (a command's default file must not override it). */
export function logDestinationChosen(): boolean {
  return sinkName !== 'none';
}

/**
 * Level from PLUGRIG_LOG (default 'info'; 'silent' under the tap runner unless asked). Lines are written
 * to the destination chosen at the time they are logged, so loggers created before the choice follow it.
 */
export function createLogger(bindings: Record<string, unknown> = {}, level?: string): Logger {
  const lvl = level ?? process.env.PLUGRIG_LOG ?? (process.env.TAP ? 'silent' : 'info');
  return pino({ level: lvl, base: { ...bindings } }, { write: (line: string) => sink?.write(logSecrets.size ? scrubSecretForms(line, [...logSecrets]) : line) });
}

let root: Logger | undefined;
export function rootLogger(): Logger {
  root ??= createLogger();
  return root;
}
