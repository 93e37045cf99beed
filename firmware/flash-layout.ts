/**
 * 2 MiB flash layout of the Tuya BK7231N / BK7231T modules (bk7231-protocol.md §8, from libretiny
 * board files and the GUI flasher). Addresses are physical (CRC blocks included).
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

export const FLASH_LAYOUTS: Readonly<Record<BekenChip, FlashLayout>> = {
  BK7231N: { flashSize: 0x200000, appOffset: 0x11000, appEnd: 0x12a000, rfOffset: 0x1d0000, bootloaderIsDownloader: false },
  BK7231T: { flashSize: 0x200000, appOffset: 0x11000, appEnd: 0x132000, rfOffset: 0x1e0000, bootloaderIsDownloader: true },
};
