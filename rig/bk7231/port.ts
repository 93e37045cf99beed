import type { Clock } from '../core/clock.ts';

/**
 * The part of SerialLink (rig/serial/serial-link.ts) the flasher needs. Declared here so the
 * flasher can be driven by anything byte-stream shaped (a SerialLink, a test double).
 */
export interface Bk7231Port {
  readonly clock: Clock;
  write(bytes: Uint8Array): Promise<void>;
  /** Up to n bytes; waits at most timeoutMs for the first one (TimeoutError or an empty result when none came). */
  read(n: number, timeoutMs: number): Promise<Uint8Array>;
  /** Bytes received and not yet read. */
  available(): number;
  /** Drop buffered input (SerialLink returns what it dropped; unused here). */
  discardInput(): unknown;
  setBaudRate(baud: number): Promise<void>;
  setModemLines(lines: { dtr: boolean; rts: boolean }): Promise<void>;
}

/** Time (ms) a number of bytes occupies on the wire at `baud`, 8N1. */
export function wireMs(bytes: number, baud: number): number {
  return (bytes * 10 * 1000) / baud;
}
