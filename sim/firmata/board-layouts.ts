import { PIN_MODE } from './firmata-protocol.ts';

/**
 * Pin maps of the boards StandardFirmata runs on, as its Boards.h defines them. Pins 0/1 are
 * the USB serial link and offer no modes; every other pin is digital.
 */
export interface FirmataBoardLayout {
  readonly name: 'uno' | 'mega2560';
  readonly totalPins: number;
  /** analogPins[channel] = pin number (A0 is channel 0). */
  readonly analogPins: readonly number[];
  readonly pwmPins: ReadonlySet<number>;
}

function range(from: number, toExclusive: number): number[] {
  return Array.from({ length: toExclusive - from }, (_, i) => from + i);
}

export const UNO_LAYOUT: FirmataBoardLayout = {
  name: 'uno',
  totalPins: 20,
  analogPins: range(14, 20),
  pwmPins: new Set([3, 5, 6, 9, 10, 11]),
};

export const MEGA2560_LAYOUT: FirmataBoardLayout = {
  name: 'mega2560',
  totalPins: 70,
  analogPins: range(54, 70),
  pwmPins: new Set([...range(2, 14), 44, 45, 46]),
};

export const BOARD_LAYOUTS = { uno: UNO_LAYOUT, mega2560: MEGA2560_LAYOUT } as const;
export type FirmataLayoutName = keyof typeof BOARD_LAYOUTS;

export function isDigitalPin(layout: FirmataBoardLayout, pin: number): boolean {
  return pin >= 2 && pin < layout.totalPins;
}

/** Analog channel of a pin, or undefined. */
export function analogChannelOf(layout: FirmataBoardLayout, pin: number): number | undefined {
  const ch = layout.analogPins.indexOf(pin);
  return ch < 0 ? undefined : ch;
}

/** Modes (with resolution bits) StandardFirmata advertises for a pin, in its CAPABILITY_RESPONSE order. */
export function pinCapabilities(layout: FirmataBoardLayout, pin: number): Array<[mode: number, bits: number]> {
  const caps: Array<[number, number]> = [];
  if (isDigitalPin(layout, pin)) caps.push([PIN_MODE.INPUT, 1], [PIN_MODE.PULLUP, 1], [PIN_MODE.OUTPUT, 1]);
  if (analogChannelOf(layout, pin) !== undefined) caps.push([PIN_MODE.ANALOG, 10]);
  if (layout.pwmPins.has(pin)) caps.push([PIN_MODE.PWM, 8]);
  return caps;
}
