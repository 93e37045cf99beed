/**
 * Number formatting as OpenBeken prints it on BK7231N (openbeken-http.md §5.6, C2): every printf goes
 * through OpenBeken's nanoprintf, which converts a `%f` argument to float32 and then TRUNCATES the exact
 * decimal expansion of that float32 after N digits (no rounding). NaN prints `nan`, infinities `inf`,
 * magnitudes >= 2^64 `oor`, and -0 prints without a sign. Integers (`%d`, `%ld`) are 32-bit signed.
 */

const TWO_POW_64 = 2 ** 64;

/** `%.<decimals>f` of a float32 (decimals >= 1; `%f` is 6). */
export function npfFixed(value: number, decimals = 6): string {
  if (!Number.isInteger(decimals) || decimals < 1 || decimals > 20) {
    throw new RangeError(`npfFixed: decimals must be 1..20, got ${decimals}`);
  }
  const f = Math.fround(value);
  if (Number.isNaN(f)) return 'nan';
  const negative = f < 0;
  const magnitude = Math.abs(f);
  if (magnitude === Infinity) return negative ? '-inf' : 'inf';
  if (magnitude >= TWO_POW_64) return 'oor';
  // floor(magnitude * 10^decimals) computed exactly from the float's binary fraction.
  const { mantissa, exponent } = decompose(magnitude);
  const scale = 10n ** BigInt(decimals);
  const scaled = exponent >= 0 ? (mantissa << BigInt(exponent)) * scale : (mantissa * scale) >> BigInt(-exponent);
  const intPart = scaled / scale;
  const fracPart = (scaled % scale).toString().padStart(decimals, '0');
  // -0 and values that truncate to zero keep the sign only when the float itself is negative non-zero.
  const sign = negative && magnitude !== 0 ? '-' : '';
  return `${sign}${intPart}.${fracPart}`;
}

/** A finite non-negative double as mantissa * 2^exponent with an integer mantissa (exact). */
function decompose(x: number): { mantissa: bigint; exponent: number } {
  if (x === 0) return { mantissa: 0n, exponent: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  const fraction = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (biased === 0) return { mantissa: fraction, exponent: -1074 };
  return { mantissa: fraction | (1n << 52n), exponent: biased - 1075 };
}

/** `%d`/`%i`/`%ld` of a 32-bit value (wraps like the C int on BK7231N). */
export function npfInt32(value: number): string {
  return String(value | 0);
}
