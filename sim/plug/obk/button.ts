/**
 * OpenBeken's button state machine (PIN_Input_Handler, openbeken-http.md §2, req 34), fed one sample
 * per quick tick (25 ms):
 * - debounce: a new level must be seen for >= 75 ms of samples (3 samples) before it counts, so a press
 *   is recognised 50-75 ms after the edge and pulses under ~50 ms are never seen;
 * - press recognised -> onPress (flag 6 toggles here); release -> onRelease;
 * - no new press for more than `shortMs` (300) after a release -> single click (toggles without flag 6),
 *   or 2 clicks -> double click, 3..5 -> multi-click events;
 * - a new press that is held `shortMs` or longer drops the whole sequence;
 * - held more than `longMs` (1000) -> onHoldStart, then onHold each time more than `repeatMs` (500)
 *   accumulated (holdRepeatTicks is not reset between holds, as in the firmware).
 * The elapsed counters only advance while the machine is past state 0, and the comparisons are `>`
 * on whole ticks: 325 ms after release for a click, 1025 ms for the hold, 525 ms per repeat.
 */
export interface ButtonEvents {
  onPress(): void;
  onRelease(): void;
  onClick(): void;
  onDoubleClick(): void;
  onMultiClick(count: 3 | 4 | 5): void;
  onHoldStart(): void;
  onHold(): void;
}

export interface ButtonTimes {
  shortMs: number;
  longMs: number;
  repeatMs: number;
}

const DEBOUNCE_MS = 75;

export class ObkButton {
  readonly #events: ButtonEvents;
  readonly #activeLevel: boolean;
  #level: boolean;
  #debounce = 0;
  #state: 0 | 1 | 2 | 3 | 5 = 0;
  #ticks = 0;
  #repeat = 0;
  #holdRepeat = 0;

  /** `initialLevel` is the pin level sampled at init; `activeHigh` false for Btn (LOW = pressed). */
  constructor(events: ButtonEvents, initialLevel: boolean, activeHigh = false) {
    this.#events = events;
    this.#level = initialLevel;
    this.#activeLevel = activeHigh;
  }

  /** One quick-tick sample of the pin, `msSinceLast` after the previous one. */
  sample(pinHigh: boolean, msSinceLast: number, times: ButtonTimes): void {
    if (this.#state > 0) this.#ticks += msSinceLast;
    if (pinHigh !== this.#level) {
      this.#debounce += msSinceLast;
      if (this.#debounce >= DEBOUNCE_MS) {
        this.#level = pinHigh;
        this.#debounce = 0;
      }
    } else this.#debounce = 0;
    const pressed = this.#level === this.#activeLevel;
    const e = this.#events;
    switch (this.#state) {
      case 0:
        if (pressed) {
          e.onPress();
          this.#ticks = 0;
          this.#repeat = 1;
          this.#state = 1;
        }
        break;
      case 1:
        if (!pressed) {
          e.onRelease();
          this.#ticks = 0;
          this.#state = 2;
        } else if (this.#ticks > times.longMs) {
          e.onHoldStart();
          this.#state = 5;
        }
        break;
      case 2:
        if (pressed) {
          this.#repeat++;
          this.#ticks = 0;
          this.#state = 3;
        } else if (this.#ticks > times.shortMs) {
          if (this.#repeat === 1) e.onClick();
          else if (this.#repeat === 2) e.onDoubleClick();
          else if (this.#repeat >= 3 && this.#repeat <= 5) e.onMultiClick(this.#repeat as 3 | 4 | 5);
          this.#state = 0;
        }
        break;
      case 3:
        if (!pressed) {
          e.onRelease();
          if (this.#ticks < times.shortMs) {
            this.#ticks = 0;
            this.#state = 2;
          } else this.#state = 0;
        }
        break;
      case 5:
        if (pressed) {
          this.#holdRepeat += msSinceLast;
          if (this.#holdRepeat > times.repeatMs) {
            e.onHold();
            this.#holdRepeat = 0;
          }
        } else {
          e.onRelease();
          this.#state = 0;
        }
        break;
    }
  }
}
