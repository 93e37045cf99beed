import type { Measurement } from '../../rig/meter/reference-meter.ts';

/** Apparent power of a sample: its own when it has one, else from P and PF (or V·I at no power). */
function apparent(m: Measurement & { va?: number }): number {
  return m.va ?? (m.pf > 0 ? Math.abs(m.watts) / m.pf : m.volts * m.amps);
}

/** A source an instrument samples, optionally at a past moment (the mains branches support it). */
export type TimedSource = (atMs?: number) => Measurement & { va?: number };

/** What one display update shows before the instrument's own errors: means over the update interval. */
export interface DisplayedValues extends Measurement {
  va: number;
  /** Index of the update (its noise is drawn per index), and the clock time it completed. */
  update: number;
  at: number;
}

export interface DisplayUpdateOptions {
  /** Update interval, ms; 0 = every read samples the present moment. */
  intervalMs: number;
  /** Where the instrument's update grid sits on the clock, ms (drawn per instrument). */
  phaseMs?: number;
  /** Samples averaged per interval (default 8). */
  samples?: number;
}

/**
 * An instrument's display: every `intervalMs` it completes a measurement of the previous interval
 * (rms and power as means over it) and holds it until the next one, so a reading is up to one
 * interval old and blends any change that happened inside it.
 */
export class DisplayUpdate {
  readonly #source: TimedSource;
  readonly intervalMs: number;
  readonly phaseMs: number;
  readonly #samples: number;
  #cached?: DisplayedValues;
  #reads = 0;

  constructor(source: TimedSource, o: DisplayUpdateOptions) {
    this.#source = source;
    this.intervalMs = o.intervalMs;
    this.phaseMs = o.intervalMs > 0 ? (o.phaseMs ?? 0) % o.intervalMs : 0;
    this.#samples = Math.max(1, o.samples ?? 8);
  }

  /**
   * The values shown at clock time `now`. Without a clock (an instrument used without one) or with
   * no interval, each read samples the present and is its own update.
   */
  current(now?: number): DisplayedValues {
    const T = this.intervalMs;
    if (now === undefined || !(T > 0)) {
      const m = this.#source();
      return { ...m, va: apparent(m), update: this.#reads++, at: now ?? 0 };
    }
    const update = Math.floor((now - this.phaseMs) / T);
    if (this.#cached?.update === update) return this.#cached;
    const end = this.phaseMs + update * T;
    const sum = { volts: 0, amps: 0, watts: 0, va: 0, hz: 0 };
    const n = this.#samples;
    for (let i = 0; i < n; i++) {
      const m = this.#source(end - T + ((i + 0.5) * T) / n);
      sum.volts += m.volts;
      sum.amps += m.amps;
      sum.watts += m.watts;
      sum.va += apparent(m);
      sum.hz += m.hz;
    }
    const va = sum.va / n;
    const watts = sum.watts / n;
    const shown: DisplayedValues = {
      volts: sum.volts / n,
      amps: sum.amps / n,
      watts,
      va,
      pf: va > 0 ? watts / va : 0,
      hz: sum.hz / n,
      wh: this.#source(end).wh,
      update,
      at: end,
    };
    this.#cached = shown;
    return shown;
  }
}
