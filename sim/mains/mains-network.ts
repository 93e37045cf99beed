import type { Clock } from '../../rig/core/clock.ts';
import { ConfigError } from '../../rig/core/errors.ts';
import type { Measurement } from '../../rig/meter/reference-meter.ts';
import { SupplyDrift, type DriftSpec } from './supply-drift.ts';

/**
 * The virtual jig's mains wiring, solved as an AC circuit (sinusoidal steady state):
 *
 *   source ─[Zs]─●─[jig mains relay]──●── plug input ──[plug relay]──●── plug output ──┬─[load relay]─ load
 *                node (all slots)    (reference meter)             (BL0937 shunt)      └─[load relay]─ load …
 *
 * The source is not ideal: its open-circuit voltage drifts slowly (a seeded random walk, a pure
 * function of time) and it has an impedance, so every load on the network pulls the node voltage
 * down. Loads are fixed admittances derived from their nominal watts and PF at the nominal voltage,
 * so P and Q scale with V² and an inductive load's susceptance with 1/f. Quantities can be asked for
 * at a past moment (meters average over their update interval, the BL0937 integrates over its
 * window): each branch and the network keep the last two minutes of switch states.
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

/** Series impedance of the source (phase + neutral), as R and L. */
export interface SourceImpedance {
  ohms: number;
  henries: number;
}

/** IEC 60725's reference impedance for a 230 V phase + neutral: 0.4 Ω + j0.25 Ω at 50 Hz. */
export const IEC_60725_REFERENCE_IMPEDANCE: Readonly<SourceImpedance> = { ohms: 0.4, henries: 0.25 / (2 * Math.PI * 50) };

/** An ideal, steady source, for tests of the circuit arithmetic itself. */
export const STEADY_SUPPLY = { drift: false, sourceImpedance: { ohms: 0, henries: 0 } } as const;

export interface MainsNetworkOptions extends SupplySpec {
  clock: Clock;
  /** Seeds the drift (one walk per network). Default 1. */
  seed?: number;
  /** Slow voltage wander; false for a steady source. Default ±1 % over a minute. */
  drift?: DriftSpec | false;
  /** Default IEC 60725's reference impedance. */
  sourceImpedance?: SourceImpedance;
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

const NO_LOAD: Admittance = { g: 0, b: 0 };
/** How far back quantities can be asked for, ms. */
const HISTORY_MS = 120_000;

/** Which point of a branch is measured: before the plug (reference meter) or after its relay (BL0937). */
export type MeasuringPoint = 'input' | 'output';

/** A timeline of states; `at(t)` is the state in force at t. */
class History<T extends { t: number }> {
  readonly #entries: T[] = [];
  push(entry: T): void {
    const e = this.#entries;
    if (e.length && e[e.length - 1]!.t === entry.t) e[e.length - 1] = entry;
    else e.push(entry);
    // Keep one entry older than the horizon: it is the state in force at the horizon.
    let drop = 0;
    while (drop + 1 < e.length && e[drop + 1]!.t <= entry.t - HISTORY_MS) drop++;
    if (drop) e.splice(0, drop);
  }
  at(t: number): T {
    const e = this.#entries;
    let lo = 0;
    let hi = e.length - 1;
    if (t >= e[hi]!.t) return e[hi]!;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (e[mid]!.t <= t) lo = mid;
      else hi = mid - 1;
    }
    return e[lo]!;
  }
}

class EnergyIntegrator {
  #wh = 0;
  /** Power the point draws at the undrifted supply; actual power scales with (1 + drift)². */
  #watts = 0;
  #since: number;
  constructor(readonly net: MainsNetwork) {
    this.#since = net.clock.now();
  }
  /** Close the interval at the old power; from now on integrate `watts`. */
  set(watts: number): void {
    this.#wh = this.whAt(this.net.clock.now());
    this.#since = this.net.clock.now();
    this.#watts = watts;
  }
  /** Energy at time t (t before the last change reads as of that change). */
  whAt(t: number): number {
    const to = Math.max(this.#since, Math.min(t, this.net.clock.now()));
    return this.#wh + (this.#watts * this.net.squaredIntegral(this.#since, to)) / 3_600_000;
  }
  reset(): void {
    this.#wh = 0;
    this.#since = this.net.clock.now();
  }
}

interface BranchState {
  t: number;
  input: Admittance;
  output: Admittance;
  inputLive: boolean;
  outputLive: boolean;
}

/** One slot's wiring. Every switch starts open. */
export class MainsBranch {
  readonly name: string;
  readonly #net: MainsNetwork;
  #mainsRelay = false;
  #plugRelay = false;
  readonly #loads = new Map<string, { y: Admittance; closed: boolean }>();
  /** The plug's own supply, drawn at its input whenever it is energised. */
  #selfY: Admittance = NO_LOAD;
  readonly #energy: Record<MeasuringPoint, EnergyIntegrator>;
  readonly #history = new History<BranchState>();

