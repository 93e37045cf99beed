import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Bindings, ChildLoggerOptions, Logger as PinoLogger } from 'pino';
import { PACKAGE_ROOT } from './package-root.ts';
import { scrubSecretForms } from './secret-forms.ts';
import { SecretStreamScrubber } from './secret-stream.ts';

/** Structured logger (JSON lines). Child loggers carry slot/unit/step context. */
export type Logger = PinoLogger;

type Pino = typeof import('pino');
let pinoModule: Pino | undefined;
/**
 * pino, loaded on first need: most CLI runs log nowhere, and loading it costs about 50 ms of CPU
 * at every start (a tenth of `plugrig flash`'s start-up), which a loaded machine multiplies.
 */
function loadPino(): Pino {
  pinoModule ??= createRequire(join(PACKAGE_ROOT, 'package.json'))('pino') as Pino;
  return pinoModule;
}

/** Where log lines go once the process has decided; until then (and by default) nowhere. */
interface LogSink {
  write(line: string): void;
}
let sink: LogSink | undefined;
let sinkName: 'none' | 'stderr' | 'file' = 'none';
/** Secret values no log line may carry in any form (a trace of the bytes written to the ROM holds the config sector). */
const logSecrets = new Set<string>();

/** The byte streams traced a chunk a line (a port's `rx`/`tx`): a secret split across two lines is still found. */
const traceStreams = new SecretStreamScrubber();
const BYTE_FIELD = /"(rx|tx)":"([0-9a-fA-F ]*)"/;
const PATH_FIELD = /"path":"((?:[^"\\]|\\.)*)"/;

/** A log line as the sink writes it: its traced bytes scrubbed as part of their stream, then every form of every secret. */
function scrubLine(line: string): string {
  if (logSecrets.size === 0) return line;
  const secrets = [...logSecrets];
  const m = BYTE_FIELD.exec(line);
  if (m) {
    const spaced = m[2]!.includes(' ');
    const digits = m[2]!.replace(/ /g, '');
    if (digits.length % 2 === 0) {
      const bytes = Buffer.from(digits, 'hex');
      const masked = traceStreams.mask(`${PATH_FIELD.exec(line)?.[1] ?? ''}\u0000${m[1]}`, bytes, secrets);
      if (masked.includes(true)) {
        const parts: string[] = [];
        bytes.forEach((b, i) => {
          if (!masked[i]) parts.push(b.toString(16).padStart(2, '0'));
          else if (!masked[i - 1]) parts.push('***');
        });
        line = line.slice(0, m.index) + `"${m[1]}":"${parts.join(spaced ? ' ' : '')}"` + line.slice(m.index + m[0].length);
      }
    }
  }
  return scrubSecretForms(line, secrets);
}

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
  sink = loadPino().destination({ fd: 2, sync: true });
  sinkName = 'stderr';
}

/** Append log lines to `path` (synchronous writes: a crash loses no line). */
export function logToFile(path: string): void {
  sink = loadPino().destination({ dest: path, sync: true, append: true, mkdir: true });
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
  const make = (): Logger => loadPino().pino({ level: lvl, base: { ...bindings } }, { write: (line: string) => sink?.write(scrubLine(line)) });
  return sink || pinoModule ? make() : deferredLogger(make);
}

const LINE_METHODS: ReadonlySet<PropertyKey> = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/**
 * A logger that becomes the pino logger `make` builds the first time a line could go somewhere
 * (a destination is chosen: then it writes exactly as one created after the choice would) or
 * anything beyond plain logging is asked of it. Until then a line is dropped unbuilt, as pino
 * would drop it at the missing destination, and isLevelEnabled() says false: nothing at any
 * level reaches a destination that does not exist (so a byte trace is not even formatted).
 */
function deferredLogger(make: () => Logger): Logger {
  let real: Logger | undefined;
  const get = (): Logger => (real ??= make());
  // Only the members below are answered without pino; anything else is the real logger's.
  return new Proxy({} as Logger, {
    get(_target, prop) {
      if (!real && !sink) {
        if (LINE_METHODS.has(prop)) return () => undefined;
        if (prop === 'isLevelEnabled') return () => false;
        if (prop === 'child') return (bindings: Bindings, options?: ChildLoggerOptions): Logger => deferredLogger(() => get().child(bindings, options));
      }
      const r = get();
      const v: unknown = Reflect.get(r, prop, r);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(r) : v;
    },
    set(_target, prop, value) {
      return Reflect.set(get(), prop, value);
    },
  });
}

let root: Logger | undefined;
export function rootLogger(): Logger {
  root ??= createLogger();
  return root;
}
