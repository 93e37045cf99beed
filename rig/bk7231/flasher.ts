/**
 * BK7231N flasher: link, fast baud, identify, unprotect, diff-aware write with one CRC verify and
 * bisection repair, verified read. One command in flight, the next frame prepared while waiting.
 */
import { FlashError, ImageError, LinkError, PlugrigError, TimeoutError, TransportError } from '../core/errors.ts';
import { rootLogger, type Logger } from '../core/log.ts';
import { CommandChannel, type LineRecord, type TransactOptions } from './command-channel.ts';
import type { Bk7231Reply } from './protocol/parser.ts';
import { findFlashPart, flashPartFor, jedecHex, type FlashPart } from './flash-parts.ts';
import { getBus, type LinkOptions } from './link.ts';
import { FlashPlanner, BOOTLOADER_REGION, RF_CALIBRATION_REGION, overlaps, isBlank, sectorAddresses, type AddressRange, type EraseStep } from './planner.ts';
import type { Bk7231Port } from './port.ts';
import { BLOCK_SIZE, EraseOpcode, SECTOR_SIZE } from './protocol/commands.ts';
import { crc32Raw } from './protocol/crc32.ts';
import * as F from './protocol/frame.ts';
import { decodeCrc, decodeJedecId, decodeRead4K, decodeRegister, decodeStatusRegister, type JedecId } from './protocol/reply.ts';
import type { ResetStrategy } from './reset.ts';
import { RF_SECTOR_ADDRESS, macFromRfSector } from './rf-sector.ts';
import { OutsideImageGuard, blankCrc, type FlashCopy, type GuardedChip, type OutsideRestore, type OutsideScope } from './outside-guard.ts';

export { blankCrc, type FlashCopy, type OutsideRestore } from './outside-guard.ts';

export const CHIP_ID_REGISTER = 0x00800000;
export const CHIP_NAMES: Record<number, string> = { 0x7231c: 'BK7231N', 0x7231: 'BK7231Q', 0x7238: 'BK7238', 0x7252: 'BK7252' };
/** Standard CRC-32 of flash 0..0x100 inclusive -> bootloader. */
export const BOOTLOADER_BY_CRC: Record<number, string> = { 0xe14191ba: 'BK7231N 1.0.1' };

export const DEFAULT_BAUD = 2_000_000;
export const DEFAULT_FALLBACK_BAUDS = [1_500_000, 921_600, 460_800, 115_200] as const;
export const BOOT_BAUD = 115_200;
/** Chip CRC throughput assumed for timeouts (bytes/s). */
const CRC_BYTES_PER_S = 400_000;

export type FlashPhase = 'link' | 'baud' | 'identify' | 'unprotect' | 'diff' | 'erase' | 'write' | 'verify' | 'repair' | 'read';

export interface FlashProgress {
  phase: FlashPhase;
  /** Bytes done / total in this phase. */
  done: number;
  total: number;
}

export interface ChipInfo {
  /** ReadReg 0x00800000; null when the bootloader has no ReadReg (BK7231T). */
  chipId: number | null;
  chipName: string | null;
  flashId: JedecId;
  flashIdHex: string;
  flashPart: FlashPart | null;
  flashSize: number;
  /** SR bytes combined (SR1 | SR2 << 8); null for an unknown part. */
  statusRegister: number | null;
  protected: boolean | null;
  /** Standard CRC-32 of 0..0x100 inclusive. */
  bootloaderCrc: number;
  bootloader: string | null;
  mac: string | null;
  baudRate: number;
}

export interface Bk7231FlasherOptions {
  port: Bk7231Port;
  reset: ResetStrategy;
  baudRate?: number;
  fallbackBaudRates?: readonly number[];
  /** Delay byte of SetBaudRate (ms the chip waits before echoing at the new rate). Default 20. */
  baudDelayMs?: number;
  link?: Omit<LinkOptions, 'reset' | 'log'>;
  /**
   * Bounded retries. `command`: re-sends of one command whose reply was lost or garbled (the
   * line is drained first); `relink`: re-links after the chip stopped answering altogether (a
   * brown-out reset it), each resuming the write through a CRC diff.
   */
  retries?: { write?: number; verify?: number; read?: number; unprotect?: number; command?: number; relink?: number };
  /**
   * CRC the flash outside the image (per 64 KiB block, cut at region edges) before writing and
   * again after the verify (outside-guard.ts): a stray erase or write (an address bit flipped on
   * the line) never passes unseen. A changed range is restored when its content is known: blank
   * before, the RF/MAC sector (copy read CRC-checked at connect()), or inside `WriteOptions.original`;
   * every restore is proved by the chip's CRC; any other changed range fails the write naming its
   * region. Costs one CheckCRC pass over the flash outside the image before writing; after it, on a
   * clean line (OutsideScope), only the bootloader and the RF/MAC sector are CRC'd again. Default false
   * (benchmarks and command-count proofs); the station's flash suite and `plugrig flash` set it.
   */
  guardOutsideImage?: boolean;
  /** Use 32 KiB erases where cheaper (checked once per session, see #eraseStep). Default true. */
  erase32k?: boolean;
  log?: Logger;
}

export interface WriteOptions {
  /** Compare CRCs first and rewrite only the 4K sectors that differ. */
  diff?: boolean;
  /** Allow writing anywhere, including the bootloader and the RF calibration sector. */
  force?: boolean;
  /** Allow 0x0..0x11000 (still refuses the RF sector unless forced). */
  writeBootloader?: boolean;
  /**
   * The chip's content from before this write, read CRC-checked (the station's stock backup): the
   * guard restores from it what a stray write changed outside the image. Each range of it is used
   * only where its CRC equals the chip's taken before writing.
   */
  original?: FlashCopy;
  onProgress?: (p: FlashProgress) => void;
}

