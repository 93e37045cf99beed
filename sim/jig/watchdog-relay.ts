import type { Clock } from '../../rig/core/clock.ts';

/**
 * The charge-pump watchdog relay in series with the mains contactor coils of one I/O board
 * (fixtures/jigs/README.md, "Heartbeat watchdog"). The heartbeat pin is AC-coupled into a rectifier
 * and reservoir capacitor that drives the relay's transistor: only edges pump charge, so a pin held
 * at either level (host dead, sketch hung, board reset) lets the reservoir discharge and the relay
 * drop. Modelled as: pulls in after PULL_IN_EDGES edges, each within HOLD_MS of the previous one;
 * drops HOLD_MS after the last edge. It is not forgiving: a single edge never closes it.
 */
export const WATCHDOG_HOLD_MS = 300;
export const WATCHDOG_PULL_IN_EDGES = 2;

export class WatchdogRelay {
  readonly #clock: Clock;
  readonly #listeners = new Set<(closed: boolean) => void>();
  #closed = false;
  #edges = 0;
  #lastLevel: boolean | undefined;
  #cancelDrop: (() => void) | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  closed(): boolean {
    return this.#closed;
  }

  onChange(fn: (closed: boolean) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** The heartbeat pin's driven level (undefined: the board does not drive it, e.g. during a reset). */
  pinLevel(level: boolean | undefined): void {
    const prev = this.#lastLevel;
    this.#lastLevel = level;
    // A pin that stops being driven floats to the pull-down: at most one last edge, never a pulse train.
    if (level === undefined || prev === undefined || level === prev) return;
    this.#edges++;
    this.#cancelDrop?.();
    this.#cancelDrop = this.#clock.at(this.#clock.now() + WATCHDOG_HOLD_MS, () => {
      this.#cancelDrop = undefined;
      this.#edges = 0;
      this.#set(false);
    });
    if (this.#edges >= WATCHDOG_PULL_IN_EDGES) this.#set(true);
  }

  /** Stop the drop timer (the jig is powered down). */
  dispose(): void {
    this.#cancelDrop?.();
    this.#cancelDrop = undefined;
    this.#edges = 0;
    this.#set(false);
  }

  #set(closed: boolean): void {
    if (closed === this.#closed) return;
    this.#closed = closed;
    for (const fn of this.#listeners) fn(closed);
  }
}
