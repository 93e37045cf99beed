import { mulberry32U32 } from '../../rig/core/prng.ts';
import { APP_ADDR, buildRecord } from './boot-image.ts';
import { BLOCK_DATA, toBlocks } from './beken-blocks.ts';
import { BOOTLOADER_ADDR, RF_SECTOR_ADDR, rfSector, syntheticBootloader } from './synthetic-flash.ts';

/**
 * What a CB2S plug's flash holds when it leaves the Tuya factory (bk7231-protocol.md §8): the
 * bootloader, the stock Tuya application in the app partition, the RF/MAC TLV sector and Tuya's
 * key-value storage at the top of flash. The bytes are invented; the structure is real: the app is
 * in Beken CRC blocks and about as large as a real stock app (a stock 0x11000+ dump is ~1.05 MB).
 *
 * 'blank' is a chip straight from the module line: bootloader and RF sector only.
 */
export type FlashContent = 'factory' | 'blank';

/** Tuya storage partition (libretiny beken-7231n-tuya.json): 0x1ED000 + 0x13000. */
export const TUYA_STORAGE_ADDR = 0x1ed000;
export const TUYA_STORAGE_BYTES = 0x13000;
/** Pages of the storage a configured-at-factory unit has written (keys, device id, schema). */
const TUYA_STORAGE_USED_PAGES = 6;
/** Build id of the stock app, as the build record carries it. Invented but shaped like a Tuya build. */
export const STOCK_TUYA_BUILD = 'Tuya/BK7231N/1.3.10/oem_bk7231n_plug';
/** Stored size of the stock app: 30,900 blocks = 1,050,600 bytes, like the 1.05 MB stock dump. */
export const STOCK_TUYA_APP_BLOCKS = 30_900;
/** Blocks of 0xFF padding data at the end of the app (as a real packager leaves them). */
const PAD_BLOCKS = 40;

function fillRandom(out: Uint8Array, next: () => number, from = 0, to = out.length): void {
  for (let i = from; i < to; i += 4) {
    const v = next();
    out[i] = v & 0xff;
    if (i + 1 < to) out[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < to) out[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < to) out[i + 3] = v >>> 24;
  }
}

let stockApp: Uint8Array | undefined;

/**
 * The stock Tuya app as stored at 0x11000. Every unit of a production run carries the same build
 * (same code, same default encryption key), so it is built once per process and shared.
 */
export function stockTuyaApp(): Uint8Array {
  if (stockApp) return stockApp;
  const data = new Uint8Array(STOCK_TUYA_APP_BLOCKS * BLOCK_DATA).fill(0xff);
  fillRandom(data, mulberry32U32(0x7475_7961), 0, (STOCK_TUYA_APP_BLOCKS - PAD_BLOCKS) * BLOCK_DATA);
  data.set(buildRecord(STOCK_TUYA_BUILD, data.length), 0);
  stockApp = toBlocks(data);
  return stockApp;
}

/**
 * Tuya's key-value storage of one unit: encrypted pages (random-looking, unit-specific: device id,
 * keys, Wi-Fi of the factory test) followed by erased pages.
 */
export function tuyaStorage(seed: number): Uint8Array {
  const out = new Uint8Array(TUYA_STORAGE_BYTES).fill(0xff);
  fillRandom(out, mulberry32U32(seed ^ 0x4b565354), 0, TUYA_STORAGE_USED_PAGES * 0x1000);
  return out;
}

/** Regions to load into a fresh flash, in order. */
export function factoryImages(content: FlashContent, seed: number, mac: Uint8Array): Array<{ address: number; data: Uint8Array }> {
  const base = [
    { address: BOOTLOADER_ADDR, data: syntheticBootloader(seed) },
    { address: RF_SECTOR_ADDR, data: rfSector(mac, seed) },
  ];
  if (content === 'blank') return base;
  return [...base, { address: APP_ADDR, data: stockTuyaApp() }, { address: TUYA_STORAGE_ADDR, data: tuyaStorage(seed) }];
}

const openBekenApps = new Map<string, Uint8Array>();

/**
 * An OpenBeken app as the simulator's own builder makes it (what a flasher would have written at
 * 0x11000), for virtual plugs that start out flashed: ~1 MB of code-like blocks with the build record.
 * Like the stock app, each build is made once per process and shared (callers load a copy into a
 * flash, never write to it): a bench of a thousand preflashed units builds it once.
 */
export function syntheticOpenBekenApp(version: string, variant?: string, seed = 1): Uint8Array {
  const key = `${version}\0${variant ?? ''}\0${seed}`;
  let app = openBekenApps.get(key);
  if (!app) openBekenApps.set(key, (app = buildOpenBekenApp(version, variant, seed)));
  return app;
}

function buildOpenBekenApp(version: string, variant: string | undefined, seed: number): Uint8Array {
  const blocks = 30_000;
  const data = new Uint8Array(blocks * BLOCK_DATA).fill(0xff);
  fillRandom(data, mulberry32U32(seed ^ 0x4f424b21), 0, (blocks - PAD_BLOCKS) * BLOCK_DATA);
  data.set(buildRecord(`OpenBeken/BK7231N/${version}${variant ? `/${variant}` : ''}`, data.length), 0);
  return toBlocks(data);
}
