import { PlugrigError } from '../rig/core/errors.ts';

/** Exit codes: one per failure class so scripts and CI can branch on them. */
export const EXIT = {
  usage: 2,
  E_CONFIG: 2,
  E_IMAGE: 3,
  E_TRANSPORT: 4,
  E_LINK: 5,
  E_TIMEOUT: 5,
  E_PROTOCOL: 5,
  E_FLASH: 6,
  E_INTERLOCK: 7,
  E_INSTRUMENT: 8,
  /** The plug's firmware refused or contradicted us (a unit problem, like a failed check). */
  E_DUT: 9,
  internal: 10,
} as const;

/** The failure as --json prints it on stdout: `{"error":{"class","message","exitCode",…}}`. */
export interface JsonFailure {
  error: { class: string; message: string; exitCode: number; context?: Record<string, unknown> };
}

/**
 * Print ONE clear message for a failure on stderr (and with `json`, the same failure as a JSON object on
 * stdout, so a script reading stdout never gets nothing) and return the exit code.
 */
export function reportFailure(e: unknown, o: { json?: boolean } = {}): number {
  const { text, failure } = describeFailure(e);
  process.stderr.write(text);
  if (o.json) process.stdout.write(JSON.stringify(failure, null, 2) + '\n');
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
    const exitCode = (EXIT as Record<string, number>)[e.code] ?? EXIT.internal;
    // Only the "where" of the context: other keys may carry configuration values that are not ours to print.
    const context = Object.fromEntries(WHERE_KEYS.filter((k) => ctx[k] !== undefined).map((k) => [k, ctx[k]]));
    return { text, failure: { error: { class: e.code, message: e.message, exitCode, ...(Object.keys(context).length ? { context } : {}) } } };
  }
  if (e instanceof Error && e.name === 'UsageError') {
    return {
      text: `plugrig: ${e.message}\nRun 'plugrig --help' for usage.\n`,
      failure: { error: { class: 'usage', message: e.message, exitCode: EXIT.usage } },
    };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return {
    text: `plugrig: internal error: ${err.message}\n${process.env.PLUGRIG_DEBUG ? err.stack + '\n' : ''}`,
    failure: { error: { class: 'internal', message: err.message, exitCode: EXIT.internal } },
  };
}