export interface WriteResult {
  offset: number;
  length: number;
  /** Bytes the CRC covers: the image padded to whole sectors (a partial last sector keeps the flash's bytes). */
  verifiedLength: number;
  erasedBytes: number;
  sectorsWritten: number;
  /** Sectors not written because the image holds only 0xFF there. */
  sectorsSkippedBlank: number;
  /**
   * Sectors not erased because the chip held only 0xFF there (proven by CheckCRC, or presumed from
   * their block's first sector and then proven by the verify CRC; a presumed sector that held data
   * counts as repaired instead).
   */
  sectorsAlreadyBlank: number;
  /** Sectors left alone because the diff found them equal. */
  sectorsUnchanged: number;
  sectorsRepaired: number;
  /**
   * Raw CRC (no final xor) of offset..offset+verifiedLength-1 as the CHIP reported it in reply to
   * CheckCRC; write() throws instead of returning when it differs from the image's.
   */
  crc: number;
  /** Ranges outside the image a stray write changed, restored and proved by the chip's CRC (guardOutsideImage). */
  outsideRestored: OutsideRestore[];
  /**
   * How the flash outside the image was proved unchanged (guardOutsideImage; null without it):
   * 'all' = the chip's CRC of every range; 'protected' = the bootloader and RF/MAC by CRC, the
   * rest by the line record (every command answered by its own echo, nothing irregular: see
   * OutsideScope in outside-guard.ts). `crcBytes`: what the last check CRC'd.
   */
  outsideCheck: { scope: OutsideScope; crcBytes: number } | null;
}

/**
 * Everything about a write request that can be judged without the chip (and, given flashSize,
 * with what connect() learnt), so that a refused request never sends a byte, never unprotects.
 * Returns the regions the planner must still keep out of.
 */
export function checkWriteRequest(length: number, offset: number, opts: Pick<WriteOptions, 'force' | 'writeBootloader'> & { flashSize?: number } = {}): AddressRange[] {
  if (length === 0) throw new ImageError('empty image', { address: offset });
  if (!Number.isInteger(offset) || offset < 0) throw new ImageError(`offset ${offset} is not a flash address`, { address: offset });
  if (offset % SECTOR_SIZE !== 0) throw new ImageError(`offset 0x${offset.toString(16)} is not 4 KiB aligned`, { address: offset });
  if (opts.flashSize !== undefined && offset + length > opts.flashSize) {
    throw new ImageError(`image 0x${offset.toString(16)}+0x${length.toString(16)} exceeds the 0x${opts.flashSize.toString(16)}-byte flash`, { address: offset });
  }
  const regions = opts.force ? [] : opts.writeBootloader ? [RF_CALIBRATION_REGION] : [BOOTLOADER_REGION, RF_CALIBRATION_REGION];
  // The last sector is written whole, so the check covers the sector-padded range.
  const range = { start: offset, end: offset + Math.ceil(length / SECTOR_SIZE) * SECTOR_SIZE };
  for (const r of regions) {
    if (overlaps(range, r)) {
      throw new FlashError(`refusing to write ${r.name} region 0x${r.start.toString(16)}..0x${r.end.toString(16)} (use force${r === BOOTLOADER_REGION ? ' or writeBootloader' : ''})`, {
        phase: 'write',
        address: Math.max(offset, r.start),
        region: r.name,
      });
    }
  }
  return regions;
}

/** What recovery cost so far (the soak script and the unit record report it). */
export interface FlasherRecoveryStats {
  /** Commands re-sent after a lost, late or garbled reply. */
  commandRetries: number;
  /** Re-links after the chip stopped answering (brown-out, reset). */
  relinks: number;
  /** Sectors rewritten after a failed write or a CRC mismatch. */
  sectorRewrites: number;
  /** Lower baud rates taken after repeated trouble at a higher one. */
  baudFallbacks: number;
  /** RF/MAC sectors restored from the connect() copy after a stray write hit them. */
  rfRestores: number;
  /** Ranges outside the image restored after a stray write (any source, RF/MAC included). */
  outsideRestores: number;
}

/**
 * Verify rounds in all while every bad sector reads differently each time (data garbled on the
 * line, see #verifyAndRepair): six repairs leave a 4 KiB sector at a 1e-5 byte-error rate a
 * (1/25)^7 chance of failing, against (1/25)^4 with three.
 */
const LINE_REPAIR_ROUNDS = 6;

/** Quiet time and limit of the drain after a lost reply: a late reply must not answer the re-sent command. */
const RESYNC_QUIET_MS = 30;
const RESYNC_MAX_MS = 300;

/** Between two records every command sent got its own echoed reply and nothing irregular happened. */
function lineClean(from: LineRecord, to: LineRecord): boolean {
  return to.irregular === from.irregular && to.sent - from.sent === to.answered - from.answered;
}

/** True when a command went unanswered through all its retries: the chip itself is gone, not one reply. */
function chipSilent(e: unknown): boolean {
  return e instanceof TimeoutError && e.context.unresponsive === true;
}

/** True when the channel's resync barrier went unanswered (the chip stopped after a failed request). */
function barrierUnanswered(e: unknown): boolean {
  return e instanceof TimeoutError && e.context.barrier === true;
}

export class Bk7231Flasher {
  readonly channel: CommandChannel;
  readonly stats: FlasherRecoveryStats = { commandRetries: 0, relinks: 0, sectorRewrites: 0, baudFallbacks: 0, rfRestores: 0, outsideRestores: 0 };
  readonly #opts: Bk7231FlasherOptions;
  readonly #log: Logger;
  readonly #planner = new FlashPlanner();
  #info: ChipInfo | null = null;
  #erase32k: boolean;
  #erase32kProven = false;
  /** RF/MAC sector as read (CRC-checked) at connect(); null when the flash has none. */
  #rfCopy: Uint8Array | null = null;
  /** Highest baud rate still allowed (lowered by baud fallback after repeated trouble). */
  #baudCeiling = Infinity;

