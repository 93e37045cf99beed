import type { Clock } from '../../../rig/core/clock.ts';
import { hashUnit, mulberry32 } from '../../../rig/core/prng.ts';
import type { Bl0937Defects } from './defects.ts';
import { BL0937_NOMINAL_FRONT_END, drawFrontEnd, transferOf, type Bl0937FrontEnd, type Bl0937Transfer } from './front-end.ts';
import { Bl0937Nonlinearity, type Bl0937Channel, type NonlinearitySpec } from './nonlinearity.ts';

/** What the chip's pins see: mains rms volts at VP (via the divider) and the load through the shunt. */
export interface Bl0937Input {
  volts: number;
  amps: number;
  /** Active power through the shunt, W (its sign is lost: CF pulses at |P|). */
  watts: number;
}

export type Bl0937Output = 'cf' | 'cf1';

export interface Bl0937ChipOptions {
  clock: Clock;
  /** Per-unit seed: front end, nonlinearity, jitter and start phases all follow from it. */
  seed: number;
  /** Front-end part tolerance (each of shunt, divider, reference), default ±5 %. */
  tolerance?: number;
  nonlinearity?: NonlinearitySpec;
  /** Scale of the datasheet jitter bound (1 = datasheet figures, 0 = none). */
  jitter?: number;
  /** Length of the stretch over which one jitter value holds, ms (UNCERTAIN, default 250). */
  jitterSegmentMs?: number;
  /** Anti-creep: CF is silent below this load current at a 1 mΩ shunt (UNCERTAIN, default 4 mA). */
  creepAmps?: number;
  /** Time after a SEL change during which CF1 still shows the previous quantity (UNCERTAIN, default 0). */
  selSettlingMs?: number;
  /** Nominal front end the unit's parts scatter around. */
  nominal?: Partial<Bl0937FrontEnd>;
  /**
   * The electrical input at clock time `atMs` (never later than now). A source that ignores the
   * time is sampled at the midpoint of each stretch the chip integrates.
   */
  input: (atMs: number) => Bl0937Input;
  defects?: Bl0937Defects;
  /** VDD present at construction (default true). */
  powered?: boolean;
  /** SEL level at construction (default low). */
  sel?: boolean;
}

/** What a bench may know about a unit and the rig may not. */
export interface Bl0937Truth {
  frontEnd: Bl0937FrontEnd;
  /** Hz per W / V / A at the linear point. */
  transfer: Bl0937Transfer;
  /** Peak nonlinear error per channel over the dynamic range. */
  nonlinearityAmplitude: Record<Bl0937Channel, number>;
  /** Output frequency of a channel for an input, Hz, without jitter (nonlinearity and creep included). */
  frequency(channel: Bl0937Channel, input: Bl0937Input): number;
  defects: Bl0937Defects;
}

/** Datasheet CF jitter: < ±0.2 % at 300 mA and < ±0.3 % at 50 mA (1 mΩ); held outside that span. */
export function bl0937JitterBound(amps: number): number {
  const a = Math.abs(amps);
  if (a >= 0.3) return 0.002;
  if (a <= 0.05) return 0.003;
  return 0.003 - (0.001 * Math.log(a / 0.05)) / Math.log(0.3 / 0.05);
}

const NOMINAL_SHUNT = 0.001;
const STREAM_CF = 1;
const STREAM_CF1_VOLTAGE = 2;
const STREAM_CF1_CURRENT = 3;

/**
 * The BL0937 energy-metering chip as its CF and CF1 pins show it (openbeken-bl0937.md §3): SEL high
 * = CF1 measures voltage, low = current. Each output keeps a phase accumulator that integrates its
 * frequency over the clock on every query and SEL/power change (no timer per pulse); a falling edge
 * is an integer crossing of the phase. The frequency holds a jitter value per segment of the clock,
 * a function of (seed, segment), so the counts do not depend on how often anyone asks.
 */
export class Bl0937Chip {
  readonly #clock: Clock;
  readonly #seed: number;
  readonly #input: (atMs: number) => Bl0937Input;
  readonly #fe: Bl0937FrontEnd;
  readonly #transfer: Bl0937Transfer;
  #nl: Bl0937Nonlinearity;
  readonly #defects: Bl0937Defects;
  readonly #jitter: number;
  readonly #segmentMs: number;
  readonly #creepSignal: number;
  readonly #settlingMs: number;
  readonly #rnd: () => number;
  #t: number;
  #powered: boolean;
  /** SEL as the chip follows it, and the CF1 mode before the last change (until it settles). */
  #sel: boolean;
  #prevSel: boolean;
  #selEffectiveAt = Number.NEGATIVE_INFINITY;
  readonly #phase: Record<Bl0937Output, number> = { cf: 0, cf1: 0 };
  readonly #taken: Record<Bl0937Output, number> = { cf: 0, cf1: 0 };

  constructor(o: Bl0937ChipOptions) {
    this.#clock = o.clock;
    this.#seed = o.seed >>> 0;
    this.#input = o.input;
    this.#defects = { ...(o.defects ?? {}) };
    this.#fe = drawFrontEnd(this.#seed, o.tolerance ?? 0.05, { ...BL0937_NOMINAL_FRONT_END, ...o.nominal }, this.#defects);
    this.#transfer = transferOf(this.#fe);
    this.#nl = new Bl0937Nonlinearity(this.#seed, o.nonlinearity);
    this.#jitter = o.jitter ?? 1;
    this.#segmentMs = o.jitterSegmentMs ?? 250;
    this.#creepSignal = (o.creepAmps ?? 0.004) * NOMINAL_SHUNT;
    this.#settlingMs = o.selSettlingMs ?? 0;
    this.#rnd = mulberry32(this.#seed ^ 0xcf1cf1);
    this.#t = o.clock.now();
    this.#powered = false;
    this.#sel = this.#prevSel = this.#stuckOr(o.sel ?? false);
    if (o.powered ?? true) this.setPowered(true);
  }

