/**
 * SPI NOR flash parts the virtual BK7231N can carry, with their IDs, status-register shape and
 * operation times. Times are the datasheet TYPICAL figures (not maxima): the simulator should
 * behave like an average healthy part. Never tune these to make a benchmark look better; change
 * them only when a better source (or a measurement on a real CB2S) appears.
 */

// Written twice on purpose (chip; the host's parts are rig/bk7231/flash-parts.ts); each side is tested against the reference's literal traces.
export interface FlashTiming {
  /** 4 KiB sector erase (opcode 0x20), ms. */
  erase4kMs: number;
  /** 32 KiB block erase (0x52), ms. */
  erase32kMs: number;
  /** 64 KiB block erase (0xD8), ms. */
  erase64kMs: number;
  /** Page program (up to 256 bytes; partial pages are charged the full page time), ms. */
  pageProgramMs: number;
  /** Write-status-register cycle (tW), ms. */
  writeSrMs: number;
  /** Array read rate as the BK7231 SPI controller reads it, bytes per second. */
  readBytesPerSec: number;
}

export interface FlashPart {
  name: string;
  /** JEDEC ID as returned by 0x9F: manufacturer, memory type, capacity (size = 1 << capacity). */
  jedecId: readonly [number, number, number];
  sizeBytes: number;
  /** 1: SR1 only (0x05/0x01); 2: SR1 + SR2 (0x35), WRSR accepts two bytes. */
  srBytes: 1 | 2;
  /** Protection bits (BP*, CMP) within SR1 | SR2 << 8; any set bit protects the whole array in our model. */
  protectMask: number;
  timing: FlashTiming;
  /** Where the figures come from and what is assumed. */
  source: string;
}

/** Single-line SPI read at 50 MHz: 8 clocks per byte. */
const READ_50MHZ_SINGLE = 50e6 / 8;

/**
 * Winbond W25Q16JV typical AC characteristics (datasheet "W25Q16JV", AC electrical
 * characteristics table: tSE 45 ms, tBE1 120 ms, tBE2 150 ms, tPP 0.4 ms, tW 10 ms).
 */
const W25Q16JV_TYPICAL: FlashTiming = {
  erase4kMs: 45,
  erase32kMs: 120,
  erase64kMs: 150,
  pageProgramMs: 0.4,
  writeSrMs: 10,
  readBytesPerSec: READ_50MHZ_SINGLE,
};

export const FLASH_PARTS = {
  /**
   * The part most often seen on CB2S modules (bk7231-protocol.md §7.1). Its own datasheet figures
   * are not in the reference docs, so the W25Q16JV typicals stand in (assumption: same class of
   * 2 MiB 3 V SPI NOR, same 4K/32K/64K erase granularity and 256-byte pages).
   */
  TH25Q16HB: {
    name: 'TH25Q16HB',
    jedecId: [0xeb, 0x60, 0x15],
    sizeBytes: 2 * 1024 * 1024,
    srBytes: 2,
    protectMask: 0x407c,
    timing: W25Q16JV_TYPICAL,
    source: 'ID/SR shape: bk7231-protocol.md §7.1-7.2; timing: ASSUMPTION, W25Q16JV typical values stand in',
  },
  W25Q16JV: {
    name: 'W25Q16JV',
    jedecId: [0xef, 0x40, 0x15],
    sizeBytes: 2 * 1024 * 1024,
    srBytes: 2,
    protectMask: 0x407c,
    timing: W25Q16JV_TYPICAL,
    source: 'Winbond W25Q16JV datasheet, AC characteristics (typical)',
  },
  /**
   * GigaDevice GD25Q16 datasheet feature list: page program 0.7 ms typ, sector erase 50 ms typ,
   * block erase 0.2 / 0.28 s typ (32K / 64K). Plausible next to W25Q16JV (same order of magnitude,
   * somewhat slower); mask from bk7231tools' SR-size table (2-byte SR). tW is not on the feature
   * list: 10 ms assumed as for W25Q16JV.
   */
  GD25Q16: {
    name: 'GD25Q16',
    jedecId: [0xc8, 0x40, 0x15],
    sizeBytes: 2 * 1024 * 1024,
    srBytes: 2,
    protectMask: 0x407c,
    timing: { erase4kMs: 50, erase32kMs: 200, erase64kMs: 280, pageProgramMs: 0.7, writeSrMs: 10, readBytesPerSec: READ_50MHZ_SINGLE },
    source: 'GD25Q16 datasheet feature list (typical); tW ASSUMPTION',
  },
  /**
   * Eon EN25QH16B (seen on a CB2S, GUI #5): 1-byte SR, mask 0x3C (BP0-BP3). Its own datasheet
   * was not found; the Eon EN25Q16 feature list stands in (page program 1.3 ms typ, sector erase
   * 90 ms typ, 64K block erase 400 ms typ). ASSUMPTION: 32K erase charged like 64K, tW 10 ms.
   */
  EN25QH16B: {
    name: 'EN25QH16B',
    jedecId: [0x1c, 0x70, 0x15],
    sizeBytes: 2 * 1024 * 1024,
    srBytes: 1,
    protectMask: 0x3c,
    timing: { erase4kMs: 90, erase32kMs: 400, erase64kMs: 400, pageProgramMs: 1.3, writeSrMs: 10, readBytesPerSec: READ_50MHZ_SINGLE },
    source: 'ID/SR: bk7231-protocol.md §7.1-7.2; timing: ASSUMPTION, Eon EN25Q16 typical values stand in',
  },
} as const satisfies Record<string, FlashPart>;

export type FlashPartName = keyof typeof FLASH_PARTS;

export const DEFAULT_FLASH_PART: FlashPartName = 'TH25Q16HB';
