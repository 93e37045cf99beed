import type { VirtualUartDevice } from '../serial/uart-device.ts';

/**
 * The seam between the virtual jig and a virtual plug: exactly what the jig's hardware can touch
 * on a CB2S plug (pogo pins, mains terminals, a button actuator, an LED sensor, a relay sense wire).
 * PinLevelPlug models the app at pin level; a fuller OpenBeken simulation (HTTP, BL0937) can
 * implement the same interface later.
 */
export interface PlugHardware {
  /** 3V3 from the jig reaches the module's VCC pad. */
  setSupply3v3(on: boolean): void;
  /** Level of the module's CEN pad (low holds the chip in reset). */
  setCen(high: boolean): void;
  /** Mains on the plug's input terminals (it then powers itself through its non-isolated supply). */
  mainsPresent(on: boolean): void;
  /** The button actuator: down pulls P10 to GND. */
  pressButton(down: boolean): void;
  /** The plug's relay contact is closed (P26 high with the chip powered). */
  relayClosed(): boolean;
  /** The Wi-Fi LED is lit (WifiLED_n on P8: lit while the pin is LOW). */
  ledLit(): boolean;
  /** The chip's UART1 as a virtual serial device. */
  uart(): VirtualUartDevice;
  /** Subscribe to relay / LED changes. Return an unsubscribe function. */
  onRelayChange(listener: (closed: boolean) => void): () => void;
  onLedChange(listener: (lit: boolean) => void): () => void;
}

/** What PinLevelPlug needs from the chip model (VirtualBk7231 satisfies it). */
export interface PlugChip extends VirtualUartDevice {
  powerOn(): void;
  powerOff(): void;
  setCen(high: boolean): void;
  /** 'off' | 'reset' | 'rom' | 'rom-linked' | 'app'; only 'app' runs the firmware's pin logic. */
  readonly state: string;
}

/**
 * The OpenBeken template of the CB2S plug under test (openbeken-bl0937.md §1):
 * P6 BL0937CF1, P7 BL0937CF, P8 WifiLED_n, P10 Btn;1, P24 BL0937SEL, P26 Rel;1.
 */
export const CB2S_PLUG_PINS = { cf1: 6, cf: 7, wifiLedN: 8, button: 10, sel: 24, relay: 26 } as const;
