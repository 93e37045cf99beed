/**
 * PZEM-004T v3.0 register map (instruments.md §B1). Input registers: 10 from 0x0000; 32-bit
 * quantities LOW WORD FIRST. Holding registers: 0x0001 power-alarm threshold (W), 0x0002 slave address.
 */
// Written twice on purpose (host; the device's is sim/pzem/pzem-registers.ts); each side is tested against the reference's literal traces.
export const PZEM_INPUT_REGISTER_COUNT = 10;
export const PZEM_REG_ALARM_THRESHOLD = 0x0001;
export const PZEM_REG_ADDRESS = 0x0002;
export const PZEM_GENERAL_ADDRESS = 0xf8;
export const PZEM_FN_RESET_ENERGY = 0x42;

export interface PzemRegisterValues {
  volts: number;
  amps: number;
  watts: number;
  wh: number;
  hz: number;
  pf: number;
  alarm: boolean;
}

/** Scale a raw input-register image: 0.1 V, 0.001 A, 0.1 W, 1 Wh, 0.1 Hz, 0.01 PF, alarm 0xFFFF. */
export function decodePzemRegisters(r: readonly number[]): PzemRegisterValues {
  if (r.length < PZEM_INPUT_REGISTER_COUNT) throw new RangeError(`need ${PZEM_INPUT_REGISTER_COUNT} registers, got ${r.length}`);
  const u32 = (lo: number, hi: number): number => lo + hi * 0x10000;
  return {
    volts: r[0]! / 10,
    amps: u32(r[1]!, r[2]!) / 1000,
    watts: u32(r[3]!, r[4]!) / 10,
    wh: u32(r[5]!, r[6]!),
    hz: r[7]! / 10,
    pf: r[8]! / 100,
    alarm: r[9] === 0xffff,
  };
}
