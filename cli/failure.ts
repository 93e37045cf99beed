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

/** Print ONE clear message for a failure and return the exit code. */
export function reportFailure(e: unknown): number {
  if (e instanceof PlugrigError) {
    const ctx = e.toJSON().context as Record<string, unknown>;
    const where = ['slot', 'step', 'phase', 'address']
      .filter((k) => ctx[k] !== undefined)
      .map((k) => `${k} ${String(ctx[k])}`)
      .join(', ');
    process.stderr.write(`plugrig: ${e.message}${where ? ` (${where})` : ''}\n`);
    if (ctx.bytesSeen) process.stderr.write(`  bytes seen: ${String(ctx.bytesSeen).slice(0, 96)}\n`);
    if (process.env.PLUGRIG_DEBUG) process.stderr.write(`${e.stack}\n`);
    return (EXIT as Record<string, number>)[e.code] ?? EXIT.internal;
  }
  if (e instanceof Error && e.name === 'UsageError') {
    process.stderr.write(`plugrig: ${e.message}\nRun 'plugrig --help' for usage.\n`);
    return EXIT.usage;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`plugrig: internal error: ${err.message}\n${process.env.PLUGRIG_DEBUG ? err.stack + '\n' : ''}`);
  return EXIT.internal;
}
