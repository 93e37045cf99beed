import type { Clock } from '../rig/core/clock.ts';
import type { InterlockOutput, InterlockOutputs } from '../rig/jig/mains-interlock.ts';
import type { LoadSpec } from '../rig/jig/jig-config.ts';
import { IEC_60725_REFERENCE, type FeedImpedance, type MainsFeed } from '../rig/jig/mains-feeds.ts';
import type { SupplyWatch } from '../suites/metrology/sample-windows.ts';

/**
 * Every slot of a jig hangs on one mains feed (the jig file's `mains.feeds`, default one for all): a
 * load switched in one slot moves the voltage every other slot on that feed sees, through the feed's
 * impedance. Each slot only keeps its own metering windows clear of its own switches; this log is
 * where every slot's load and mains relay writes are published, so a window that another slot's
 * switch on the same feed fell in (it mixes two mains levels) is not kept either. Slots on other
 * feeds (isolated: a transformer each) do not see it.
 *
 * A switch counts when the voltage step it can cause reaches STEP_PCT, estimated from the load's
 * rating and its feed's impedance (IEC 60725's reference impedance, 0.4 Ω + j0.25 Ω at 50 Hz, unless
 * the jig file states another): ΔV/V ≈ (R·P + X·Q) / V². Smaller steps are left to the budget.
 */
export class SupplyActivity {
  readonly #clock: Clock;
  readonly #volts: number;
  /** Each slot's feed (by name) and the feeds' impedances; a slot not listed is on the default feed. */
  readonly #feedOf = new Map<number, string>();
  readonly #z = new Map<string, Readonly<FeedImpedance>>();
  readonly #defaultZ: Readonly<FeedImpedance>;
  /** Switch intervals [from, to] (to = Infinity until the board confirmed the write) with their step, percent. */
  readonly #switches: Array<{ slot: number; feed: string; output: string; from: number; to: number; stepPct: number }> = [];
  /** Each slot's window run in progress and when it is expected to end (clock ms). */
  readonly #runs = new Map<number, number>();
  /** Per slot: model time its switches waited for others' runs, and windows it dropped for others' switches. */
  readonly #stats = new Map<number, SupplySlotStats>();

  /**
   * `feeds`: the jig's mains feeds (mainsFeeds(jig)); without them every slot is on one feed of
   * `impedance` (default IEC 60725's reference).
   */
  constructor(o: { clock: Clock; mainsVolts: number; impedance?: FeedImpedance; feeds?: readonly MainsFeed[] }) {
    this.#clock = o.clock;
    this.#volts = o.mainsVolts;
    this.#defaultZ = o.impedance ?? IEC_60725_REFERENCE;
    for (const f of o.feeds ?? []) {
      this.#z.set(f.name, f.impedance);
      for (const id of f.slots) this.#feedOf.set(id, f.name);
    }
  }

