/** Hex helpers for traces, errors and tests. */
export function hex(bytes: Uint8Array, sep = ' '): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(sep);
}

/** Parse "01 E0 FC 01 00" / "01e0fc0100" into bytes. */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/0x/gi, '').replace(/[^0-9a-fA-F]/g, '');
  if (clean.length % 2 !== 0) throw new TypeError(`odd number of hex digits in "${text}"`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}
