/**
 * Physical floors the flash benchmark divides by. Pure arithmetic from the chip model's
 * parameters (ChipTiming, FlashTiming), the chip's content and the frames that must cross the
 * wire; never from a measurement, and never from the flasher's own plan. Chip turnaround (tens of µs per command) is left out on purpose: a floor is what
 * no flasher can beat, and the turnaround is a modelling assumption, not a physical bound.
 */
import type { EraseStep } from '../../rig/bk7231/planner.ts';
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

export interface WriteFloorInput {
  /** Start of the target region, 4 KiB aligned. */
  offset: number;
  /** New content of the region, a whole number of 4 KiB sectors. */
  image: Uint8Array;
  /** The chip's content before the write (e.g. the virtual chip's flash.read), any address. */
  current: (address: number, length: number) => Uint8Array;
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
  /** The cheapest erase cover: how many erases of each size. */
  erases: { '4K': number; '32K': number; '64K': number };
  /** Sectors whose content must be programmed (plus sectors the cover erased that held needed content). */
  sectorsWritten: number;
  /** Of those, sectors rewritten only because a larger erase was cheaper than sparing them. */
  sectorsRewritten: number;
}

const SECTOR = 0x1000;
const HALF = 0x8000;
const BLOCK = 0x10000;

/**
 * What a sector needs, from its current and new content alone: 'erase' (a bit must go 0 -> 1),
 * 'program' (must be programmed; erasing it first costs nothing extra), 'free' (already right
 * and blank, or outside the region and blank: erasing it costs nothing), 'keep' (already right,
 * holds data: erasing it means programming it again), 'fenced' (outside the region with data:
 * must not be erased).
 */
type SectorNeed = 'erase' | 'program' | 'free' | 'keep' | 'fenced';

function isAllFF(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0xff) return false;
  return true;
}

function sectorNeed(cur: Uint8Array, next: Uint8Array | undefined): SectorNeed {
  if (!next) return isAllFF(cur) ? 'free' : 'fenced';
  let same = true;
  for (let i = 0; i < cur.length; i++) {
    const c = cur[i]!;
    const n = next[i]!;
    if ((c & n) !== n) return 'erase';
    if (c !== n) same = false;
  }
  if (!same) return 'program';
  return isAllFF(cur) ? 'free' : 'keep';
}

/**
 * Floor of writing `image` at `offset` and proving it with one CheckCRC, computed from the chip's
 * content before the write, independently of any flasher's plan: the cheapest cover of the
 * sectors that must be erased with the part's aligned 4K/32K/64K erases (a larger erase may span
 * blank sectors and sectors that are programmed anyway; spanning a correct sector with data
 * costs its rewrite; it never spans data outside the region), the wire time of every frame that
 * must cross at `baud` (8N1), the last page program and the CRC. Learning the chip's content is
 * not charged: the floor knows it for free, a flasher has to ask.
 */
