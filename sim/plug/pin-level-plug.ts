import type { Clock } from '../../rig/core/clock.ts';
import type { VirtualUartDevice } from '../serial/uart-device.ts';
import type { PlugChip, PlugHardware } from './plug-hardware.ts';

/**
 * OpenBeken's button timing (openbeken-bl0937.md §5.1): polled every 25 ms (QuickTick), a level
 * must be stable for 75 ms, a released click toggles channel 1 once 300 ms pass without another
 * press, a hold longer than 1000 ms toggles nothing.
 */
export interface ButtonTiming {
  tickMs: number;
  debounceMs: number;
  clickWindowMs: number;
  longPressMs: number;
}

export const OPENBEKEN_BUTTON_TIMING: Readonly<ButtonTiming> = Object.freeze({
  tickMs: 25,
  debounceMs: 75,
  clickWindowMs: 300,
  longPressMs: 1000,
});

export interface PinLevelPlugOptions {
  chip: PlugChip;
  clock: Clock;
  button?: Partial<ButtonTiming>;
}

/**
 * A CB2S plug at pin level. The chip is powered by the jig's 3V3 or by the plug's own mains
 * supply. While the chip runs the app, the firmware's QuickTick polls P10 and toggles channel 1
 * (P26, the relay) on a single click, and WifiLED_n is lit (the model treats the app as connected:
 * solid LED; Wi-Fi blinking belongs to the later OpenBeken simulation). Leaving the app (power
 * loss, reset, reboot into the ROM) releases every GPIO: the relay drops and channel 1 restarts at
 * its default start value 0. Assumption: the relay coil works whenever the chip is powered.
 */
export class PinLevelPlug implements PlugHardware {
  readonly chip: PlugChip;
  readonly clock: Clock;
  readonly timing: Readonly<ButtonTiming>;
  #supply3v3 = false;
  #mains = false;
  #buttonDown = false;
  #app = false;
  #channel1 = false;
  #relay = false;
  #led = false;
  #cancelTick: (() => void) | undefined;
  // Button state machine (the firmware's view, after debouncing).
  #rawSince = 0;
  #rawLevel = false;
  #pressed = false;
  #pressedAt = 0;
  #long = false;
  #clicks = 0;
  #releasedAt = 0;
  readonly #relayListeners = new Set<(closed: boolean) => void>();
  readonly #ledListeners = new Set<(lit: boolean) => void>();

  constructor(options: PinLevelPlugOptions) {
    this.chip = options.chip;
    this.clock = options.clock;
    this.timing = { ...OPENBEKEN_BUTTON_TIMING, ...options.button };
  }

  setSupply3v3(on: boolean): void {
    this.#supply3v3 = on;
    this.#updatePower();
  }

  mainsPresent(on: boolean): void {
    this.#mains = on;
    this.#updatePower();
  }

  setCen(high: boolean): void {
    this.chip.setCen(high);
    this.#poll();
  }

  /** The firmware samples P10 on its next QuickTick, like the real polling loop. */
  pressButton(down: boolean): void {
    this.#buttonDown = down;
  }

  relayClosed(): boolean {
    return this.#relay;
  }

  ledLit(): boolean {
    return this.#led;
  }

  /** The chip is powered (by 3V3 or mains). */
  powered(): boolean {
    return this.#supply3v3 || this.#mains;
  }

  /** The firmware's channel 1 (what OpenBeken reports as POWER). */
  channel1(): boolean {
    return this.#channel1;
  }

  uart(): VirtualUartDevice {
    return this.chip;
  }

  onRelayChange(listener: (closed: boolean) => void): () => void {
    this.#relayListeners.add(listener);
    return () => this.#relayListeners.delete(listener);
  }

  onLedChange(listener: (lit: boolean) => void): () => void {
    this.#ledListeners.add(listener);
    return () => this.#ledListeners.delete(listener);
  }

  /** Stop the plug's timer (power it down); the simulation can end. */
  dispose(): void {
    this.#supply3v3 = false;
    this.#mains = false;
    this.#updatePower();
  }

  #updatePower(): void {
    if (this.powered()) {
      this.chip.powerOn();
      this.#startTicking();
    } else {
      this.chip.powerOff();
      this.#cancelTick?.();
      this.#cancelTick = undefined;
    }
    this.#poll();
  }

  #startTicking(): void {
    if (this.#cancelTick) return;
    const tick = (): void => {
      this.#cancelTick = this.clock.at(this.clock.now() + this.timing.tickMs, () => {
        this.#cancelTick = undefined;
        if (!this.powered()) return;
        this.#poll();
        this.#quickTick();
        tick();
      });
    };
    tick();
  }

  /** Follow the chip: entering or leaving the app changes what drives P8 and P26. */
  #poll(): void {
    const app = this.powered() && this.chip.state === 'app';
    if (app !== this.#app) {
      this.#app = app;
      this.#channel1 = false; // start value 0 on boot; GPIOs released when not running
      this.#pressed = false;
      this.#clicks = 0;
      this.#rawLevel = this.#buttonDown;
      this.#rawSince = this.clock.now();
    }
    this.#set('led', app);
    this.#set('relay', app && this.#channel1);
  }

  /** One 25 ms QuickTick of the firmware: debounce P10 and run the click state machine. */
  #quickTick(): void {
    if (!this.#app) return;
    const now = this.clock.now();
    const t = this.timing;
    if (this.#buttonDown !== this.#rawLevel) {
      this.#rawLevel = this.#buttonDown;
      this.#rawSince = now;
    }
    const stable = now - this.#rawSince >= t.debounceMs;
    if (stable && this.#rawLevel !== this.#pressed) {
      this.#pressed = this.#rawLevel;
      if (this.#pressed) {
        this.#pressedAt = now;
        this.#long = false;
      } else if (!this.#long) {
        this.#clicks++;
        this.#releasedAt = now;
      }
    }
    if (this.#pressed && !this.#long && now - this.#pressedAt >= t.longPressMs) {
      this.#long = true; // hold: OnHoldStart only, no toggle
      this.#clicks = 0;
    }
    if (!this.#pressed && this.#clicks > 0 && now - this.#releasedAt > t.clickWindowMs) {
      if (this.#clicks === 1) this.#channel1 = !this.#channel1; // Button_OnShortClick toggles channel 1
      this.#clicks = 0;
    }
    this.#set('relay', this.#app && this.#channel1);
  }

  #set(what: 'led' | 'relay', value: boolean): void {
    if (what === 'led') {
      if (value === this.#led) return;
      this.#led = value;
      for (const fn of this.#ledListeners) fn(value);
    } else {
      if (value === this.#relay) return;
      this.#relay = value;
      for (const fn of this.#relayListeners) fn(value);
    }
  }
}
