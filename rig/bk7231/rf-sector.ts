import { BK7231N_PARTITIONS, RF_MAC_OFFSET } from '../../firmware/flash-layout.ts';

/** The RF calibration TLV sector (BK7231N: 0x1D0000) holds the Wi-Fi MAC. */
export const RF_SECTOR_ADDRESS = BK7231N_PARTITIONS.rf.start;
const TLV_MAGIC = [0x54, 0x4c, 0x56, 0x00]; // "TLV\0"
/** Tag 0x11111102, length 6, at offset 0x1C; the MAC follows at 0x24. */
const MAC_TAG = [0x02, 0x11, 0x11, 0x11, 0x06, 0x00, 0x00, 0x00];
const MAC_TAG_OFFSET = 0x1c;
const MAC_OFFSET = RF_MAC_OFFSET;

/** MAC as "aa:bb:cc:dd:ee:ff", or null when the sector has no TLV header or no MAC entry there. */
export function macFromRfSector(sector: Uint8Array): string | null {
  if (sector.length < MAC_OFFSET + 6) return null;
  if (!TLV_MAGIC.every((b, i) => sector[i] === b)) return null;
  if (!MAC_TAG.every((b, i) => sector[MAC_TAG_OFFSET + i] === b)) return null;
  return Array.from(sector.subarray(MAC_OFFSET, MAC_OFFSET + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}