export function writeFloor(input: WriteFloorInput): FlashFloor {
  const { offset, image, baud, flash } = input;
  if (offset % SECTOR !== 0 || image.length % SECTOR !== 0) throw new RangeError('writeFloor: the region must be whole 4 KiB sectors');
  const end = offset + image.length;
  const write4kBytes = exchangeBytes(F.flashWrite4K(0, new Uint8Array(SECTOR)));
  const rewriteMs = wireTimeMs(write4kBytes, baud);
  const needOf = (s: number): SectorNeed => sectorNeed(input.current(s, SECTOR), s >= offset && s < end ? image.subarray(s - offset, s - offset + SECTOR) : undefined);

  const steps: Array<{ op: EraseStep['op']; address: number }> = [];
  let rewritten = 0;
  for (let block = offset - (offset % BLOCK); block < end; block += BLOCK) {
    const needs = new Map<number, SectorNeed>();
    for (let s = block; s < block + BLOCK; s += SECTOR) needs.set(s, needOf(s));
    // Extra cost of one erase over [start, start+size): rewrites of correct data, or impossible.
    const span = (start: number, size: number): { ms: number; rewrites: number } => {
      let rewrites = 0;
      for (let s = start; s < start + size; s += SECTOR) {
        const n = needs.get(s)!;
        if (n === 'fenced') return { ms: Infinity, rewrites: 0 };
        if (n === 'keep') rewrites++;
      }
      return { ms: rewrites * rewriteMs, rewrites };
    };
    const halves = [block, block + HALF].map((half) => {
      const must = [...needs].filter(([s, n]) => s >= half && s < half + HALF && n === 'erase').map(([s]) => s);
      const by4k = { ms: must.length * flash.erase4kMs, rewrites: 0, steps: must.map((address) => ({ op: EraseOpcode.Sector4K, address })) };
      if (must.length === 0) return by4k;
      const extra = span(half, HALF);
      const by32k = { ms: flash.erase32kMs + extra.ms, rewrites: extra.rewrites, steps: [{ op: EraseOpcode.Block32K, address: half }] };
      return by32k.ms < by4k.ms ? by32k : by4k;
    });
    const whole = span(block, BLOCK);
    if ([...needs.values()].includes('erase') && flash.erase64kMs + whole.ms < halves[0]!.ms + halves[1]!.ms) {
      steps.push({ op: EraseOpcode.Block64K, address: block });
      rewritten += whole.rewrites;
    } else {
      for (const h of halves) {
        steps.push(...h.steps);
        rewritten += h.rewrites;
      }
    }
  }

  let programmed = 0;
  for (let s = offset; s < end; s += SECTOR) {
    const n = needOf(s);
    if (n === 'program' || (n === 'erase' && !isAllFF(image.subarray(s - offset, s - offset + SECTOR)))) programmed++;
  }
  const sectorsWritten = programmed + rewritten;
  let bytes = sectorsWritten * write4kBytes + exchangeBytes(F.checkCrc(offset, end - 1));
  let erase = 0;
  const counts = { '4K': 0, '32K': 0, '64K': 0 };
  for (const e of steps) {
    bytes += exchangeBytes(F.flashErase(e.op, e.address));
    erase += eraseMs(e, flash);
    counts[e.op === EraseOpcode.Sector4K ? '4K' : e.op === EraseOpcode.Block32K ? '32K' : '64K']++;
  }
  const wire = wireTimeMs(bytes, baud);
  const lastPage = sectorsWritten > 0 ? flash.pageProgramMs : 0;
  const crc = (image.length / input.chip.crcBytesPerSec) * 1000;
  return {
    wireBytes: bytes,
    wireMs: wire,
    eraseMs: erase,
    lastPageMs: lastPage,
    crcMs: crc,
    totalMs: wire + erase + lastPage + crc,
    commands: steps.length + sectorsWritten + 1,
    erases: counts,
    sectorsWritten,
    sectorsRewritten: rewritten,
  };
}

/**
 * The classic per-sector scheme's floor for comparison: per sector, when `checkBlank` (as
 * bk7231tools does), a CheckCRC to learn whether it is blank (blank ones are not erased); a 4K
 * erase; a write unless the data is blank; a CheckCRC of the sector (after its write, so each
 * page program tail is exposed).
 */
export function classicFloor(
  sectors: readonly { address: number; data: Uint8Array; blank: boolean; currentlyBlank?: boolean }[],
  baud: number,
  chip: Pick<ChipTiming, 'crcBytesPerSec'>,
  flash: FlashTiming,
  opts: { checkBlank?: boolean } = {},
): number {
  let bytes = 0;
  let busy = 0;
  const crcMs = (n: number): number => (n / chip.crcBytesPerSec) * 1000;
  for (const s of sectors) {
    const crcBytes = exchangeBytes(F.checkCrc(s.address, s.address + s.data.length - 1));
    if (opts.checkBlank) {
      bytes += crcBytes;
      busy += crcMs(s.data.length);
    }
    if (!(opts.checkBlank && s.currentlyBlank)) {
      bytes += exchangeBytes(F.flashErase(EraseOpcode.Sector4K, s.address));
      busy += flash.erase4kMs;
    }
    if (!s.blank) {
      bytes += exchangeBytes(F.flashWrite4K(s.address, s.data));
      busy += flash.pageProgramMs;
    }
    bytes += crcBytes;
    busy += crcMs(s.data.length);
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