  constructor(net: MainsNetwork, name: string) {
    this.#net = net;
    this.name = name;
    this.#energy = { input: new EnergyIntegrator(net), output: new EnergyIntegrator(net) };
    this.#history.push(this.#state());
  }

  /** Add a load behind its own (open) relay at the plug output. */
  addLoad(name: string, rating: LoadRating): void {
    if (this.#loads.has(name)) throw new ConfigError(`load "${name}" already exists on ${this.name}`, { step: 'mains' });
    const y = this.#net.admittanceFor(rating, name);
    this.#net.mutate(() => this.#loads.set(name, { y, closed: false }));
  }

  /** Model the plug's own consumption (its non-isolated supply), drawn at its input whenever it is live. */
  setSelfConsumption(rating: LoadRating | undefined): void {
    const y = rating ? this.#net.admittanceFor(rating, 'plug self-consumption') : NO_LOAD;
    this.#net.mutate(() => (this.#selfY = y));
  }

  setMainsRelay(closed: boolean): void {
    this.#net.mutate(() => (this.#mainsRelay = closed));
  }
  setPlugRelay(closed: boolean): void {
    this.#net.mutate(() => (this.#plugRelay = closed));
  }
  setLoadRelay(name: string, closed: boolean): void {
    const load = this.#loads.get(name);
    if (!load) throw new ConfigError(`no load "${name}" on ${this.name}`, { step: 'mains', known: [...this.#loads.keys()] });
    this.#net.mutate(() => (load.closed = closed));
  }

  /** The network this branch hangs on (its changes move this branch's voltage too). */
  get network(): MainsNetwork {
    return this.#net;
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
    return this.#mainsRelay && this.#net.supplyOn();
  }

  /** True when the plug's output terminals are live. */
  outputEnergised(): boolean {
    return this.inputEnergised() && this.#plugRelay;
  }

  /** Quantities at a measuring point right now (energy since that point's last reset). */
  measure(point: MeasuringPoint): PowerQuantities {
    return this.measureAt(point, this.#net.clock.now());
  }

  /** Quantities at a measuring point at clock time t (at most two minutes back; later than now reads now). */
  measureAt(point: MeasuringPoint, t: number): PowerQuantities {
    const at = Math.min(t, this.#net.clock.now());
    const s = this.#history.at(at);
    const live = point === 'input' ? s.inputLive : s.outputLive;
    return this.#net.solveAt(at, live ? (point === 'input' ? s.input : s.output) : undefined, this.#energy[point].whAt(at));
  }

  /** A measurement source for a simulated meter at this point (optionally at a past moment). */
  source(point: MeasuringPoint): (atMs?: number) => PowerQuantities {
    return (atMs) => (atMs === undefined ? this.measure(point) : this.measureAt(point, atMs));
  }

  resetEnergy(point: MeasuringPoint): void {
    this.#energy[point].reset();
  }

  /** Admittance this branch puts on the network node (zero while its mains relay is open). */
  nodeAdmittance(): Admittance {
    return this.#mainsRelay ? this.#admittance('input') : NO_LOAD;
  }

  /** Called by the network after any change: record the state, re-base the energy integrators. */
  rebase(): void {
    const s = this.#state();
    this.#history.push(s);
    for (const point of ['input', 'output'] as const) {
      const live = point === 'input' ? s.inputLive : s.outputLive;
      this.#energy[point].set(live ? this.#net.unitDriftWatts(point === 'input' ? s.input : s.output) : 0);
    }
  }

  #state(): BranchState {
    return {
      t: this.#net.clock.now(),
      input: this.#admittance('input'),
      output: this.#admittance('output'),
      inputLive: this.inputEnergised(),
      outputLive: this.outputEnergised(),
    };
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

interface NetworkState {
  t: number;
  /** Open-circuit source voltage without drift, V. */
  volts: number;
  hz: number;
  /** |V_node / V_source|: the drop across the source impedance under the whole network's load. */
  nodeFactor: number;
}

export class MainsNetwork {
  readonly clock: Clock;
  readonly nominal: { volts: number; hz: number };
  #supply: Required<SupplySpec>;
  readonly #drift: SupplyDrift | undefined;
  readonly #zs: SourceImpedance;
  readonly #branches = new Map<string, MainsBranch>();
  readonly #listeners = new Set<() => void>();
  readonly #beforeListeners = new Set<() => void>();
  readonly #history = new History<NetworkState>();
  #state: NetworkState;

  constructor(options: MainsNetworkOptions) {
    if (!(options.volts > 0) || !(options.hz > 0)) {
      throw new ConfigError('mains supply needs positive volts and hz', { step: 'mains', volts: options.volts, hz: options.hz });
    }
    const zs = options.sourceImpedance ?? IEC_60725_REFERENCE_IMPEDANCE;
    if (!(zs.ohms >= 0) || !(zs.henries >= 0)) throw new ConfigError('mains source impedance must be >= 0', { step: 'mains', ...zs });
    this.clock = options.clock;
    this.nominal = { volts: options.volts, hz: options.hz };
    this.#supply = { volts: options.volts, hz: options.hz, voltsDeviation: options.voltsDeviation ?? 0, hzDeviation: options.hzDeviation ?? 0 };
    this.#drift = options.drift === false ? undefined : new SupplyDrift(options.seed ?? 1, options.clock.now(), options.drift ?? {});
    this.#zs = { ...zs };
    this.#state = this.#solveState();
    this.#history.push(this.#state);
  }

  /** Change the supply (a brown-out, another grid frequency, a per-unit deviation). Loads keep their admittance. */
  setSupply(change: Partial<SupplySpec>): void {
    this.mutate(() => (this.#supply = { ...this.#supply, ...change }));
  }

  /** Relative drift of the source at clock time t (0 when steady). */
  drift(t: number = this.clock.now()): number {
    return this.#drift?.deviation(t) ?? 0;
  }

  /** ∫ (1 + drift)² dt over [t0, t1], ms (energy integrates it). */
  squaredIntegral(t0: number, t1: number): number {
    return this.#drift ? this.#drift.squaredIntegral(t0, t1) : t1 - t0;
  }

  /** True while the source delivers any voltage. */
  supplyOn(): boolean {
    return this.#state.volts > 0;
  }

  /** Open-circuit rms source voltage now, drift included, V. */
  supplyVolts(): number {
    return this.#state.volts * (1 + this.drift());
  }

  /** Rms voltage at the network node (what every live plug input sees) at time t, V. */
  nodeVolts(t: number = this.clock.now()): number {
    const s = this.#history.at(Math.min(t, this.clock.now()));
    return s.volts * (1 + this.drift(t)) * s.nodeFactor;
  }

  /** Actual supply frequency, Hz. */
  supplyHz(): number {
    return this.#state.hz;
  }

  branch(name: string): MainsBranch {
    let b = this.#branches.get(name);
    if (!b) {
      b = new MainsBranch(this, name);
      this.#branches.set(name, b);
    }
    return b;
  }

  /** Notified after any switch, load or supply change. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Notified just before any switch, load or supply change, while the old state still holds: the
   * place to integrate whatever was flowing up to now (a BL0937's pulse phases).
   */
  onBeforeChange(listener: () => void): () => void {
    this.#beforeListeners.add(listener);
    return () => this.#beforeListeners.delete(listener);
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

  /** Steady-state quantities across admittance `y` (undefined: dead) at time t. */
  solveAt(t: number, y: Admittance | undefined, wh: number): PowerQuantities {
    const s = this.#history.at(t);
    const hz = s.hz;
    const volts = y ? s.volts * (1 + this.drift(t)) * s.nodeFactor : 0;
    if (!y) return { volts: 0, amps: 0, watts: 0, vars: 0, va: 0, pf: 0, hz, wh };
    return { ...this.#powers(y, volts, hz), hz, wh };
  }

  /** Power `y` draws now at the undrifted node voltage (the energy integrators scale it by (1 + drift)²). */
  unitDriftWatts(y: Admittance): number {
    return y.g * (this.#state.volts * this.#state.nodeFactor) ** 2;
  }

  /** Apply a change: before-listeners, the change, then re-solve, re-base every branch and tell listeners. */
  mutate(change: () => void): void {
    for (const fn of this.#beforeListeners) fn();
    change();
    this.changed();
  }

  /** Re-solve the node, re-base every branch's history and energy integrators, and tell listeners. */
  changed(): void {
    this.#state = this.#solveState();
    this.#history.push(this.#state);
    for (const b of this.#branches.values()) b.rebase();
    for (const fn of this.#listeners) fn();
  }

  #powers(y: Admittance, volts: number, hz: number): { volts: number; amps: number; watts: number; vars: number; va: number; pf: number } {
    // An inductor's susceptance falls with frequency (B = 1/(ωL)).
    const b = (y.b * this.nominal.hz) / hz;
    const watts = y.g * volts ** 2;
    const vars = b * volts ** 2;
    const va = Math.hypot(watts, vars);
    const amps = volts > 0 ? va / volts : 0;
    return { volts, amps, watts, vars, va, pf: va > 0 ? watts / va : 0 };
  }

  #solveState(): NetworkState {
    const volts = this.#supply.volts * (1 + this.#supply.voltsDeviation);
    const hz = this.#supply.hz * (1 + this.#supply.hzDeviation);
    let g = 0;
    let b = 0;
    for (const br of this.#branches.values()) {
      const y = br.nodeAdmittance();
      g += y.g;
      b += (y.b * this.nominal.hz) / hz;
    }
    // V_node = V_src / (1 + Zs·Y), Zs = R + jX, Y = G − jB.
    const r = this.#zs.ohms;
    const x = 2 * Math.PI * hz * this.#zs.henries;
    const re = 1 + r * g + x * b;
    const im = x * g - r * b;
    return { t: this.clock.now(), volts, hz, nodeFactor: 1 / Math.hypot(re, im) };
  }
}
