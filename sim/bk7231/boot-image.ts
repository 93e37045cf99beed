import { BLOCK, BLOCK_DATA, allFF, blockData, blockValid } from './beken-blocks.ts';

/**
 * What the virtual chip finds to run after the ROM hands over (reset, link window passed): the
 * simulator's own judgement of the flash content, not the rig's classifier.
 *
 * A bootable app sits at 0x11000 in Beken CRC blocks and starts with a build record (the synthetic
 * images' stand-in for the identity real code carries inside its encryption; format in
 * firmware/synthetic.ts and below). Every block the record declares must carry its CRC, since the
 * chip fetches code through those checks: one bad block and the image does not run.
 */

export const APP_ADDR = 0x11000;
/** End of the BK7231N app partition (OTA download partition from here). */
export const APP_END = 0x12a000;
const MAGIC = 'SYNBUILD';
const RECORD_BYTES = 64;
/** BK7231N variants built without the BL0937 driver (OpenBeken obk_config.h, openbeken-bl0937.md §8.1). */
const VARIANTS_WITHOUT_BL0937 = ['tuyamcu', 'irremoteesp', 'sensors', 'battery', 'hlw8112'];

export type NoBootReason = 'no-bootloader' | 'no-app' | 'corrupt' | 'truncated' | 'foreign';

export type BootImage =
  | { kind: 'openbeken'; chip: 'BK7231N'; version: string; variant?: string; bl0937: boolean; appBytes: number }
  | { kind: 'tuya'; chip: 'BK7231N'; version: string; product?: string; appBytes: number }
  | { kind: 'none'; reason: NoBootReason; detail: string };

/** Anything that can read flash bytes (SpiFlash satisfies it). */
export interface FlashReader {
  read(address: number, length: number): Uint8Array;
}

/**
 * Build record (64 data bytes = the first two blocks of the app):
 *   [0, 8) "SYNBUILD"; [8, 12) u32 LE app data length; [12, 16) 0;
 *   [16, 64) "<vendor>/<chip>/<version>[/<variant-or-product>]", NUL-padded.
 */
export function buildRecord(buildId: string, dataLength: number): Uint8Array {
  const record = new Uint8Array(RECORD_BYTES);
  const id = new TextEncoder().encode(buildId);
  if (id.length > RECORD_BYTES - 16) throw new RangeError(`build id "${buildId}" is too long`);
  record.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(record.buffer).setUint32(8, dataLength, true);
  record.set(id, 16);
  return record;
}

/** Decide what boots from `flash` (a BK7231N's 2 MiB). */
export function identifyBootImage(flash: FlashReader): BootImage {
  const none = (reason: NoBootReason, detail: string): BootImage => ({ kind: 'none', reason, detail });
  const boot = flash.read(0, BLOCK);
  if (!blockValid(boot, 0)) return none('no-bootloader', 'no valid CRC block at 0x0: the bootloader is missing or damaged');

  const head = flash.read(APP_ADDR, 2 * BLOCK);
  if (allFF(head, 0, head.length)) return none('no-app', 'the app partition at 0x11000 is erased');
  if (!blockValid(head, 0) || !blockValid(head, BLOCK)) return none('corrupt', 'the first app blocks at 0x11000 fail their CRC');
  const record = blockData(head, 2);
  const magic = new TextDecoder().decode(record.subarray(0, 8));
  if (magic !== MAGIC) return none('foreign', 'no build record at the start of the app: not an image this simulator can run');
  const dataLength = new DataView(record.buffer, record.byteOffset).getUint32(8, true);
  const id = new TextDecoder().decode(record.subarray(16)).replace(/\0+$/, '');
  const [vendor, chip, version, extra] = id.split('/');
  if (dataLength < RECORD_BYTES || dataLength % BLOCK_DATA !== 0 || APP_ADDR + (dataLength / BLOCK_DATA) * BLOCK > APP_END) {
    return none('corrupt', `build record declares ${dataLength} data bytes, which do not fit the app partition`);
  }
  if (chip !== 'BK7231N') return none('foreign', `the image is built for ${chip ?? 'an unknown chip'} (${id}), not BK7231N`);
  if (vendor !== 'OpenBeken' && vendor !== 'Tuya') return none('foreign', `unknown firmware "${id}"`);

  const blocks = dataLength / BLOCK_DATA;
  const stored = flash.read(APP_ADDR, blocks * BLOCK);
  for (let b = 2; b < blocks; b++) {
    const at = b * BLOCK;
    if (blockValid(stored, at)) continue;
    const where = `0x${(APP_ADDR + at).toString(16)}`;
    // Erased flash from inside this block on: the image was cut short (an interrupted write).
    if (stored[at + BLOCK - 1] === 0xff && allFF(stored, at + BLOCK, stored.length)) return none('truncated', `the image ends at ${where}, ${blocks - b} of ${blocks} blocks missing`);
    return none('corrupt', `CRC block at ${where} is damaged`);
  }
  const appBytes = blocks * BLOCK;
  if (vendor === 'Tuya') return { kind: 'tuya', chip: 'BK7231N', version: version ?? '', ...(extra ? { product: extra } : {}), appBytes };
  return {
    kind: 'openbeken',
    chip: 'BK7231N',
    version: version ?? '',
    ...(extra ? { variant: extra } : {}),
    bl0937: !(extra && VARIANTS_WITHOUT_BL0937.includes(extra.toLowerCase())),
    appBytes,
  };
}
