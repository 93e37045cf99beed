import { hashUnit } from '../../rig/core/prng.ts';

/**
 * Slow wander of the supply voltage: a mean-reverting random walk (Ornstein–Uhlenbeck) sampled at
 * knots and linearly interpolated between them, so the level at any time is a pure function of
 * (seed, time) and costs a lookup. Knots are generated on demand and cached.
 */
export interface DriftSpec {
  /** About ±this relative change over `windowMs` (two standard deviations of the change). Default 0.01. */
  amplitude?: number;
  /** Default 60 000 ms. */
  windowMs?: number;
  /** Mean-reversion time, ms (keeps hours of virtual time near nominal). Default 300 000. */
  reversionMs?: number;
  /** Knot spacing, ms. Default 2000. */
  knotMs?: number;
}

/** A standard normal from two hashed uniforms (Box–Muller). */
function normal(seed: number, stream: number, k: number): number {
  const u = Math.max(hashUnit(seed, stream, 2 * k), 1e-12);
  const v = hashUnit(seed, stream, 2 * k + 1);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export class SupplyDrift {
  readonly #origin: number;
  readonly #knotMs: number;
  readonly #seed: number;
  readonly #rho: number;
  readonly #stepSigma: number;
  readonly #sigma: number;
  /** Relative deviation at each knot, and ∫(1+d)² dt (ms) from the origin to each knot. */
  readonly #d: number[] = [];
  readonly #cum: number[] = [0];

  constructor(seed: number, originMs: number, spec: DriftSpec = {}) {
    const amplitude = spec.amplitude ?? 0.01;
    const windowMs = spec.windowMs ?? 60_000;
    const tau = spec.reversionMs ?? 300_000;
    this.#knotMs = spec.knotMs ?? 2000;
    this.#origin = originMs;
    this.#seed = seed >>> 0;
    // Var[d(t+W) − d(t)] = 2σ²(1 − e^(−W/τ)) = (amplitude/2)².
    this.#sigma = amplitude / 2 / Math.sqrt(2 * (1 - Math.exp(-windowMs / tau)));
    this.#rho = Math.exp(-this.#knotMs / tau);
    this.#stepSigma = this.#sigma * Math.sqrt(1 - this.#rho ** 2);
    this.#d.push(this.#sigma * normal(this.#seed, 0x0d21f7, 0));
  }

  /** Stationary standard deviation of the level. */
  get sigma(): number {
    return this.#sigma;
  }

  /** Relative deviation of the supply at clock time t (0 = nominal). */
  deviation(t: number): number {
    const x = Math.max(0, t - this.#origin) / this.#knotMs;
    const k = Math.floor(x);
    this.#extend(k + 1);
    const a = this.#d[k]!;
    return a + (this.#d[k + 1]! - a) * (x - k);
  }

  /** ∫ (1 + d(t))² dt from t0 to t1, ms: what energy integrates when P scales with V². */
  squaredIntegral(t0: number, t1: number): number {
    return this.#cumulative(t1) - this.#cumulative(t0);
  }

  #cumulative(t: number): number {
    const x = Math.max(0, t - this.#origin) / this.#knotMs;
    const k = Math.floor(x);
    this.#extend(k + 1);
    const a = 1 + this.#d[k]!;
    const b = 1 + this.#d[k]! + (this.#d[k + 1]! - this.#d[k]!) * (x - k);
    const h = (x - k) * this.#knotMs;
    // s is linear from a to b over h: ∫ s² = h (a² + ab + b²) / 3.
    return this.#cum[k]! + (h * (a * a + a * b + b * b)) / 3;
  }

  #extend(k: number): void {
    while (this.#d.length <= k) {
      const i = this.#d.length;
      const prev = this.#d[i - 1]!;
      const next = prev * this.#rho + this.#stepSigma * normal(this.#seed, 0x0d21f7, i);
      this.#d.push(next);
      const a = 1 + prev;
      const b = 1 + next;
      this.#cum.push(this.#cum[i - 1]! + (this.#knotMs * (a * a + a * b + b * b)) / 3);
    }
  }
}