  constructor(opts: Bk7231FlasherOptions) {
    this.#opts = opts;
    this.#erase32k = opts.erase32k ?? true;
    this.#log = opts.log ?? rootLogger().child({ component: 'bk7231-flasher' });
    this.channel = new CommandChannel(opts.port, this.#log);
  }

  get info(): ChipInfo | null {
    return this.#info;
  }

  /** Reset + link at 115200, switch to the fastest working rate, identify the chip. */
  async connect(): Promise<ChipInfo> {
    // A chip that stops answering while being identified (a swallowed request, a brown-out) is
    // re-linked and identified again, as a write or read step would be (bounded by retries.relink).
    const relinks = this.#opts.retries?.relink ?? 3;
    for (let attempt = 0; ; attempt++) {
      await this.#link();
      const baud = await this.#raiseBaud();
      try {
        this.#info = await this.#identify(baud);
        break;
      } catch (e) {
        if (!(chipSilent(e) || barrierUnanswered(e)) || attempt >= relinks) throw e;
        this.stats.relinks++;
        this.#log.warn({ attempt: attempt + 1, err: (e as Error).message }, 'chip stopped answering while being identified: re-linking');
      }
    }
    this.#log.info({ ...this.#info, flashPart: this.#info.flashPart?.name }, 'chip identified');
    return this.#info;
  }

  /** Clear the block-protect bits if set; verify by re-reading. */
  async unprotect(): Promise<{ changed: boolean; before: number; after: number }> {
    const info = this.#requireInfo();
    const part = flashPartFor(info.flashId);
    const tries = this.#opts.retries?.unprotect ?? 5;
    const before = await this.#readSR(part);
    let sr = before;
    for (let i = 0; i <= tries; i++) {
      if ((sr & part.protectMask) === 0) {
        this.#info = { ...info, statusRegister: sr, protected: false };
        if (i > 0) this.#log.info({ before, after: sr, part: part.name }, 'flash unprotected');
        return { changed: i > 0, before, after: sr };
      }
      if (i === tries) break;
      const value = sr & ~part.protectMask;
      const bytes = part.srBytes === 2 ? [value & 0xff, (value >> 8) & 0xff] : [value & 0xff];
      await this.#transact(F.flashWriteSR(bytes), { phase: 'unprotect', operationMs: 100 });
      // The SR write cycle takes a few ms on the flash itself.
      await this.channel.port.clock.sleep(10);
      sr = await this.#readSR(part);
    }
    throw new FlashError(`status register still protects the flash after ${tries} writes (SR 0x${sr.toString(16)}, mask 0x${part.protectMask.toString(16)})`, {
      phase: 'unprotect',
      statusRegister: sr,
      protectMask: part.protectMask,
      part: part.name,
    });
  }

  /** Raw chip CRC (no final xor) of start..start+length-1. */
  async crc(start: number, length: number): Promise<number> {
    if (length <= 0) throw new RangeError(`crc: length must be positive, got ${length}`);
    return this.#crcIn('verify', start, length);
  }

  /**
   * Write `image` at `offset` and prove it with the chip's CRC. The request is checked in full
   * (checkWriteRequest) before anything is sent; a protected chip is unprotected first. Blocks
   * whose first sector the chip reports blank (or that the diff's CRCs found blank) are not erased;
   * the verify CRC proves the presumption (see #blankSectors).
   */
  async write(image: Uint8Array, offset: number, opts: WriteOptions = {}): Promise<WriteResult> {
    const info = this.#requireInfo();
    checkWriteRequest(image.length, offset, { ...opts, flashSize: info.flashSize });
    const padded = await this.#padToSectors(image, offset, opts.onProgress);
    // From here on the line record tells whether the chip ran exactly what was sent (OutsideScope).
    const lineAtSnapshot = this.channel.lineRecord;
    const guard =
      this.#opts.guardOutsideImage === true
        ? await this.#relinking('guard', () => OutsideImageGuard.snapshot(this.#guardedChip(), { offset, length: padded.length, flashSize: info.flashSize, rfCopy: this.#rfCopy, ...(opts.original ? { copy: opts.original } : {}) }))
        : null;
    // Restores survive a re-link: the record says what was put back, whichever attempt did it.
    const restored: OutsideRestore[] = [];
    const relinks = this.#opts.retries?.relink ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        // After a re-link the chip holds part of the image: the CRC diff finds what is left to do.
        const result = await this.#writeOnce(image, padded, offset, attempt === 0 ? opts : { ...opts, diff: true });
        return guard ? await this.#proveOutside(guard, padded, offset, result, restored, lineAtSnapshot) : result;
      } catch (e) {
        if (!chipSilent(e) || attempt >= relinks) throw e;
        this.stats.relinks++;
        this.#log.warn({ attempt: attempt + 1, err: (e as Error).message }, 'chip stopped answering mid-write: re-linking and resuming by CRC diff');
        // Repeated trouble at one rate: the next link settles for a lower one.
        if (attempt >= 1) this.#lowerBaudCeiling();
        // The RF/MAC copy from before the write stays the reference (a stray write may have hit it since).
        const rfCopy = this.#rfCopy;
        await this.connect();
        this.#rfCopy = rfCopy;
      }
    }
  }

  async #writeOnce(image: Uint8Array, padded: Uint8Array, offset: number, opts: WriteOptions): Promise<WriteResult> {
    const info = this.#requireInfo();
    const protectedRegions = checkWriteRequest(image.length, offset, { ...opts, flashSize: info.flashSize });
    if (info.protected !== false) await this.unprotect();

    const all = padded.length / SECTOR_SIZE;
    const survey = opts.diff ? await this.#changedSectors(padded, offset, opts.onProgress) : { changed: undefined, blank: await this.#blankSectors(offset, padded.length, opts.onProgress), proven: null };
    const plan = this.#planner.plan({
      image: padded,
      offset,
      flashSize: info.flashSize,
      sectors: survey.changed,
      blank: survey.blank,
      eraseTimes: info.flashPart?.eraseTimes,
      erase32k: this.#erase32k,
      protectedRegions,
    });
    const touched = survey.changed ? survey.changed.length : all;
    this.#log.info({ offset, length: padded.length, erases: plan.erases.length, writes: plan.writes.length, blank: plan.skippedBlank.length, alreadyBlank: plan.alreadyBlank.length, unchanged: all - touched }, 'flash plan');

    let erasedBytes = 0;
    const eraseTotal = plan.erases.reduce((n, e) => n + e.size, 0);
    // Announced before the first erase/write goes out: from that command on the region's old content
    // may be gone, and an interruption must not be described as "unchanged" (cli/flash-state.ts).
    if (plan.erases.length > 0) opts.onProgress?.({ phase: 'erase', done: 0, total: eraseTotal });
    for (const e of plan.erases) {
      erasedBytes += await this.#eraseStep(e);
      opts.onProgress?.({ phase: 'erase', done: Math.min(erasedBytes, eraseTotal), total: eraseTotal });
    }
    if (plan.writes.length > 0) opts.onProgress?.({ phase: 'write', done: 0, total: plan.writes.length * SECTOR_SIZE });
    await this.#writeSectors(plan.writes, (d) => opts.onProgress?.({ phase: 'write', done: d, total: plan.writes.length * SECTOR_SIZE }));

    // Nothing rewritten: the diff's whole-range CheckCRC already proved the region.
    const { crc, repaired } = survey.proven !== null && touched === 0 ? { crc: survey.proven, repaired: new Set<number>() } : await this.#verifyAndRepair(padded, offset, opts.onProgress);
    const notBlank = plan.alreadyBlank.filter((s) => repaired.has(s));
    if (notBlank.length > 0) {
      this.#log.info({ sectors: notBlank.map((a) => '0x' + a.toString(16)) }, 'sectors presumed blank held data: the verify caught them, erased and rewritten');
    }
    return {
      offset,
      length: image.length,
      verifiedLength: padded.length,
      erasedBytes,
      sectorsWritten: plan.writes.length,
      sectorsSkippedBlank: plan.skippedBlank.length,
      sectorsAlreadyBlank: plan.alreadyBlank.length - notBlank.length,
      sectorsUnchanged: all - touched,
      sectorsRepaired: repaired.size,
      crc,
      outsideRestored: [],
      outsideCheck: null,
    };
  }

  /** Read flash with FlashRead4K; every 64 KiB chunk is CRC-checked and bad sectors re-read. */
  async read(offset: number, length: number, onProgress?: (p: FlashProgress) => void): Promise<Uint8Array> {
    const info = this.#requireInfo();
    if (length <= 0 || offset < 0 || offset + length > info.flashSize) {
      throw new ImageError(`read 0x${offset.toString(16)}+0x${length.toString(16)} outside the 0x${info.flashSize.toString(16)}-byte flash`, { address: offset });
    }
    const first = offset - (offset % SECTOR_SIZE);
    const last = Math.ceil((offset + length) / SECTOR_SIZE) * SECTOR_SIZE;
    const out = new Uint8Array(last - first);
    const retries = this.#opts.retries?.read ?? 5;
    for (let chunk = first; chunk < last; chunk += BLOCK_SIZE) {
      const end = Math.min(last, chunk + BLOCK_SIZE);
      // A chunk read again whole after a re-link: reads change nothing on the chip.
      await this.#relinking('read', async () => {
        let sectors = sectorAddresses(chunk, end - chunk);
        for (let attempt = 0; ; attempt++) {
          await this.#readSectors(sectors, out, first, (n) => onProgress?.({ phase: 'read', done: chunk - first + n, total: out.length }));
          const { bad } = await this.#locateBad(chunk, out.subarray(chunk - first, end - first), 'read');
          if (bad.length === 0) break;
          if (attempt >= retries) {
            throw new FlashError(`read CRC mismatch at 0x${bad[0]!.toString(16)} after ${retries} re-reads`, { phase: 'read', address: bad[0], badSectors: bad });
          }
          this.#log.warn({ bad }, 're-reading sectors with CRC mismatch');
          sectors = bad;
        }
      });
      onProgress?.({ phase: 'read', done: end - first, total: out.length });
    }
    return out.slice(offset - first, offset - first + length);
  }

  /** Leave the bootloader; the chip resets into the application. */
  async reboot(): Promise<void> {
    const req = F.reboot();
    await this.channel.send(req);
    this.#info = null;
    // Let the frame leave at the current rate before the host switches back.
    await this.channel.port.clock.sleep(this.channel.wireMs(req.bytes.length) + 1);
    await this.channel.setHostBaud(BOOT_BAUD);
  }

  async #link(): Promise<void> {
    await this.channel.setHostBaud(BOOT_BAUD);
    await getBus(this.channel, { ...this.#opts.link, reset: this.#opts.reset, log: this.#log });
  }

  /** Try the target rate, then the fallbacks; a failed switch leaves the chip at an unknown rate, so re-reset. */
  async #raiseBaud(): Promise<number> {
    const target = this.#opts.baudRate ?? DEFAULT_BAUD;
    const all = [target, ...(this.#opts.fallbackBaudRates ?? DEFAULT_FALLBACK_BAUDS).filter((r) => r < target)];
    const rates = all.filter((r) => r <= this.#baudCeiling);
    if (rates.length === 0) rates.push(all[all.length - 1]!);
    let lastError: unknown;
    for (const rate of rates) {
      if (rate === BOOT_BAUD) return BOOT_BAUD;
      try {
        await this.#setBaud(rate);
        return rate;
      } catch (e) {
        if (!(e instanceof PlugrigError)) throw e;
        lastError = e;
        this.#log.warn({ rate, err: e.message }, 'baud switch failed, re-linking for a lower rate');
        await this.#link();
      }
    }
    throw new LinkError(`could not switch to any of ${rates.join(', ')} baud`, { phase: 'baud', rates }, { cause: lastError });
  }

  /** Baud fallback: the next link uses the rate below the one in use now. */
  #lowerBaudCeiling(): void {
    const current = this.channel.baudRate;
    if (current <= BOOT_BAUD) return;
    this.#baudCeiling = current - 1;
    this.stats.baudFallbacks++;
    this.#log.warn({ from: current }, 'baud fallback: the next link uses a lower rate');
  }

  async #setBaud(rate: number): Promise<void> {
    const delay = this.#opts.baudDelayMs ?? 20;
    const req = F.setBaudRate(rate, delay);
    const clock = this.channel.port.clock;
    await this.channel.send(req);
    // Switch after the frame has left and about half the chip's delay has passed.
    await clock.sleep(Math.max(delay / 2, this.channel.wireMs(req.bytes.length) + 1));
    await this.channel.setHostBaud(rate);
    await this.channel.awaitReply(req, delay + 500, { phase: 'baud' });
    // Prove the new rate both ways before trusting it.
    await this.channel.transact(F.linkCheck(), { phase: 'baud' });
    this.#log.info({ rate }, 'baud rate switched');
  }

  async #identify(baudRate: number): Promise<ChipInfo> {
    let chipId: number | null = null;
    try {
      chipId = decodeRegister(await this.#transact(F.readReg(CHIP_ID_REGISTER), { phase: 'identify' })).value;
    } catch (e) {
      if (!(e instanceof TimeoutError) || barrierUnanswered(e)) throw e;
    }
    // A ROM that answers ReadReg can be resynced by one (see CommandChannel).
    if (chipId !== null) this.channel.enableResyncBarrier();
    const flashId = decodeJedecId(await this.#transact(F.flashGetMID(), { phase: 'identify' }));
    const flashPart = findFlashPart(flashId) ?? null;
    const flashSize = flashPart?.sizeBytes ?? 1 << flashId.capacity;
    const statusRegister = flashPart ? await this.#readSR(flashPart) : null;
    const bootRaw = await this.crc(0, 0x101);
    const bootloaderCrc = ~bootRaw >>> 0;
    let mac: string | null = null;
    this.#rfCopy = null;
    if (flashSize >= RF_SECTOR_ADDRESS + SECTOR_SIZE) {
      if (this.#opts.guardOutsideImage === true) {
        // Kept as the reference the outside guard restores from: proved by the chip's CRC.
        this.#rfCopy = await this.#readSectorVerified(RF_SECTOR_ADDRESS, 'identify');
        mac = macFromRfSector(this.#rfCopy);
      } else {
        const reply = await this.#transact(F.flashRead4K(RF_SECTOR_ADDRESS), { phase: 'identify', address: RF_SECTOR_ADDRESS });
        mac = macFromRfSector(decodeRead4K(reply));
      }
    }
    return {
      chipId,
      chipName: chipId === null ? null : (CHIP_NAMES[chipId] ?? null),
      flashId,
      flashIdHex: jedecHex(flashId),
      flashPart,
      flashSize,
      statusRegister,
      protected: flashPart && statusRegister !== null ? (statusRegister & flashPart.protectMask) !== 0 : null,
      bootloaderCrc,
      bootloader: BOOTLOADER_BY_CRC[bootloaderCrc] ?? null,
      mac,
      baudRate,
    };
  }

  async #readSR(part: FlashPart): Promise<number> {
    let sr = 0;
    for (const [i, op] of part.readSrOpcodes.entries()) {
      sr |= decodeStatusRegister(await this.#transact(F.flashReadSR(op), { phase: 'unprotect' })) << (8 * i);
    }
    return sr;
  }

  #requireInfo(): ChipInfo {
    if (!this.#info) throw new LinkError('not connected: call connect() first', { phase: 'link' });
    return this.#info;
  }

  /** A partial last sector keeps the flash's current bytes beyond the image. */
  async #padToSectors(image: Uint8Array, offset: number, onProgress?: (p: FlashProgress) => void): Promise<Uint8Array> {
    const tail = image.length % SECTOR_SIZE;
    if (tail === 0) return image;
    const padded = new Uint8Array(image.length - tail + SECTOR_SIZE);
    const lastSector = offset + image.length - tail;
    padded.set(await this.read(lastSector, SECTOR_SIZE, onProgress), image.length - tail);
    padded.set(image, 0);
    return padded;
  }

  /**
   * Whole range, then 64K blocks, then 4K sectors: the sectors whose chip CRC differs from the
   * image, the sectors the chip reports blank, and the chip's whole-range CRC when it matched.
   */
  async #changedSectors(image: Uint8Array, offset: number, onProgress?: (p: FlashProgress) => void): Promise<{ changed: number[]; blank: Set<number>; proven: number | null }> {
    const changed: number[] = [];
    const blank = new Set<number>();
    const whole = await this.crc(offset, image.length);
    if (whole === crc32Raw(image)) return { changed, blank, proven: whole };
    const end = offset + image.length;
    for (let blk = offset; blk < end; ) {
      const blkEnd = Math.min(end, blk - (blk % BLOCK_SIZE) + BLOCK_SIZE);
      const local = image.subarray(blk - offset, blkEnd - offset);
      // The whole range is one block: its CRC is the one just taken.
      const chip = blkEnd - blk === image.length ? whole : await this.crc(blk, blkEnd - blk);
      if (chip === blankCrc(blkEnd - blk)) {
        for (const s of sectorAddresses(blk, blkEnd - blk)) {
          blank.add(s);
          if (!isBlank(image.subarray(s - offset, s - offset + SECTOR_SIZE))) changed.push(s);
        }
      } else if (chip !== crc32Raw(local)) {
        for (const s of sectorAddresses(blk, blkEnd - blk)) {
          const c = await this.crc(s, SECTOR_SIZE);
          if (c === blankCrc(SECTOR_SIZE)) blank.add(s);
          if (c !== crc32Raw(image.subarray(s - offset, s - offset + SECTOR_SIZE))) changed.push(s);
        }
      }
      blk = blkEnd;
      onProgress?.({ phase: 'diff', done: blk - offset, total: image.length });
    }
    return { changed, blank, proven: null };
  }

  /**
   * Sectors of [start, start+length) not to erase, per 64K block clipped to the range: one
   * CheckCRC of the block's first sector; when it holds data the block is erased, when it is blank
   * the whole block is presumed blank and written without an erase. Proving the rest blank first
   * would read every blank byte twice (once now, once in the verify CRC: 0.26 s per MiB on a blank
   * chip); instead the verify proves it. NOR programming only clears bits, so a presumed sector
   * that held data reads back as image AND old content: the verify CRC differs, the bisection
   * finds the sector, and the repair erases and rewrites it. Nothing is reported as written unless
   * the chip's CRC of the whole range equals the image's; a wrong presumption costs time only.
   */
  async #blankSectors(start: number, length: number, onProgress?: (p: FlashProgress) => void): Promise<Set<number>> {
    const blank = new Set<number>();
    const end = start + length;
    for (let blk = start; blk < end; ) {
      const blkEnd = Math.min(end, blk - (blk % BLOCK_SIZE) + BLOCK_SIZE);
      if ((await this.crc(blk, SECTOR_SIZE)) === blankCrc(SECTOR_SIZE)) for (const s of sectorAddresses(blk, blkEnd - blk)) blank.add(s);
      blk = blkEnd;
      onProgress?.({ phase: 'diff', done: blk - start, total: length });
    }
    return blank;
  }

  /**
   * One planned erase; returns the bytes erased. Whether the N ROM passes 32K erases (0x52) to
   * the flash is not documented (bk7231-protocol.md §3.11), so the first one is checked by CRC;
   * a refused or ineffective one turns 32K erases off and its half is erased 4K by 4K.
   */
  async #eraseStep(e: EraseStep): Promise<number> {
    if (e.op !== EraseOpcode.Block32K) {
      await this.#erase(e.op, e.address);
      return e.size;
    }
    if (this.#erase32k) {
      let works = true;
      try {
        await this.#erase(e.op, e.address);
        if (!this.#erase32kProven) works = (await this.crc(e.address, e.size)) === blankCrc(e.size);
      } catch (err) {
        // A vanished port or a silent chip is no answer about 0x52; a refusal or a missing reply is.
        if (!(err instanceof PlugrigError) || err instanceof TransportError || chipSilent(err)) throw err;
        works = false;
        await this.channel.drain(5, 50);
      }
      if (works) {
        this.#erase32kProven = true;
        return e.size;
      }
      this.#erase32k = false;
      this.#log.warn({ address: e.address }, '32K erase (0x52) refused or ineffective on this chip: using 4K erases');
    }
    for (const s of sectorAddresses(e.address, e.size)) await this.#erase(EraseOpcode.Sector4K, s);
    return e.size;
  }

  async #erase(op: EraseOpcode, address: number): Promise<void> {
    await this.#transact(F.flashErase(op, address), { phase: 'erase', address, operationMs: op === EraseOpcode.Sector4K ? 1000 : op === EraseOpcode.Block32K ? 1600 : 1900 });
  }

  /** Write4K frames back to back; each failure re-erases that sector and retries (bounded). */
  async #writeSectors(writes: readonly { address: number; data: Uint8Array }[], progress: (done: number) => void): Promise<void> {
    const retries = this.#opts.retries?.write ?? 3;
    let next = writes.length ? F.flashWrite4K(writes[0]!.address, writes[0]!.data) : null;
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]!;
      const req = next!;
      const pending = this.channel.transact(req, { phase: 'write', address: w.address, operationMs: 200 });
      // Handled below, after the next frame is built; never an unhandled rejection meanwhile.
      pending.catch(() => undefined);
      // Build the next frame while this one is on the wire.
      next = i + 1 < writes.length ? F.flashWrite4K(writes[i + 1]!.address, writes[i + 1]!.data) : null;
      try {
        await pending;
      } catch (e) {
        // A vanished port is not a flaky sector: retrying would only wait out more timeouts.
        if (e instanceof TransportError) {
          e.context.phase ??= 'write';
          e.context.address ??= w.address;
          throw e;
        }
        if (!(e instanceof PlugrigError)) throw e;
        // Out of sync after a lost reply: let a late one pass before the sector is redone.
        if (e instanceof TimeoutError) await this.channel.drain(RESYNC_QUIET_MS, RESYNC_MAX_MS);
        await this.#rewriteSector(w.address, w.data, retries, e);
      }
      progress((i + 1) * SECTOR_SIZE);
    }
  }

  async #rewriteSector(address: number, data: Uint8Array, retries: number, first: PlugrigError): Promise<void> {
    let last: PlugrigError = first;
    for (let attempt = 1; attempt <= retries; attempt++) {
      this.#log.warn({ address, attempt, err: last.message }, 'rewriting sector');
      this.stats.sectorRewrites++;
      try {
        await this.channel.drain(5, 50);
        await this.#erase(EraseOpcode.Sector4K, address);
        if (!isBlank(data)) await this.#transact(F.flashWrite4K(address, data), { phase: 'write', address, operationMs: 200 });
        return;
      } catch (e) {
        if (!(e instanceof PlugrigError) || e instanceof TransportError || chipSilent(e)) throw e;
        last = e;
      }
    }
    throw new FlashError(`writing sector 0x${address.toString(16)} failed after ${retries} retries: ${last.message}`, { phase: 'write', address, ...last.context }, { cause: last });
  }

  /**
   * One CRC over the range; on mismatch bisect to the bad sectors, rewrite them, check again.
   * Returns the CRC the chip reported for the whole range (equal to the image's, or it throws) and
   * the sectors it had to rewrite.
   *
   * `retries.verify` bounds the rounds in which a bad sector comes back with a CRC it already had
   * (a sector that does not take the data: a dead cell reads the same every time). A round in
   * which every bad sector reads differently from each of its earlier wrong reads shows the data
   * arriving garbled on the line (a flipped bit lands elsewhere each time; at a byte-error rate of
   * 1e-5 one Write4K frame in 25 is hit), so it does not count against that bound, only against
   * LINE_REPAIR_ROUNDS in all.
   */
  async #verifyAndRepair(image: Uint8Array, offset: number, onProgress?: (p: FlashProgress) => void): Promise<{ crc: number; repaired: Set<number> }> {
    const retries = this.#opts.retries?.verify ?? 3;
    const repaired = new Set<number>();
    /** Every wrong CRC the chip gave for each sector so far. */
    const wrongCrcs = new Map<number, Set<number>>();
    let stuckRounds = 0;
    for (let attempt = 0; ; attempt++) {
      onProgress?.({ phase: 'verify', done: 0, total: image.length });
      const { bad, badCrcs, chipCrc, expectedCrc } = await this.#locateBad(offset, image, 'verify');
      onProgress?.({ phase: 'verify', done: image.length, total: image.length });
      if (bad.length === 0 && chipCrc === expectedCrc) return { crc: chipCrc, repaired };
      const garbledOnly = bad.length > 0 && bad.every((s, k) => !wrongCrcs.get(s)?.has(badCrcs[k]!));
      for (const [k, s] of bad.entries()) (wrongCrcs.get(s) ?? wrongCrcs.set(s, new Set()).get(s)!).add(badCrcs[k]!);
      if (!garbledOnly && attempt > 0) stuckRounds++;
      if (stuckRounds >= retries || attempt >= Math.max(retries, LINE_REPAIR_ROUNDS)) {
        if (bad.length === 0) {
          throw new FlashError(`verify failed: the chip's CRC of 0x${offset.toString(16)}+0x${image.length.toString(16)} is 0x${chipCrc.toString(16)}, the image's 0x${expectedCrc.toString(16)}, although every part matched`, { phase: 'verify', address: offset, chipCrc, expectedCrc });
        }
        throw new FlashError(`verify failed at 0x${bad[0]!.toString(16)} (${bad.length} sector(s)) after ${attempt} repairs`, { phase: 'verify', address: bad[0], badSectors: bad, chipCrc, expectedCrc, repeatedWrongReads: stuckRounds });
      }
      // The whole range disagreed but every part matched: an unreliable answer, so ask again.
      if (bad.length === 0) continue;
      this.#log.warn({ bad: bad.map((a) => '0x' + a.toString(16)) }, 'CRC mismatch, repairing sectors');
      onProgress?.({ phase: 'repair', done: 0, total: bad.length * SECTOR_SIZE });
      for (const [k, s] of bad.entries()) {
        await this.#rewriteSector(s, image.subarray(s - offset, s - offset + SECTOR_SIZE), this.#opts.retries?.write ?? 3, new FlashError('CRC mismatch', { phase: 'verify', address: s }));
        onProgress?.({ phase: 'repair', done: (k + 1) * SECTOR_SIZE, total: bad.length * SECTOR_SIZE });
      }
      for (const s of bad) repaired.add(s);
    }
  }

  /** Sectors of [start, start+expected.length) whose chip CRC differs (found by bisection), and the chip's CRC of the whole range. */
  async #locateBad(start: number, expected: Uint8Array, phase: 'verify' | 'read'): Promise<{ bad: number[]; badCrcs: number[]; chipCrc: number; expectedCrc: number }> {
    /** The chip's CRC of each bad sector, in the order of `bad`. */
    const badCrcs: number[] = [];
    const check = async (a: number, len: number, chip: number): Promise<number[]> => {
      if (chip === crc32Raw(expected.subarray(a - start, a - start + len))) return [];
      if (len <= SECTOR_SIZE) {
        badCrcs.push(chip);
        return [a];
      }
      const half = Math.ceil(len / SECTOR_SIZE / 2) * SECTOR_SIZE;
      return [...(await check(a, half, await this.#crcIn(phase, a, half))), ...(await check(a + half, len - half, await this.#crcIn(phase, a + half, len - half)))];
    };
    const asked = this.#crcIn(phase, start, expected.length);
    // Handled below; never an unhandled rejection while the host computes its own CRC.
    asked.catch(() => undefined);
    // The host's CRC of the whole range while the chip computes the chip's (1 MiB: 262 ms on the
    // chip, tens of ms here on a loaded machine, which would otherwise follow the reply).
    const whole = crc32Raw(expected);
    const chipCrc = await asked;
    const bad = chipCrc === whole ? [] : await check(start, expected.length, chipCrc);
    return { bad, badCrcs, chipCrc, expectedCrc: whole };
  }

  async #crcIn(phase: 'verify' | 'read' | 'identify', start: number, length: number): Promise<number> {
    const reply = await this.#transact(F.checkCrc(start, start + length - 1), { phase, address: start, operationMs: (length / CRC_BYTES_PER_S) * 1000 + 1000 });
    return decodeCrc(reply);
  }

  /**
   * One command with bounded re-sends: a reply lost, late or garbled on the line (timeout, or a
   * non-zero status that a flipped bit can fake) is drained away and the command sent again.
   * Every BK7231 command is safe to repeat (erase, program of the same data, CRC, reads, SR
   * writes). When all tries go unanswered the chip itself has stopped (a brown-out reset it):
   * the TimeoutError then carries `unresponsive: true` so write() re-links instead of retrying on.
   */
  async #transact(req: F.Bk7231Request, opts: TransactOptions): Promise<Bk7231Reply> {
    const retries = this.#opts.retries?.command ?? 3;
    let timeouts = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.channel.transact(req, opts);
      } catch (e) {
        // An unanswered resync barrier already says the chip is silent: re-link, do not re-send.
        if (!(e instanceof TimeoutError || e instanceof FlashError) || e instanceof TransportError || barrierUnanswered(e)) throw e;
        if (e instanceof TimeoutError) timeouts++;
        if (attempt >= retries) {
          if (timeouts > retries) e.context.unresponsive = true;
          throw e;
        }
        this.stats.commandRetries++;
        this.#log.warn({ cmd: req.name, attempt: attempt + 1, err: e.message }, 'no valid reply: resyncing and re-sending');
        await this.channel.drain(RESYNC_QUIET_MS, RESYNC_MAX_MS);
      }
    }
  }

  /** One 4K sector read and proved by the chip's CRC (re-read on mismatch). */
  async #readSectorVerified(address: number, phase: 'identify' | 'read'): Promise<Uint8Array> {
    const tries = this.#opts.retries?.read ?? 5;
    for (let attempt = 0; ; attempt++) {
      const data = decodeRead4K(await this.#transact(F.flashRead4K(address), { phase, address, operationMs: 100 })).slice();
      if ((await this.#crcIn(phase, address, SECTOR_SIZE)) === crc32Raw(data)) return data;
      if (attempt >= tries) throw new FlashError(`read CRC mismatch at 0x${address.toString(16)} after ${tries} re-reads`, { phase, address });
    }
  }

  /**
   * Run `fn` (reads and CRCs only: work that changes nothing and can start over); when the chip has
   * stopped answering, re-link and run it again (bounded by retries.relink). Besides a brown-out, a
   * flipped bit in a request's length field does this: the ROM's parser then waits for a frame body
   * thousands of bytes long and swallows every request after it, until a reset.
   */
  async #relinking<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const relinks = this.#opts.retries?.relink ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!chipSilent(e) || attempt >= relinks) throw e;
        this.stats.relinks++;
        this.#log.warn({ what, attempt: attempt + 1, err: (e as Error).message }, 'chip stopped answering: re-linking and starting the step again');
        const rfCopy = this.#rfCopy;
        await this.connect();
        this.#rfCopy = rfCopy;
      }
    }
  }

  /** The chip as the outside guard sees it: CRCs, sector restores (erase + program), the model clock. */
  #guardedChip(): GuardedChip {
    return {
      crc: (start, length) => this.#crcIn('verify', start, length),
      rewriteSector: async (address, data) => {
        await this.channel.drain(5, 50);
        await this.#erase(EraseOpcode.Sector4K, address);
        if (!isBlank(data)) await this.#transact(F.flashWrite4K(address, data), { phase: 'write', address, operationMs: 200 });
      },
      now: () => this.channel.port.clock.now(),
    };
  }

  /**
   * Prove the flash outside the image unchanged, restoring what a stray write changed. A restore
   * sends erases and writes over the same line, so after one the image is proved (and repaired)
   * again and the outside checked again, until a check finds nothing to restore (bounded).
   */
  async #proveOutside(guard: OutsideImageGuard, padded: Uint8Array, offset: number, result: WriteResult, restored: OutsideRestore[], lineAtSnapshot: LineRecord): Promise<WriteResult> {
    const chip = this.#guardedChip();
    for (let round = 0; ; round++) {
      // The record is judged after the protected ranges' CRCs too: a reply that only arrives
      // behind them (a command the chip parsed on its own) still counts.
      let scope: OutsideScope = restored.length === 0 && lineClean(lineAtSnapshot, this.channel.lineRecord) ? 'protected' : 'all';
      let back = await guard.check(chip, { offset, length: padded.length }, scope);
      if (scope === 'protected' && back.length === 0 && !lineClean(lineAtSnapshot, this.channel.lineRecord)) {
        scope = 'all';
        back = await guard.check(chip, { offset, length: padded.length }, scope);
      }
      if (back.length === 0) return { ...result, outsideRestored: [...restored], outsideCheck: { scope, crcBytes: guard.checkBytes(scope) } };
      for (const r of back) {
        this.#log.warn({ region: r.region, start: r.start, sectors: r.sectors.length, source: r.source }, 'stray write outside the image: range restored and proved by CRC');
        this.stats.outsideRestores++;
        if (r.source === 'rf-copy') this.stats.rfRestores++;
      }
      restored.push(...back);
      if (round >= 2) {
        throw new FlashError(`flash outside the image kept changing: ${restored.length} ranges restored in ${round + 1} rounds`, { phase: 'verify', address: offset, restored: restored.map((r) => r.start) });
      }
      const { crc } = await this.#verifyAndRepair(padded, offset);
      result = { ...result, crc };
    }
  }

  async #readSectors(sectors: readonly number[], out: Uint8Array, base: number, progress: (n: number) => void): Promise<void> {
    const retries = this.#opts.retries?.read ?? 5;
    for (const [i, s] of sectors.entries()) {
      for (let attempt = 0; ; attempt++) {
        try {
          const reply = await this.#transact(F.flashRead4K(s), { phase: 'read', address: s, operationMs: 100 });
          out.set(decodeRead4K(reply), s - base);
          break;
        } catch (e) {
          if (!(e instanceof TimeoutError) || chipSilent(e) || attempt >= retries) throw e;
          this.#log.warn({ address: s, attempt }, 'read timeout, retrying');
          await this.channel.drain(5, 100);
        }
      }
      progress((i + 1) * SECTOR_SIZE);
    }
  }
}
