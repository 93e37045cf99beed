import type { Clock } from '../../rig/core/clock.ts';
import type { MainsBranch, PowerQuantities } from '../mains/mains-network.ts';

/** How far back the mux remembers its relays (the meters average over at most a few seconds). */
const HISTORY_MS = 120_000;

/**
 * A reference meter shared by several slots through select relays (jig file `slots[].meter.select`):
 * the meter's current path runs through every closed relay, so it measures the sum of the selected
 * slots' plug inputs (nothing when none is closed, both when a host closes two). The relay states are
 * kept as a timeline, so a meter averaging over its update interval sees a switch mid-interval as
 * the blend it is. The energy register reads the selected branches' counters added up, so it is
 * only continuous while the selection stays the same.
 */
export class VirtualMeterMux {
  readonly #clock: Clock;
  readonly #branches = new Map<number, MainsBranch>();
  readonly #closed = new Set<number>();
  readonly #timeline: Array<{ t: number; closed: number[] }> = [{ t: 0, closed: [] }];

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#timeline[0]!.t = clock.now();
  }

  addSlot(slot: number, branch: MainsBranch): void {
    this.#branches.set(slot, branch);
  }

  setRelay(slot: number, closed: boolean): void {
    if (closed) this.#closed.add(slot);
    else this.#closed.delete(slot);
    const now = this.#clock.now();
    const entry = { t: now, closed: [...this.#closed].sort((a, b) => a - b) };
    const last = this.#timeline.at(-1)!;
    if (last.t === now) this.#timeline[this.#timeline.length - 1] = entry;
    else this.#timeline.push(entry);
    while (this.#timeline.length > 1 && this.#timeline[1]!.t <= now - HISTORY_MS) this.#timeline.shift();
  }

  /** Slots whose select relay is closed now. */
  selected(): number[] {
    return [...this.#closed].sort((a, b) => a - b);
  }

  /** The meter's measurement source (optionally at a past moment). */
  source(): (atMs?: number) => PowerQuantities {
    return (atMs) => this.#measureAt(Math.min(atMs ?? this.#clock.now(), this.#clock.now()));
  }

  #measureAt(t: number): PowerQuantities {
    let entry = this.#timeline[0]!;
    for (const e of this.#timeline) if (e.t <= t) entry = e;
    const parts = entry.closed.map((s) => this.#branches.get(s)!.measureAt('input', t));
    if (parts.length === 0) return { volts: 0, amps: 0, watts: 0, vars: 0, va: 0, pf: 0, hz: 0, wh: 0 };
    if (parts.length === 1) return parts[0]!;
    const volts = Math.max(...parts.map((p) => p.volts));
    const watts = parts.reduce((a, p) => a + p.watts, 0);
    const vars = parts.reduce((a, p) => a + p.vars, 0);
    const va = Math.hypot(watts, vars);
    return { volts, watts, vars, va, amps: volts > 0 ? va / volts : 0, pf: va > 0 ? watts / va : 0, hz: Math.max(...parts.map((p) => p.hz)), wh: parts.reduce((a, p) => a + p.wh, 0) };
  }
}
