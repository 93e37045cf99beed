/** MAC address formats the firmware prints (openbeken-http.md §6). */

/** `aa:bb:cc:dd:ee:ff` (HAL_GetMACStr: /api/info mac, STATUS 5 Mac). */
export function formatMacLower(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** `AA:BB:CC:DD:EE:FF` (the HTML footer, a BSSID). */
export function formatMacUpper(mac: Uint8Array): string {
  return formatMacLower(mac).toUpperCase();
}

/** The SoftAP MAC: the STA MAC with the LSB of byte 5 flipped (C14). */
export function apMac(staMac: Uint8Array): Uint8Array {
  const ap = Uint8Array.from(staMac);
  ap[5] = (ap[5] ?? 0) ^ 1;
  return ap;
}
