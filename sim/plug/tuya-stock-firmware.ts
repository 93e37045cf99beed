import type { Clock } from '../../rig/core/clock.ts';
import type { ObkGpio } from './obk/contracts.ts';

/**
 * The stock Tuya application of a factory-fresh CB2S plug, reduced to what a test station can
 * observe without the Tuya cloud: it has never been paired, so it sits in EZ pairing mode with the
 * network LED (P8, active low) blinking fast (250 ms on, 250 ms off), offers no HTTP API and joins
 * no network; the button (P10, active low) toggles the relay (P26) on every press, as Tuya plugs do
 * (on press, after a short debounce). Holding the button restarts pairing, which changes nothing
 * visible here. Pins are the stock config's (openbeken-bl0937.md §1.1 cross-check).
 */
export const TUYA_PINS = { relay: 26, button: 10, ledN: 8 } as const;
export const TUYA_PAIRING_BLINK_MS = 250;
const POLL_MS = 10;
const DEBOUNCE_MS = 50;

export class TuyaStockFirmware {
  readonly #clock: Clock;
  readonly #gpio: ObkGpio;
  #cancel: (() => void) | undefined;
  #relay = false;
  #led = false;
  #nextBlink = 0;
  #pressed = false;
  #rawLow = false;
  #rawSince = 0;

  constructor(clock: Clock, gpio: ObkGpio) {
    this.#clock = clock;
    this.#gpio = gpio;
  }

  start(): void {
    const now = this.#clock.now();
    // The relay restores "off" at power-on (Tuya's default relay_status 0).
    this.#gpio.write(TUYA_PINS.relay, false);
    this.#gpio.write(TUYA_PINS.ledN, true);
    this.#nextBlink = now + TUYA_PAIRING_BLINK_MS;
    this.#rawLow = !this.#gpio.read(TUYA_PINS.button);
    this.#pressed = this.#rawLow;
    this.#rawSince = now;
    this.#schedule(now + POLL_MS);
  }

  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }

  #schedule(at: number): void {
    this.#cancel = this.#clock.at(at, () => this.#tick(at));
  }

  #tick(now: number): void {
    while (now >= this.#nextBlink) {
      this.#led = !this.#led;
      this.#gpio.write(TUYA_PINS.ledN, !this.#led);
      this.#nextBlink += TUYA_PAIRING_BLINK_MS;
    }
    const low = !this.#gpio.read(TUYA_PINS.button);
    if (low !== this.#rawLow) {
      this.#rawLow = low;
      this.#rawSince = now;
    }
    if (this.#rawLow !== this.#pressed && now - this.#rawSince >= DEBOUNCE_MS) {
      this.#pressed = this.#rawLow;
      if (this.#pressed) {
        this.#relay = !this.#relay;
        this.#gpio.write(TUYA_PINS.relay, this.#relay);
      }
    }
    this.#schedule(now + POLL_MS);
  }
}
