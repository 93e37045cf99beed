/**
 * One unit of the flash soak (scripts/soak.ts, figure a): its seeded faults and one flash through the
 * real flasher and SerialLink on the virtual bus, judged on the SIMULATED flash (its content, the
 * erase/program commands it ran), never on what the flasher claims. Shared by soak.ts and its worker
 * threads (flash-soak.worker.ts): a unit's result depends only on the config and its index.
 */
import { makeSyntheticImage } from '../../firmware/synthetic.ts';
import { Bk7231Flasher, type FlashCopy, type FlasherRecoveryStats, type OutsideRestore } from '../../rig/bk7231/flasher.ts';
import { flashRegionOf, type FlashRegion } from '../../rig/bk7231/outside-guard.ts';
import { ModemLineReset } from '../../rig/bk7231/reset.ts';
import { VirtualClock } from '../../rig/core/clock.ts';
import { PlugrigError } from '../../rig/core/errors.ts';
import { createLogger } from '../../rig/core/log.ts';
import { mulberry32 } from '../../rig/core/prng.ts';
import { SerialLink } from '../../rig/serial/serial-link.ts';
import { backupRange, type StockBackupRegion } from '../../suites/flash-backup.ts';
import { VirtualBk7231, type Bk7231Faults, type FlashOperation } from '../../sim/bk7231/virtual-bk7231.ts';
import { FaultyUart, type UartFaultCounters, type UartFaultOptions } from '../../sim/serial/uart-faults.ts';
import { VirtualSerialBus } from '../../sim/serial/virtual-binding.ts';

export interface FlashSoakConfig {
  seed: number;
  /** Byte-error rate of the line, both ways. */
  ber: number;
  /** Per byte and direction: the byte is lost / arrives twice. */
  dropRate: number;
  duplicateRate: number;
  /** Stock backup read before the write and handed to the flasher (null: none). */
  backup: StockBackupRegion | null;
  /** Flash an N KiB pattern instead of the 1 MiB-class OpenBeken UA image. */
  imageKib?: number;
}

export const OFFSET = 0x11000;
/** Per reply: held back past every short command's timeout (2 x wire time + 100 ms) and the barrier's slack. */
export const LATE_REPLY_RATE = 0.002;
export const LATE_REPLY_MS = 1500;
const FLASH_SIZE = 0x200000;
const log = createLogger({}, 'silent');

/** A fault that no recovery can (or may) undo: the unit must fail, naming it. */
export type Permanent = 'locked-sr' | 'unknown-flash-id' | 'dead-sector' | 'no-link';
/** What the unit must fail with when its fault is permanent. */
export const CAUSE: Record<Permanent, RegExp> = {
  'locked-sr': /status register still protects the flash/,
  'unknown-flash-id': /unknown SPI flash part/,
  'dead-sector': /verify failed at|writing sector .* failed/,
  'no-link': /no reply to LinkCheck/,
};

export interface UnitPlan {
  seed: number;
  chip: Bk7231Faults;
  flashId?: [number, number, number];
  line: UartFaultOptions;
  recoverable: string[];
  permanent?: Permanent;
}

export interface UnitOutcome {
  plan: UnitPlan;
  passed: boolean;
  error?: string;
  /** Region the flasher's error names (a changed range outside the image it could not restore). */
  errorRegion?: string;
  /** The simulated flash holds the image, and nothing outside it changed. */
  contentRight: boolean;
  outsideRight: boolean;
  /** Flash time (connect + write), the backup read left out as the station does. */
  modelMs: number;
  backupMs: number;
  stats: FlasherRecoveryStats;
  restores: OutsideRestore[];
  /** Erase/program commands the chip ran outside the image that the flasher did not send there. */
  strays: Array<{ region: FlashRegion; kind: FlashOperation['kind']; address: number }>;
  /** Line fault events of this unit by kind (FaultyUart's counters). */
  lineFaults: UartFaultCounters;
  brownOuts: number;
}

