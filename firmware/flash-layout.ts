/**
 * 2 MiB flash layout of the Tuya BK7231N / BK7231T modules (bk7231-protocol.md §8, from libretiny
 * board files and the GUI flasher; BK7231N partitions: openbeken-http.md §6). Addresses are
 * physical (CRC blocks included). The host's one copy: the flasher, the image classifier and the
 * suites take addresses from here (the simulator keeps its own, see sim/bk7231/synthetic-flash.ts).
 */
export type BekenChip = 'BK7231N' | 'BK7231T';
export const BEKEN_CHIPS: readonly BekenChip[] = ['BK7231N', 'BK7231T'];

export interface FlashLayout {
  flashSize: number;
  /** Bootloader area [0, appOffset); a QIO image starts with it. */
  appOffset: number;
  /** End of the app partition (start of the OTA download partition). */
  appEnd: number;
  /** RF calibration / MAC sector: must never be written by an image. */
  rfOffset: number;
  /** True if the chip's only UART downloader lives in the bootloader area (T): writing it can brick. */
  bootloaderIsDownloader: boolean;
}

export const SECTOR_BYTES = 0x1000;

/** A flash region [start, end). */
export interface FlashPartition {
  start: number;
  /** Exclusive. */
  end: number;
  name: string;
}

const part = (name: string, start: number, length: number): FlashPartition => ({ name, start, end: start + length });

/** BK7231N partitions (SDK BkDriverFlash.c, OpenBeken; openbeken-http.md §6). */
export const BK7231N_PARTITIONS = {
  bootloader: part('bootloader', 0x0, 0x11000),
  app: part('app', 0x11000, 0x119000),
  ota: part('OTA', 0x12a000, 0xa6000),
  rf: part('RF calibration (MAC)', 0x1d0000, 0x1000),
  /** OpenBeken's config (mainConfig_t, 3584 bytes) in the SDK's NET_PARAM sector. */
  netParam: part('NET_PARAM (OBK config)', 0x1d1000, 0x1000),
  /** EasyFlash OBK_FV: boot counts, energy total, retained channels. */
  easyFlash: part('EasyFlash (OBK_FV)', 0x1e5000, 0x8000),
} as const satisfies Record<string, FlashPartition>;

const N = BK7231N_PARTITIONS;
export const FLASH_LAYOUTS: Readonly<Record<BekenChip, FlashLayout>> = {
  BK7231N: { flashSize: 0x200000, appOffset: N.app.start, appEnd: N.app.end, rfOffset: N.rf.start, bootloaderIsDownloader: false },
  BK7231T: { flashSize: 0x200000, appOffset: 0x11000, appEnd: 0x132000, rfOffset: 0x1e0000, bootloaderIsDownloader: true },
};

/** Where the RF sector stores the Wi-Fi MAC: tag 0x11111102 at +0x1C, the 6 bytes at +0x24. */
export const RF_MAC_OFFSET = 0x24;
