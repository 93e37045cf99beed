import { PlugrigError } from '../rig/core/errors.ts';
import { cliStdout, cliStderr } from './io.ts';

/**
 * The failure classes, one exit code each, so scripts and CI can branch on the class without parsing
 * messages. `codes` are the typed errors (rig/core/errors.ts) of the class. The README's exit-code table
 * lists exactly these rows (test/bad-input-corpus.test.ts compares them).
 */
export const FAILURE_CLASSES = [
  { name: 'ok', exitCode: 0, codes: [], meaning: 'done; every unit and check passed' },
  { name: 'config', exitCode: 2, codes: ['usage', 'E_CONFIG'], meaning: 'bad arguments, jig file, plan or template: refused before anything was opened or written' },
  { name: 'image', exitCode: 3, codes: ['E_IMAGE'], meaning: 'unusable firmware image (unreadable, empty, truncated, wrong chip or format, content contradicts its name)' },
  { name: 'transport', exitCode: 4, codes: ['E_TRANSPORT'], meaning: 'a port or device could not be opened or went away (missing, not a tty, unplugged, permission)' },
  { name: 'link', exitCode: 5, codes: ['E_LINK', 'E_TIMEOUT', 'E_PROTOCOL'], meaning: 'no link to the chip, a timeout, or garbage on the wire' },
  { name: 'flash', exitCode: 6, codes: ['E_FLASH'], meaning: 'erase, write or CRC verify failed or was refused by the chip' },
  { name: 'interlock', exitCode: 7, codes: ['E_INTERLOCK'], meaning: 'the mains interlock refused (lid open, E-stop, UART not isolated)' },
  { name: 'instrument', exitCode: 8, codes: ['E_INSTRUMENT'], meaning: 'a reference meter or other instrument failed or answered garbage' },
  { name: 'unit', exitCode: 9, codes: ['E_DUT'], meaning: 'a unit or a jig check failed (run, jig check), or the plug refused or contradicted us' },
  { name: 'internal', exitCode: 10, codes: ['internal'], meaning: 'a bug in plugrig (please report it with --verbose output)' },
  { name: 'store', exitCode: 11, codes: ['E_STORE'], meaning: 'the traceability store failed: disk full, locked by another process past its busy timeout, a schema newer than this plugrig, the central store unreachable; or a unit record or report file could not be written (disk full, permission, read-only)' },
  { name: 'worse', exitCode: 12, codes: [], meaning: '`nightly --compare last`: something got worse than the previous night (a measurement rejected or marginal more often, no longer measured, a guard margin shrank, yield fell)' },
  { name: 'interrupted', exitCode: 130, codes: [], meaning: 'SIGINT (143: SIGTERM, 129: SIGHUP); what was left on the chip is said on stderr' },
] as const satisfies ReadonlyArray<{ name: string; exitCode: number; codes: readonly string[]; meaning: string }>;

export type FailureClassName = (typeof FAILURE_CLASSES)[number]['name'];

/** The exit code of a class by name (for outcomes that are not errors: a unit failed, a night got worse). */
export function exitCodeOf(name: FailureClassName): number {
  return FAILURE_CLASSES.find((c) => c.name === name)!.exitCode;
}

/** Exit code per error code (E_CONFIG, usage, …), derived from FAILURE_CLASSES. */
export const EXIT: Readonly<Record<string, number>> = Object.fromEntries(FAILURE_CLASSES.flatMap((c) => c.codes.map((code) => [code, c.exitCode])));

/** The class an error code belongs to; unknown codes are internal (a typed error nobody classified is a bug). */
export function failureClassOf(code: string): (typeof FAILURE_CLASSES)[number] {
  return FAILURE_CLASSES.find((c) => (c.codes as readonly string[]).includes(code)) ?? FAILURE_CLASSES.find((c) => c.name === 'internal')!;
}

/** The failure as --json prints it on stdout: `{"error":{"class","message","exitCode",…}}`. */
export interface JsonFailure {
  /** class: the error code (E_CONFIG, usage, internal); exitClass: its failure class (config, …). */
  error: { class: string; exitClass: FailureClassName; message: string; exitCode: number; context?: Record<string, unknown> };
}

/**
 * Print ONE clear message for a failure on stderr (and with `json`, the same failure as a JSON object on
 * stdout, so a script reading stdout never gets nothing) and return the exit code.
 */
export function reportFailure(e: unknown, o: { json?: boolean } = {}): number {
  const { text, failure } = describeFailure(e);
  cliStderr().write(text);
  if (o.json) cliStdout().write(JSON.stringify(failure, null, 2) + '\n');
  return failure.error.exitCode;
}

const WHERE_KEYS = ['slot', 'unit', 'step', 'phase', 'address', 'expected', 'bytesSeen'];

function describeFailure(e: unknown): { text: string; failure: JsonFailure } {
  if (e instanceof PlugrigError) {
    const json = e.toJSON();
    const ctx = json.context as Record<string, unknown>;
    const where = ['slot', 'step', 'phase', 'address']
      .filter((k) => ctx[k] !== undefined)
      .map((k) => `${k} ${String(ctx[k])}`)
      .join(', ');
    let text = `plugrig: ${e.message}${where ? ` (${where})` : ''}\n`;
    if (ctx.bytesSeen) text += `  bytes seen: ${String(ctx.bytesSeen).slice(0, 96)}\n`;
    if (process.env.PLUGRIG_DEBUG) text += `${e.stack}\n`;
    const cls = failureClassOf(e.code);
    // Only the "where" of the context: other keys may carry configuration values that are not ours to print.
    const context = Object.fromEntries(WHERE_KEYS.filter((k) => ctx[k] !== undefined).map((k) => [k, ctx[k]]));
    return { text, failure: { error: { class: e.code, exitClass: cls.name, message: e.message, exitCode: cls.exitCode, ...(Object.keys(context).length ? { context } : {}) } } };
  }
  if (e instanceof Error && e.name === 'UsageError') {
    return {
      text: `plugrig: ${e.message}\nRun 'plugrig --help' for usage.\n`,
      failure: { error: { class: 'usage', exitClass: 'config', message: e.message, exitCode: failureClassOf('usage').exitCode } },
    };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return {
    text: `plugrig: internal error: ${err.message}\n${process.env.PLUGRIG_DEBUG ? err.stack + '\n' : ''}`,
    failure: { error: { class: 'internal', exitClass: 'internal', message: err.message, exitCode: failureClassOf('internal').exitCode } },
  };
}
