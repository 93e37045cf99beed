import type { Clock } from '../../rig/core/clock.ts';
import { ConfigError } from '../../rig/core/errors.ts';
import type { Measurement } from '../../rig/meter/reference-meter.ts';

/**
 * The virtual jig's mains wiring, solved as an AC circuit (sinusoidal steady state, ideal source):
 *
 *   supply ──[jig mains relay]──●── plug input ──[plug relay]──●── plug output ──┬─[load relay]─ load
 *                               (reference meter)             (BL0937 shunt)     └─[load relay]─ load …
 *
 * Loads are fixed admittances derived from their nominal watts and PF at the nominal voltage, so P
 * and Q scale with V² and an inductive load's susceptance with 1/f. Both measuring points see the
 * same physics; energy at each point is integrated over the shared Clock (piecewise constant power).
 */

export interface SupplySpec {
  /** Nominal rms voltage, V. */
  volts: number;
  /** Nominal frequency, Hz. */
  hz: number;
  /** Per-unit deviation of the actual supply from nominal (0.02 = 2 % high). */
  voltsDeviation?: number;
  hzDeviation?: number;
}

export interface LoadRating {
  /** Real power at the network's nominal voltage and frequency, W. */
  watts: number;
  /** Power factor, 0 < pf <= 1, lagging (inductive). */
  pf: number;
}

/** Everything an ideal power analyzer shows at one point of the circuit. */
export interface PowerQuantities extends Measurement {
  /** Reactive power, var (positive = inductive). */
  vars: number;
  /** Apparent power, VA. */
  va: number;
}

/** A fixed admittance Y = G − jB (B > 0 inductive), in siemens at the nominal frequency. */
interface Admittance {
  g: number;
  b: number;
}

class EnergyIntegrator {
  #wh = 0;
  #watts = 0;
  #since: number;
  constructor(readonly clock: Clock) {
    this.#since = clock.now();
  }
  /** Close the interval at the old power; from now on integrate `watts`. */
  set(watts: number): void {
    this.#wh = this.wh();
    this.#since = this.clock.now();
    this.#watts = watts;
  }
  wh(): number {
    return this.#wh + (this.#watts * (this.clock.now() - this.#since)) / 3_600_000;
  }
  reset(): void {
    this.#wh = 0;
    this.#since = this.clock.now();
  }
}

/** Which point of a branch is measured: before the plug (reference meter) or after its relay (BL0937). */
export type MeasuringPoint = 'input' | 'output';

/** One slot's wiring. Every switch starts open. */
export class MainsBranch {
  readonly name: string;
  readonly #net: MainsNetwork;
  #mainsRelay = false;
  #plugRelay = false;
  readonly #loads = new Map<string, { y: Admittance; closed: boolean }>();
  /** The plug's own supply, drawn at its input whenever it is energised. */
  #selfY: Admittance = { g: 0, b: 0 };
  readonly #energy: Record<MeasuringPoint, EnergyIntegrator>;

  constructor(net: MainsNetwork, name: string, clock: Clock) {
    this.#net = net;
    this.name = name;
    this.#energy = { input: new EnergyIntegrator(clock), output: new EnergyIntegrator(clock) };
  }

