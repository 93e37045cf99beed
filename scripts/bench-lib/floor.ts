/**
 * Physical floors the flash benchmark divides by. Pure arithmetic from the chip model's
 * parameters (ChipTiming, FlashTiming) and the frames that must cross the wire; never from a
 * measurement. Chip turnaround (tens of µs per command) is left out on purpose: a floor is what
 * no flasher can beat, and the turnaround is a modelling assumption, not a physical bound.
 */
import type { EraseStep, FlashPlan } from '../../rig/bk7231/planner.ts';
import { EraseOpcode, ERASE_SIZE } from '../../rig/bk7231/protocol/commands.ts';
import * as F from '../../rig/bk7231/protocol/frame.ts';
import type { FlashTiming } from '../../sim/bk7231/flash-parts.ts';
import type { ChipTiming } from '../../sim/bk7231/timing.ts';
import { wireTimeMs } from '../../sim/serial/virtual-uart-wire.ts';

/** Bytes of a chip reply: short `04 0E LEN 01 E0 FC CODE payload`, long adds `FF .. F4 LEN16 .. STATUS`. */
export function replyBytes(form: 'short' | 'long', payload: number): number {
  return (form === 'short' ? 7 : 11) + payload;
}

/** Bytes on the wire (both directions) of one request/reply exchange built by the host codec. */
export function exchangeBytes(req: F.Bk7231Request): number {
  if (!req.reply) return req.bytes.length;
  return req.bytes.length + replyBytes(req.reply.form, Math.max(...req.reply.payloadLengths));
}

export function eraseMs(step: Pick<EraseStep, 'op'>, t: FlashTiming): number {
  switch (ERASE_SIZE[step.op]) {
    case 0x1000:
      return t.erase4kMs;
    case 0x8000:
      return t.erase32kMs;
    default:
      return t.erase64kMs;
  }
}

export interface WriteVerifyFloorInput {
  plan: Pick<FlashPlan, 'erases' | 'writes'>;
  /** Range the single verification CRC covers. */
  verifyStart: number;
  verifyLength: number;
  baud: number;
  chip: Pick<ChipTiming, 'crcBytesPerSec'>;
  flash: FlashTiming;
}

export interface FlashFloor {
  /** Request + reply bytes of every erase, Write4K and the verification CRC. */
  wireBytes: number;
  wireMs: number;
  eraseMs: number;
  /** Programming of the last page, which cannot overlap the wire. */
  lastPageMs: number;
  crcMs: number;
  totalMs: number;
  commands: number;
  /** Bytes of the image that were not all-0xFF sectors (the payload actually sent). */
  payloadBytes: number;
}

/** Floor of "write the plan, then one CRC over the range" at one baud rate, 8N1. */
export function writeVerifyFloor(input: WriteVerifyFloorInput): FlashFloor {
  const { plan, baud, flash } = input;
  let bytes = 0;
  let erase = 0;
  for (const e of plan.erases) {
    bytes += exchangeBytes(F.flashErase(e.op, e.address));
    erase += eraseMs(e, flash);
  }
  for (const w of plan.writes) bytes += exchangeBytes(F.flashWrite4K(w.address, w.data));
  bytes += exchangeBytes(F.checkCrc(input.verifyStart, input.verifyStart + input.verifyLength - 1));
  const wire = wireTimeMs(bytes, baud);
  const lastPage = plan.writes.length > 0 ? flash.pageProgramMs : 0;
  const crc = (input.verifyLength / input.chip.crcBytesPerSec) * 1000;
  return {
    wireBytes: bytes,
    wireMs: wire,
    eraseMs: erase,
    lastPageMs: lastPage,
    crcMs: crc,
    totalMs: wire + erase + lastPage + crc,
    commands: plan.erases.length + plan.writes.length + 1,
    payloadBytes: plan.writes.reduce((n, w) => n + w.data.length, 0),
  };
}

/**
 * The classic per-sector scheme's floor for comparison: every sector erased with a 4K erase,
 * written unless blank, CRC-checked on its own (each CRC after the write, so each page program
 * tail is exposed).
 */
export function classicFloor(sectors: readonly { address: number; data: Uint8Array; blank: boolean }[], baud: number, chip: Pick<ChipTiming, 'crcBytesPerSec'>, flash: FlashTiming): number {
  let bytes = 0;
  let busy = 0;
  for (const s of sectors) {
    bytes += exchangeBytes(F.flashErase(EraseOpcode.Sector4K, s.address));
    busy += flash.erase4kMs;
    if (!s.blank) {
      bytes += exchangeBytes(F.flashWrite4K(s.address, s.data));
      busy += flash.pageProgramMs;
    }
    bytes += exchangeBytes(F.checkCrc(s.address, s.address + s.data.length - 1));
    busy += (s.data.length / chip.crcBytesPerSec) * 1000;
  }
  return wireTimeMs(bytes, baud) + busy;
}

/** Modem-line step as parsed by rig/bk7231/reset.ts. */
export type ModemStep = { kind: 'D' | 'R'; level: boolean } | { kind: 'W'; ms: number };

/** How long the line wired to CEN is held asserted by a modem-line sequence (ms). */
export function cenPulseMs(steps: readonly ModemStep[], line: 'R' | 'D'): number {
  let t = 0;
  let assertedAt: number | null = null;
  let total = 0;
  for (const s of steps) {
    if (s.kind === 'W') {
      t += s.ms;
      continue;
    }
    if (s.kind !== line) continue;
    if (s.level && assertedAt === null) assertedAt = t;
    if (!s.level && assertedAt !== null) {
      total += t - assertedAt;
      assertedAt = null;
    }
  }
  return total;
}

/** Reset pulse plus one LinkCheck round trip at the ROM's rate. */
export function getBusFloorMs(pulseMs: number, romBaud: number): number {
  return pulseMs + wireTimeMs(exchangeBytes(F.linkCheck()), romBaud);
}