  /** The feed `slot` hangs on. */
  #feed(slot: number): string {
    return this.#feedOf.get(slot) ?? '';
  }

  /** Estimated relative voltage step of switching a load of this rating on `slot`'s feed (default: the default feed), percent. */
  stepPct(load: Pick<LoadSpec, 'watts' | 'pf'>, slot?: number): number {
    const z = (slot !== undefined ? this.#z.get(this.#feed(slot)) : undefined) ?? this.#defaultZ;
    const q = (load.watts / load.pf) * Math.sqrt(Math.max(0, 1 - load.pf ** 2));
    return (100 * (z.ohms * load.watts + z.xOhms * q)) / this.#volts ** 2;
  }

  /** A write to one of `slot`'s outputs is being issued; call the returned function once it was confirmed (or failed). */
  begin(slot: number, output: string, stepPct: number): () => void {
    const entry = { slot, feed: this.#feed(slot), output, from: this.#clock.now(), to: Infinity, stepPct };
    this.#switches.push(entry);
    this.#prune();
    return () => {
      entry.to = this.#clock.now() + RELAY_OPERATE_MS;
    };
  }

  /**
   * The outputs of one slot's interlock, publishing every load write (and every mains write, with
   * the loads that were on behind it) to this log. Writes that change nothing are published too:
   * a relay's level is only known once the board confirmed it.
   */
  observe(slot: number, loads: readonly LoadSpec[], outputs: InterlockOutputs): InterlockOutputs {
    const on = new Set<string>();
    return {
      write: (output: InterlockOutput, level: boolean): Promise<void> => {
        let step = 0;
        if (output.startsWith('load:')) {
          const load = loads.find((l) => `load:${l.name}` === output);
          if (load) step = this.stepPct(load, slot);
          if (level) on.add(output);
          else on.delete(output);
        } else if (output === 'mains') {
          for (const l of loads) if (on.has(`load:${l.name}`)) step += this.stepPct(l, slot);
        }
        const done = step >= STEP_PCT ? this.begin(slot, output, step) : undefined;
        const p = outputs.write(output, level);
        if (done) p.then(done, done);
        return p;
      },
    };
  }

  /**
   * What metering on `slot` sees of the supply: every counted switch of every slot on its feed, its
   * own included (its own are also behind its cleanAfter; counting them again costs nothing).
   */
  watch(slot: number): SupplyWatch {
    const feed = this.#feed(slot);
    return {
      disturbedBetween: (from, to) => {
        const hit = this.#switches.filter((s) => s.feed === feed && s.from <= to && s.to >= from);
        if (hit.some((s) => s.slot !== slot)) this.#slotStats(slot).droppedWindows++;
        return hit.length > 0;
      },
      measuring: (until) => (until === undefined ? this.#runs.delete(slot) : this.#runs.set(slot, until)),
      beforeSwitch: (load, signal) => this.#beforeSwitch(slot, load, signal),
    };
  }

  /**
   * A switch that counts waits while another slot's window run is expected to end within
   * SWITCH_WAIT_MS, at most that long: its last window would be lost to the switch, and taking
   * another costs it a window while waiting costs this slot less. Longer runs (a calibration's ten
   * windows) are not waited for: they lose the one window the switch falls in.
   */
  async #beforeSwitch(slot: number, load: { watts: number; pf: number }, signal?: AbortSignal): Promise<void> {
    if (this.stepPct(load, slot) < STEP_PCT) return;
    const until = this.#clock.now() + SWITCH_WAIT_MS;
    const feed = this.#feed(slot);
    const ending = (): boolean => [...this.#runs].some(([s, end]) => s !== slot && this.#feed(s) === feed && end <= until);
    while (ending() && this.#clock.now() < until && !signal?.aborted) {
      this.#slotStats(slot).waitedMs += Math.min(POLL_MS, until - this.#clock.now());
      await this.#clock.sleep(Math.min(POLL_MS, until - this.#clock.now()));
    }
  }

  /**
   * Per slot (for the bench): the time its switches waited for other slots' runs to end, and the
   * windows (or reference readings) it dropped because another slot's switch fell in them.
   */
  stats(): ReadonlyMap<number, Readonly<SupplySlotStats>> {
    return this.#stats;
  }

  #slotStats(slot: number): SupplySlotStats {
    let st = this.#stats.get(slot);
    if (!st) this.#stats.set(slot, (st = { waitedMs: 0, droppedWindows: 0 }));
    return st;
  }

  /** The switches recorded (for tests and diagnostics). */
  switches(): ReadonlyArray<{ slot: number; feed: string; output: string; from: number; to: number; stepPct: number }> {
    return this.#switches;
  }

  #prune(): void {
    // A window is at most a few seconds long: older confirmed switches can no longer matter.
    const horizon = this.#clock.now() - KEEP_MS;
    let drop = 0;
    while (drop < this.#switches.length && this.#switches[drop]!.to < horizon) drop++;
    if (drop) this.#switches.splice(0, drop);
  }
}

export interface SupplySlotStats {
  waitedMs: number;
  droppedWindows: number;
}

/** The smallest voltage step that makes a window unusable, percent: a fifth of the tightest V limit (±0.5 %). */
export const STEP_PCT = 0.1;
const KEEP_MS = 60_000;
/** Longest a switch waits for other slots' runs about to end: about one window. */
const SWITCH_WAIT_MS = 1200;
const POLL_MS = 50;
/**
 * The board confirms a pin write, not the contact: a relay's contact moves within its operate or
 * release time after the pin (≤ 10 ms for a jig's signal relays and contactors of this size, with
 * bounce), so the switch counts until that long after the confirmation, doubled for margin.
 */
const RELAY_OPERATE_MS = 20;
