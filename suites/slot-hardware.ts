import type { Bk7231Port } from '../rig/bk7231/port.ts';
import type { Logger } from '../rig/core/log.ts';
import type { SlotSpec } from '../rig/jig/jig-config.ts';
import type { SlotIo } from '../rig/jig/slot-io.ts';
import type { ReferenceMeter } from '../rig/meter/reference-meter.ts';

/** What the suites get from one slot of an opened station. */
export interface SlotHardware {
  spec: SlotSpec;
  io: SlotIo;
  meter: ReferenceMeter;
  /** Opens the slot's USB-UART (closed again after flashing, before mains comes on). */
  openUart(): Promise<Bk7231Port & { close(): Promise<void> }>;
  /** The image a flash suite writes; absent when the run has none (a plan that does not flash). */
  image?: { bytes: Uint8Array; offset: number; name: string };
  baudRate: number;
  /** Nominal mains voltage of the station (the nominal of the mains-voltage limits). */
  mainsVolts: number;
  log: Logger;
}

/** Wait until a condition holds or the budget runs out (or the signal aborts); returns the final value. */
export async function waitFor<T>(
  clock: { now(): number; sleep(ms: number, signal?: AbortSignal): Promise<void> },
  ms: number,
  read: () => T,
  ok: (v: T) => boolean,
  signal?: AbortSignal,
): Promise<T> {
  const end = clock.now() + ms;
  let v = read();
  while (!ok(v) && clock.now() < end) {
    await clock.sleep(20, signal);
    v = read();
  }
  return v;
}