function pattern(length: number, seed: number): Uint8Array {
  let x = seed * 2654435761 || 1;
  return Uint8Array.from({ length }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
}

export class FlashSoak {
  readonly image: Uint8Array;
  readonly imageName: string;
  /** The image as written: whole sectors (the flasher keeps the flash's bytes in a partial last one). */
  readonly imageEnd: number;
  /** Sectors the flasher programs (an all-0xFF sector is only erased: a program fault there hits nothing). */
  readonly #programmed: number[];
  readonly #cfg: FlashSoakConfig;

  constructor(cfg: FlashSoakConfig) {
    this.#cfg = { ...cfg };
    const obk = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 1 });
    this.image = cfg.imageKib === undefined ? obk.bytes : pattern(cfg.imageKib * 1024, 424242);
    this.imageName = cfg.imageKib === undefined ? `${obk.name} (${this.image.length} bytes)` : `${cfg.imageKib} KiB pattern`;
    this.imageEnd = OFFSET + Math.ceil(this.image.length / 4096) * 4096;
    const sectors = Array.from({ length: (this.imageEnd - OFFSET) / 4096 }, (_, k) => OFFSET + 4096 * k);
    this.#programmed = sectors.filter((a) => this.image.subarray(a - OFFSET, a - OFFSET + 4096).some((b) => b !== 0xff));
  }

  get config(): FlashSoakConfig {
    return { ...this.#cfg };
  }

  /**
   * Fault sprinkling per unit (seeded): every unit sees the line's bit errors, dropped and duplicated
   * bytes and occasional delayed, late (past the timeout) and stale replies; recoverable chip faults hit
   * about one unit in six each; a permanent fault about one unit in a hundred.
   */
  planUnit(i: number, faults: boolean): UnitPlan {
    const rnd = mulberry32(this.#cfg.seed * 1_000_003 + i);
    const seed = 1 + i;
    if (!faults) return { seed, chip: {}, line: {}, recoverable: [] };
    const sectors = (this.imageEnd - OFFSET) / 4096;
    const programmed = this.#programmed;
    const chip: Bk7231Faults = {};
    const recoverable: string[] = [];
    const brownOuts: Array<{ during: 'erase' | 'write'; nth: number }> = [];
    if (rnd() < 0.15) {
      brownOuts.push({ during: 'erase', nth: 1 + Math.floor(rnd() * 4) });
      recoverable.push('brown-out mid-erase');
    }
    if (rnd() < 0.15) {
      brownOuts.push({ during: 'write', nth: 1 + Math.floor(rnd() * sectors) });
      recoverable.push('brown-out mid-write');
    }
    if (brownOuts.length) chip.brownOuts = brownOuts;
    if (rnd() < 0.15) {
      chip.missLinkWindows = 1 + Math.floor(rnd() * 2);
      recoverable.push('missed link window');
    }
    if (rnd() < 0.15) {
      chip.failPrograms = { [programmed[Math.floor(rnd() * programmed.length)]!]: 1 + Math.floor(rnd() * 2) };
      recoverable.push('sector fails to program (transient)');
    }
    // The UART faults, on every unit: bit errors, dropped and duplicated bytes (both ways), a
    // stale LinkCheck reply, a reply held back by a latency spike, and a reply late past the host's
    // timeout with everything after it waiting behind it (a FIFO keeps its order).
    const line: UartFaultOptions = {
      seed: seed * 7919,
      byteErrorRate: this.#cfg.ber,
      dropRate: this.#cfg.dropRate,
      duplicateRate: this.#cfg.duplicateRate,
      delayRate: 0.002,
      delayMs: 300,
      lateReplyRate: LATE_REPLY_RATE,
      lateReplyMs: LATE_REPLY_MS,
      staleLinkCheckRate: 0.002,
    };
    const plan: UnitPlan = { seed, chip, line, recoverable };
    const p = rnd();
    if (p < 0.0025) {
      plan.permanent = 'locked-sr';
      chip.statusRegisterLocked = true;
    } else if (p < 0.005) {
      plan.permanent = 'unknown-flash-id';
      plan.flashId = [0x5e, 0x77, 0x15];
    } else if (p < 0.0075) {
      plan.permanent = 'dead-sector';
      chip.failPrograms = { ...chip.failPrograms, [programmed[Math.floor(rnd() * programmed.length)]!]: Infinity };
    } else if (p < 0.01) {
      plan.permanent = 'no-link';
      chip.missLinkWindows = 1000;
    }
    return plan;
  }

  async flashUnit(plan: UnitPlan): Promise<UnitOutcome> {
    const image = this.image;
    const clock = new VirtualClock();
    const bus = new VirtualSerialBus(clock);
    // Factory case: the stock Tuya firmware (bootloader, app, storage, RF/MAC), block-protected SR.
    const chip = new VirtualBk7231({ seed: plan.seed, initialSr: 0x4004, faults: plan.chip, ...(plan.flashId ? { flashId: plan.flashId } : {}) });
    const line = new FaultyUart(chip, plan.line);
    bus.attach('dut', line, { modemLines: true });
    chip.powerOn();
    const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
    await link.setModemLines({ dtr: false, rts: false });
    await clock.sleep(400);
    const before = chip.flash.read(0, chip.flash.size);
    const ops: FlashOperation[] = [];
    chip.onFlashOperation((op) => ops.push(op));
    const flasher = new Bk7231Flasher({ port: link, reset: ModemLineReset.bk7231tools(), log, guardOutsideImage: true });
    const t0 = clock.now();
    let backupMs = 0;
    let passed = false;
    let error: string | undefined;
    let errorRegion: string | undefined;
    let restores: OutsideRestore[] = [];
    try {
      const info = await flasher.connect();
      let original: FlashCopy | undefined;
      if (this.#cfg.backup) {
        // As the flash suite does: the stock backup before anything is written (CRC-checked reads).
        const r = backupRange(this.#cfg.backup, info.flashSize);
        const b0 = clock.now();
        original = { offset: r.offset, data: await flasher.read(r.offset, r.length) };
        backupMs = clock.now() - b0;
      }
      const w = await flasher.write(image, OFFSET, original ? { original } : {});
      restores = w.outsideRestored;
      passed = true;
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      if (e instanceof PlugrigError && typeof e.context.region === 'string') errorRegion = e.context.region;
    }
    const modelMs = clock.now() - t0 - backupMs;
    await link.close();
    const now = chip.flash.read(0, chip.flash.size);
    const contentRight = Buffer.compare(now.subarray(OFFSET, OFFSET + image.length), image) === 0;
    const outsideRight = Buffer.compare(now.subarray(0, OFFSET), before.subarray(0, OFFSET)) === 0 && Buffer.compare(now.subarray(OFFSET + image.length), before.subarray(OFFSET + image.length)) === 0;
    const c = line.counters;
    return {
      plan, passed, contentRight, outsideRight, modelMs, backupMs, stats: { ...flasher.stats }, restores, strays: this.#strays(ops, restores),
      lineFaults: { ...c }, brownOuts: chip.counters.brownOuts,
      ...(error ? { error } : {}), ...(errorRegion ? { errorRegion } : {}),
    };
  }

  /**
   * Outside-image operations the chip ran, minus the guard's own restores (its sectors, inside its
   * time span). An address beyond the flash is counted in the region the flash aliases it onto
   * (the part ignores the high address bits): a byte dropped or duplicated in a Write4K's code or
   * address field shifts the address by 8 bits, which lands in the bootloader's first block (or at
   * 0x100000); only an alias inside the image counts as 'beyond flash'.
   */
  #strays(ops: readonly FlashOperation[], restores: readonly OutsideRestore[]): UnitOutcome['strays'] {
    const out: UnitOutcome['strays'] = [];
    for (const op of ops) {
      const wrapped = op.address % FLASH_SIZE;
      const aliasInImage = wrapped >= OFFSET && wrapped < this.imageEnd;
      if (op.address < FLASH_SIZE && aliasInImage) continue;
      const sector = wrapped - (wrapped % 4096);
      if (op.address < FLASH_SIZE && restores.some((r) => r.sectors.includes(sector) && op.atMs >= r.fromMs && op.atMs <= r.toMs)) continue;
      out.push({ region: aliasInImage ? 'beyond flash' : flashRegionOf(wrapped, FLASH_SIZE), kind: op.kind, address: op.address });
    }
    return out;
  }
}