  /**
   * Fault injection (a metrology bench's faulty units): from now on the chip's nonlinearity follows
   * `spec` (e.g. a fixed 0.8–1.5 % peak error); what was counted before keeps the old one.
   */
  injectNonlinearity(spec: NonlinearitySpec): void {
    this.sync();
    this.#nl = new Bl0937Nonlinearity(this.#seed, spec);
  }

  /** Drive the SEL pin (ignored while a SEL-stuck defect holds it). */
  setSel(high: boolean): void {
    this.sync();
    const level = this.#stuckOr(high);
    if (level === this.#sel) return;
    this.#prevSel = this.#modeAt(this.#t);
    this.#sel = level;
    this.#selEffectiveAt = this.#t + this.#settlingMs;
  }

  /** SEL as the chip sees it. */
  sel(): boolean {
    return this.#sel;
  }

  /** VDD on or off; an unpowered chip emits nothing, and powers up at a random phase. */
  setPowered(on: boolean): void {
    this.sync();
    if (on === this.#powered) return;
    this.#powered = on;
    if (on) {
      for (const out of ['cf', 'cf1'] as const) {
        this.#phase[out] = Math.floor(this.#phase[out]) + this.#rnd();
        this.#taken[out] = Math.floor(this.#phase[out]);
      }
    }
  }

  powered(): boolean {
    return this.#powered;
  }

  /** Falling edges on an output since the previous call for that output (0 when the pin is open). */
  takeFallingEdges(output: Bl0937Output): number {
    this.sync();
    const whole = Math.floor(this.#phase[output]);
    const n = whole - this.#taken[output];
    this.#taken[output] = whole;
    const open = output === 'cf' ? this.#defects.cfOpen : this.#defects.cf1Open;
    return open ? 0 : n;
  }

  /** Logic level of an output now: each period is high, then low, with the falling edge at its end. */
  level(output: Bl0937Output): boolean {
    this.sync();
    const open = output === 'cf' ? this.#defects.cfOpen : this.#defects.cf1Open;
    if (open || !this.#powered) return false;
    return this.#phase[output] - Math.floor(this.#phase[output]) < 0.5;
  }

  /** Integrate the outputs up to now. Call it before the input changes abruptly (a relay, a load). */
  sync(): void {
    const to = this.#clock.now();
    let a = this.#t;
    while (a < to) {
      const seg = Math.floor(a / this.#segmentMs);
      let b = Math.min(to, (seg + 1) * this.#segmentMs);
      if (this.#selEffectiveAt > a && this.#selEffectiveAt < b) b = this.#selEffectiveAt;
      if (this.#powered) {
        const input = this.#input((a + b) / 2);
        const seconds = (b - a) / 1000;
        const voltageMode = this.#modeAt(a);
        const amps = Math.abs(input.amps) * (this.#fe.shuntOhms / NOMINAL_SHUNT);
        const cfBound = bl0937JitterBound(amps);
        const cf1Bound = voltageMode ? bl0937JitterBound(0.3) : cfBound;
        this.#phase.cf += this.frequencyOf('power', input) * (1 + this.#noise(STREAM_CF, seg, cfBound)) * seconds;
        this.#phase.cf1 +=
          this.frequencyOf(voltageMode ? 'voltage' : 'current', input) *
          (1 + this.#noise(voltageMode ? STREAM_CF1_VOLTAGE : STREAM_CF1_CURRENT, seg, cf1Bound)) *
          seconds;
      }
      a = b;
    }
    this.#t = Math.max(this.#t, to);
  }

  /** The chip's output frequency for a channel and input, Hz, without jitter. */
  frequencyOf(channel: Bl0937Channel, input: Bl0937Input): number {
    const fe = this.#fe;
    const currentSignal = Math.abs(input.amps) * fe.shuntOhms;
    switch (channel) {
      case 'voltage': {
        const vp = Math.abs(input.volts) / fe.dividerRatio;
        return this.#transfer.hzPerVolt * Math.abs(input.volts) * (1 + this.#nl.relativeError('voltage', vp));
      }
      case 'current':
        return this.#transfer.hzPerAmp * Math.abs(input.amps) * (1 + this.#nl.relativeError('current', currentSignal));
      case 'power': {
        // Anti-creep: no power pulses without current through the shunt.
        if (currentSignal < this.#creepSignal) return 0;
        const activeSignal = input.volts !== 0 ? (Math.abs(input.watts) / Math.abs(input.volts)) * fe.shuntOhms : 0;
        return this.#transfer.hzPerWatt * Math.abs(input.watts) * (1 + this.#nl.relativeError('power', activeSignal));
      }
    }
  }

  truth(): Bl0937Truth {
    return {
      frontEnd: { ...this.#fe },
      transfer: { ...this.#transfer },
      nonlinearityAmplitude: { ...this.#nl.amplitude },
      frequency: (channel, input) => this.frequencyOf(channel, input),
      defects: { ...this.#defects },
    };
  }

  /** True when CF1 measures voltage at time t (SEL high, once settled). */
  #modeAt(t: number): boolean {
    return t >= this.#selEffectiveAt ? this.#sel : this.#prevSel;
  }

  #stuckOr(level: boolean): boolean {
    const s = this.#defects.selStuck;
    return s === undefined ? level : s === 'high';
  }

  #noise(stream: number, segment: number, bound: number): number {
    if (this.#jitter === 0) return 0;
    return (2 * hashUnit(this.#seed, stream, segment) - 1) * bound * this.#jitter;
  }
}
