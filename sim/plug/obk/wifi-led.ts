/**
 * The Wi-Fi LED pattern of OpenBeken's QuickTick (openbeken-http.md §3, req 35): in open-AP mode the
 * LED toggles whenever more than 250 ms accumulated (every ~275 ms on 25 ms ticks), connected (got IP)
 * it is solid on, otherwise (booting, connecting, disconnected) it toggles after more than 500 ms
 * (~525 ms). "On" is a logical level: WifiLED_n drives the pin LOW for on. MQTT is not shown; in safe
 * mode the quick tick never runs, so nothing is driven at all.
 */
export type WifiLedMode = 'ap' | 'connected' | 'connecting';

const FAST_MS = 250;
const SLOW_MS = 500;

export class WifiLedBlinker {
  #elapsed = 0;
  #on = false;

  /** One quick tick; returns the logical LED state to drive, or undefined when nothing is written. */
  tick(mode: WifiLedMode, msSinceLast: number): boolean | undefined {
    if (mode === 'connected') return true;
    this.#elapsed += msSinceLast;
    if (this.#elapsed > (mode === 'ap' ? FAST_MS : SLOW_MS)) {
      this.#on = !this.#on;
      this.#elapsed = 0;
      return this.#on;
    }
    return undefined;
  }
}
