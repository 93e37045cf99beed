import type { Measurement } from '../../rig/meter/reference-meter.ts';

/**
 * The PZEM-004T v3.0 input-register image (instruments.md §B1): 10 registers from 0x0000.
 * 32-bit quantities are sent LOW WORD FIRST, each word big-endian.
 */
// Written twice on purpose (device; the host's is rig/meter/pzem-registers.ts); each side is tested against the reference's literal traces.
export const PZEM_INPUT_REGISTER_COUNT = 10;
export const PZEM_ALARM_ON = 0xffff;

export interface PzemValues extends Measurement {
  alarm: boolean;
}

/** Quantise like the device: 0.1 V, 0.001 A, 0.1 W, 1 Wh (counter, truncated), 0.1 Hz, 0.01 PF. */
export function encodePzemRegisters(v: PzemValues): number[] {
  const u16 = (x: number): number => Math.min(0xffff, Math.max(0, Math.round(x)));
  const u32 = (x: number): number => Math.min(0xffffffff, Math.max(0, x));
  const amps = u32(Math.round(v.amps * 1000));
  const watts = u32(Math.round(v.watts * 10));
  const wh = u32(Math.floor(v.wh));
  return [
    u16(v.volts * 10),
    amps & 0xffff, amps >>> 16,
    watts & 0xffff, watts >>> 16,
    wh & 0xffff, wh >>> 16,
    u16(v.hz * 10),
    u16(v.pf * 100),
    v.alarm ? PZEM_ALARM_ON : 0,
  ];
}
