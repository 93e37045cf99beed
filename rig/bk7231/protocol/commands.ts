/**
 * Command codes of the Beken UART download protocol (BK7231N ROM / BK7231T bootloader).
 * Short-form and long-form codes overlap (0x0E, 0x0F); only the frame form tells them apart.
 */
// Written twice on purpose (host; the chip's are in sim/bk7231/rom-replies.ts); each side is tested against the reference's literal traces.
export const ShortCommand = {
  LinkCheck: 0x00,
  WriteReg: 0x01,
  ReadReg: 0x03,
  Reboot: 0x0e,
  SetBaudRate: 0x0f,
  CheckCrc: 0x10,
  ReadBootVersion: 0x11,
} as const;
export type ShortCommand = (typeof ShortCommand)[keyof typeof ShortCommand];

export const LongCommand = {
  FlashWrite: 0x06,
  FlashWrite4K: 0x07,
  FlashRead4K: 0x09,
  FlashReadSR: 0x0c,
  FlashWriteSR: 0x0d,
  FlashGetMID: 0x0e,
  FlashErase: 0x0f,
} as const;
export type LongCommand = (typeof LongCommand)[keyof typeof LongCommand];

/** The LinkCheck reply carries code cmd+1; every other reply echoes the command code. */
export const LINK_CHECK_REPLY_CODE = 0x01;

/** FlashErase size opcodes are the SPI NOR erase opcodes themselves. */
export const EraseOpcode = {
  Sector4K: 0x20,
  Block32K: 0x52,
  Block64K: 0xd8,
} as const;
export type EraseOpcode = (typeof EraseOpcode)[keyof typeof EraseOpcode];

export const ERASE_SIZE: Record<EraseOpcode, number> = {
  [EraseOpcode.Sector4K]: 0x1000,
  [EraseOpcode.Block32K]: 0x8000,
  [EraseOpcode.Block64K]: 0x10000,
};

/** SPI NOR opcodes passed through FlashReadSR / FlashWriteSR / FlashGetMID. */
export const SpiOpcode = {
  WriteSR: 0x01,
  ReadSR1: 0x05,
  ReadSR3: 0x15,
  ReadSR2: 0x35,
  ReadJedecId: 0x9f,
} as const;

/** Argument byte that makes Reboot actually reset (other values are echoed by some bootloaders). */
export const REBOOT_MAGIC = 0xa5;

export const SECTOR_SIZE = 0x1000;
export const HALF_BLOCK_SIZE = 0x8000;
export const BLOCK_SIZE = 0x10000;
/** FlashWrite reports the written count in one byte, so 255 is the largest unambiguous chunk. */
export const FLASH_WRITE_MAX = 255;

/** Status byte of long replies (Beken bootloader sources). */
export const FLASH_STATUS_NAMES: Record<number, string> = {
  0: 'OK',
  1: 'FLASH_STATUS_BUSY',
  2: 'SPI_OP_T_OUT',
  3: 'FLASH_OP_T_OUT',
  4: 'PACK_LEN_ERROR',
  5: 'PACK_PAYLOAD_LACK',
  6: 'PARAM_ERROR',
  7: 'UNKNOW_CMD',
  8: 'INTERNAL_ERR',
  9: 'SPI_FLASH_WRITE_ERR',
  10: 'OPERATE_PROTECTED_AREA',
};

export function flashStatusName(status: number): string {
  return FLASH_STATUS_NAMES[status] ?? `status ${status}`;
}