  /** Add a load behind its own (open) relay at the plug output. */
  addLoad(name: string, rating: LoadRating): void {
    if (this.#loads.has(name)) throw new ConfigError(`load "${name}" already exists on ${this.name}`, { step: 'mains' });
    this.#loads.set(name, { y: this.#net.admittanceFor(rating, name), closed: false });
    this.#net.changed();
  }

  /** Model the plug's own consumption (its non-isolated supply), drawn whenever its input is live. */
  setSelfConsumption(rating: LoadRating | undefined): void {
    this.#selfY = rating ? this.#net.admittanceFor(rating, 'plug self-consumption') : { g: 0, b: 0 };
    this.#net.changed();
  }

  setMainsRelay(closed: boolean): void {
    this.#mainsRelay = closed;
    this.#net.changed();
  }
  setPlugRelay(closed: boolean): void {
    this.#plugRelay = closed;
    this.#net.changed();
  }
  setLoadRelay(name: string, closed: boolean): void {
    const load = this.#loads.get(name);
    if (!load) throw new ConfigError(`no load "${name}" on ${this.name}`, { step: 'mains', known: [...this.#loads.keys()] });
    load.closed = closed;
    this.#net.changed();
  }

  mainsRelayClosed(): boolean {
    return this.#mainsRelay;
  }
  plugRelayClosed(): boolean {
    return this.#plugRelay;
  }
  loadRelayClosed(name: string): boolean {
    return this.#loads.get(name)?.closed ?? false;
  }
  loadNames(): string[] {
    return [...this.#loads.keys()];
  }

  /** True when the plug's input terminals are live. */
  inputEnergised(): boolean {
    return this.#mainsRelay && this.#net.supplyVolts() > 0;
  }

  /** True when the plug's output terminals are live. */
  outputEnergised(): boolean {
    return this.inputEnergised() && this.#plugRelay;
  }

  /** Quantities at a measuring point right now (energy since that point's last reset). */
  measure(point: MeasuringPoint): PowerQuantities {
    const live = point === 'input' ? this.inputEnergised() : this.outputEnergised();
    return this.#net.solve(live ? this.#admittance(point) : undefined, live, this.#energy[point].wh());
  }

  /** A measurement source for a simulated meter at this point. */
  source(point: MeasuringPoint): () => PowerQuantities {
    return () => this.measure(point);
  }

  resetEnergy(point: MeasuringPoint): void {
    this.#energy[point].reset();
  }

  /** Called by the network after any change: re-base the energy integrators on the new power. */
  rebase(): void {
    for (const point of ['input', 'output'] as const) {
      const live = point === 'input' ? this.inputEnergised() : this.outputEnergised();
      this.#energy[point].set(live ? this.#net.solve(this.#admittance(point), true, 0).watts : 0);
    }
  }

  #admittance(point: MeasuringPoint): Admittance {
    const y: Admittance = { g: 0, b: 0 };
    if (this.#plugRelay) {
      for (const load of this.#loads.values()) {
        if (!load.closed) continue;
        y.g += load.y.g;
        y.b += load.y.b;
      }
    }
    if (point === 'input') {
      y.g += this.#selfY.g;
      y.b += this.#selfY.b;
    }
    return y;
  }
}

export class MainsNetwork {
  readonly clock: Clock;
  readonly nominal: { volts: number; hz: number };
  #supply: Required<SupplySpec>;
  readonly #branches = new Map<string, MainsBranch>();
  readonly #listeners = new Set<() => void>();

  constructor(options: { clock: Clock } & SupplySpec) {
    if (!(options.volts > 0) || !(options.hz > 0)) {
      throw new ConfigError('mains supply needs positive volts and hz', { step: 'mains', volts: options.volts, hz: options.hz });
    }
    this.clock = options.clock;
    this.nominal = { volts: options.volts, hz: options.hz };
    this.#supply = { volts: options.volts, hz: options.hz, voltsDeviation: options.voltsDeviation ?? 0, hzDeviation: options.hzDeviation ?? 0 };
  }

  /** Change the supply (a brown-out, another grid frequency, a per-unit deviation). Loads keep their admittance. */
  setSupply(change: Partial<SupplySpec>): void {
    this.#supply = { ...this.#supply, ...change };
    this.changed();
  }

  /** Actual rms supply voltage, V. */
  supplyVolts(): number {
    return this.#supply.volts * (1 + this.#supply.voltsDeviation);
  }

  /** Actual supply frequency, Hz. */
  supplyHz(): number {
    return this.#supply.hz * (1 + this.#supply.hzDeviation);
  }

  branch(name: string): MainsBranch {
    let b = this.#branches.get(name);
    if (!b) {
      b = new MainsBranch(this, name, this.clock);
      this.#branches.set(name, b);
    }
    return b;
  }

  /** Notified after any switch, load or supply change. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** G and B of a load rated `watts` at `pf` at the nominal voltage and frequency. */
  admittanceFor(rating: LoadRating, name: string): Admittance {
    if (!(rating.watts >= 0) || !(rating.pf > 0 && rating.pf <= 1)) {
      throw new ConfigError(`load "${name}" needs watts >= 0 and 0 < pf <= 1`, { step: 'mains', ...rating });
    }
    const v2 = this.nominal.volts ** 2;
    const vars = (rating.watts / rating.pf) * Math.sqrt(1 - rating.pf ** 2);
    return { g: rating.watts / v2, b: vars / v2 };
  }

  /** Steady-state quantities across admittance `y` at the actual supply. */
  solve(y: Admittance | undefined, live: boolean, wh: number): PowerQuantities {
    const hz = this.supplyHz();
    const volts = live ? this.supplyVolts() : 0;
    if (!y) return { volts, amps: 0, watts: 0, vars: 0, va: 0, pf: 0, hz, wh };
    // An inductor's susceptance falls with frequency (B = 1/(ωL)).
    const b = (y.b * this.nominal.hz) / hz;
    const watts = y.g * volts ** 2;
    const vars = b * volts ** 2;
    const va = Math.hypot(watts, vars);
    const amps = volts > 0 ? va / volts : 0;
    return { volts, amps, watts, vars, va, pf: va > 0 ? watts / va : 0, hz, wh };
  }

  /** Re-base every branch's energy integrator and tell listeners. */
  changed(): void {
    for (const b of this.#branches.values()) b.rebase();
    for (const fn of this.#listeners) fn();
  }
}
