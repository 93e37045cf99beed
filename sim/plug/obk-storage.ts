import { crc32 } from 'node:zlib';
import type { SpiFlash } from '../bk7231/spi-flash.ts';
import type { ObkConfigData, ObkRetainedData, ObkStorage } from './obk/contracts.ts';
import { OBK_CONFIG_ADDR, OBK_CONFIG_BYTES, buildConfigSector, parseConfigSector } from './obk-config-sector.ts';

/**
 * OpenBeken's persistent state in the virtual chip's SPI flash (requirement 38): the config sector
 * at 0x1D1000 (obk-config-sector.ts) and the retained values (boot counters, energy) in the
 * EasyFlash area at 0x1E5000–0x1ED000.
 *
 * The real EasyFlash on-flash format is not in the reference, so the simulator uses its own
 * log-structured record format with the same properties that matter (values survive a power cut
 * once written; a torn write loses only the newest record; sectors are erased round-robin):
 *
 *   sector  [0, 4) "OBKF", [4, 8) u32 LE generation (the newest sector has the highest), then
 *           126 record slots of 32 bytes from offset 64.
 *   record  [0] 0xA5, [1] format 1, [2, 4) 0, [4, 8) u32 bootCount, [8, 12) u32 bootSuccessCount,
 *           [12, 16) float32 energyTotalWh, [16, 20) float32 energyTodayWh, [20, 28) 0,
 *           [28, 32) u32 CRC-32 of [0, 28). A slot of 0xFF is free; the last valid record wins.
 *
 * Every write goes through the chip's flash the way the firmware's driver does it: status-register
 * protection is lifted for the write and restored afterwards.
 */

export const EASYFLASH_ADDR = 0x1e5000;
export const EASYFLASH_BYTES = 0x8000;
const SECTOR = 0x1000;
const SECTORS = EASYFLASH_BYTES / SECTOR;
const MAGIC = [0x4f, 0x42, 0x4b, 0x46]; // "OBKF"
const FIRST_SLOT = 64;
const SLOT = 32;
const SLOTS = (SECTOR - FIRST_SLOT) / SLOT;

const EMPTY: ObkRetainedData = { bootCount: 0, bootSuccessCount: 0, energyTotalWh: 0, energyTodayWh: 0 };

function encodeRecord(d: ObkRetainedData): Uint8Array {
  const r = new Uint8Array(SLOT);
  const dv = new DataView(r.buffer);
  r[0] = 0xa5;
  r[1] = 1;
  dv.setUint32(4, d.bootCount >>> 0, true);
  dv.setUint32(8, d.bootSuccessCount >>> 0, true);
  dv.setFloat32(12, d.energyTotalWh, true);
  dv.setFloat32(16, d.energyTodayWh, true);
  dv.setUint32(28, crc32(r.subarray(0, 28)) >>> 0, true);
  return r;
}

function decodeRecord(r: Uint8Array): ObkRetainedData | undefined {
  if (r[0] !== 0xa5 || r[1] !== 1) return undefined;
  const dv = new DataView(r.buffer, r.byteOffset, SLOT);
  if (dv.getUint32(28, true) !== crc32(r.subarray(0, 28)) >>> 0) return undefined;
  return {
    bootCount: dv.getUint32(4, true),
    bootSuccessCount: dv.getUint32(8, true),
    energyTotalWh: dv.getFloat32(12, true),
    energyTodayWh: dv.getFloat32(16, true),
  };
}

interface LogPosition {
  sector: number;
  generation: number;
  /** Next free slot index in that sector (SLOTS = full). */
  nextSlot: number;
  latest: ObkRetainedData | undefined;
}

export class FlashObkStorage implements ObkStorage {
  readonly #flash: SpiFlash;
  /** The config bytes last read or written, so unmodelled fields survive a save. */
  #rawConfig: Uint8Array | undefined;
  /** Counts of flash operations (tests and benches look at wear and at when saves happen). */
  readonly writes = { config: 0, retained: 0, erases: 0 };

