import { rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Clock } from '../rig/core/clock.ts';

/** A unit the feed seated in a slot: its place in the queue (0-based) and what to call it. */
export interface FedUnit {
  index: number;
  label: string;
}

/**
 * Continuous feeding: whoever puts units into the station's slots (an operator, a handler). Without a
 * feed a run tests the one unit in each slot; with one, each slot asks for its next unit as soon as
 * its last one ended in its safe state (TestStand's parallel model: a free socket takes the next
 * unit, it does not wait for the others' batch to end).
 */
export interface UnitFeed {
  /**
   * Slot `slot` is free (mains, loads, UART and 3V3 off): take out what it holds and seat the next
   * unit. Resolves once that unit is seated, undefined when no unit is left (the slot stays empty).
   * The handling takes its time on the station's clock.
   */
  next(slot: number, signal: AbortSignal): Promise<FedUnit | undefined>;
}

export interface UnitQueueOptions {
  clock: Clock;
  /** The units in the queue, in order: each its index (what `seat` is told). */
  units: readonly number[];
  /**
   * Handling time per unit: unload the last one (if any), seat the next, close the lid. Charged
   * before every unit, the first included, the same whatever the number of slots (a handler per
   * slot: slots do not wait for each other's handling).
   */
  handlingMs: number;
  /** Seat unit `index` in slot `slot` (the jig's handler; the virtual jig's loadUnit). */
  seat: (slot: number, index: number) => Promise<void>;
}

/**
 * One queue of units for every slot, first come first served: the slot that frees first takes the
 * next unit. Which slot took which unit is kept (`placed`), so the same units can be run elsewhere
 * on the same slots' wiring.
 */
export class UnitQueue implements UnitFeed {
  readonly #o: UnitQueueOptions;
  #taken = 0;
  /** Unit index -> the slot it was seated in, in the order they were taken. */
  readonly placed = new Map<number, number>();
  /** The clock time the last unit was taken from the queue (undefined while units are left). */
  emptiedAt: number | undefined;

  constructor(o: UnitQueueOptions) {
    if (!o.units.every((u) => Number.isInteger(u) && u >= 0)) throw new RangeError(`unit queue: unit indices must be whole numbers >= 0`);
    if (!(o.handlingMs >= 0)) throw new RangeError(`unit queue: handlingMs must be >= 0, not ${o.handlingMs}`);
    this.#o = o;
  }

  async next(slot: number, signal: AbortSignal): Promise<FedUnit | undefined> {
    if (signal.aborted || this.#taken >= this.#o.units.length) return undefined;
    // Taken when the slot asks, before the handling: the queue goes to the slots in the order they freed.
    const index = this.#o.units[this.#taken++]!;
    this.placed.set(index, slot);
    if (this.#taken === this.#o.units.length) this.emptiedAt = this.#o.clock.now();
    await this.#o.clock.sleep(this.#o.handlingMs, signal);
    await this.#o.seat(slot, index);
    return { index, label: `unit ${index + 1}` };
  }
}

/**
 * A fed unit's files once it ended: `slot-N.json` / `slot-N.tap` renamed to `slot-N.unit-K.json` /
 * `.tap` (K: its place in the queue, from 1), so the slot's next unit writes its own and none is
 * overwritten. Returns the new paths (a file the unit did not write stays '').
 */
export async function keepFedUnitFiles(paths: { tap: string; record: string }, slot: number, unit: FedUnit): Promise<{ tap: string; record: string }> {
  const moved = async (path: string, ext: string): Promise<string> => {
    if (!path) return '';
    const to = join(dirname(path), `slot-${slot}.unit-${unit.index + 1}.${ext}`);
    await rename(path, to);
    return to;
  };
  return { tap: await moved(paths.tap, 'tap'), record: await moved(paths.record, 'json') };
}