  constructor(flash: SpiFlash) {
    this.#flash = flash;
  }

  loadConfig(): ObkConfigData | undefined {
    const parsed = parseConfigSector(this.#flash.read(OBK_CONFIG_ADDR, OBK_CONFIG_BYTES));
    this.#rawConfig = parsed?.raw;
    return parsed?.config;
  }

  saveConfig(cfg: ObkConfigData): void {
    const sector = buildConfigSector(cfg, this.#rawConfig);
    this.#unprotected(() => {
      this.#flash.erase(OBK_CONFIG_ADDR, 4096);
      this.writes.erases++;
      this.#programRange(OBK_CONFIG_ADDR, sector.subarray(0, OBK_CONFIG_BYTES));
    });
    this.#rawConfig = sector.slice(0, OBK_CONFIG_BYTES);
    this.writes.config++;
  }

  loadRetained(): ObkRetainedData {
    return { ...(this.#scan().latest ?? EMPTY) };
  }

  saveRetained(data: ObkRetainedData): void {
    const pos = this.#scan();
    this.#unprotected(() => {
      let { sector, nextSlot } = pos;
      if (pos.generation === 0 || nextSlot >= SLOTS) {
        sector = pos.generation === 0 ? 0 : (sector + 1) % SECTORS;
        const at = EASYFLASH_ADDR + sector * SECTOR;
        this.#flash.erase(at, 4096);
        this.writes.erases++;
        const header = new Uint8Array(8);
        header.set(MAGIC, 0);
        new DataView(header.buffer).setUint32(4, pos.generation + 1, true);
        this.#flash.program(at, header);
        nextSlot = 0;
      }
      this.#flash.program(EASYFLASH_ADDR + sector * SECTOR + FIRST_SLOT + nextSlot * SLOT, encodeRecord(data));
    });
    this.writes.retained++;
  }

  /** The newest sector (highest generation), its next free slot, and the newest valid record anywhere. */
  #scan(): LogPosition {
    let best: LogPosition = { sector: 0, generation: 0, nextSlot: SLOTS, latest: undefined };
    let latestGeneration = 0;
    const area = this.#flash.read(EASYFLASH_ADDR, EASYFLASH_BYTES);
    for (let s = 0; s < SECTORS; s++) {
      const base = s * SECTOR;
      if (!MAGIC.every((b, i) => area[base + i] === b)) continue;
      const generation = new DataView(area.buffer, base + 4, 4).getUint32(0, true);
      if (generation === 0 || generation === 0xffffffff) continue;
      let latest: ObkRetainedData | undefined;
      let nextSlot = 0;
      for (let i = 0; i < SLOTS; i++) {
        const slot = area.subarray(base + FIRST_SLOT + i * SLOT, base + FIRST_SLOT + (i + 1) * SLOT);
        if (slot.every((b) => b === 0xff)) break;
        nextSlot = i + 1;
        latest = decodeRecord(slot) ?? latest; // a torn record loses only itself
      }
      if (latest && generation > latestGeneration) {
        latestGeneration = generation;
        best.latest = latest;
      }
      if (generation > best.generation) best = { sector: s, generation, nextSlot, latest: best.latest };
    }
    return best;
  }

  #programRange(address: number, data: Uint8Array): void {
    for (let off = 0; off < data.length; off += 256) this.#flash.program(address + off, data.subarray(off, Math.min(off + 256, data.length)));
  }

  /** The SDK's flash driver clears the block protection for a write and sets it again afterwards. */
  #unprotected(write: () => void): void {
    const sr = this.#flash.statusRegister;
    if (sr !== 0) this.#flash.writeStatus(0x01, Uint8Array.of(0, 0));
    try {
      write();
    } finally {
      if (sr !== 0) this.#flash.writeStatus(0x01, Uint8Array.of(sr & 0xff, (sr >> 8) & 0xff));
    }
  }
}
