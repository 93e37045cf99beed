import type { LimitSpec, ResolvedLimits } from './limits.ts';
import type { Contribution, UncertaintySpec } from './uncertainty.ts';
import type { Decision, GuardBand, MarginalAction, Verdict } from './verdict.ts';

/**
 * A measurement as a step declares it before taking it. Limits and the decision policy come from
 * the plan; the unit and the uncertainty budget's terms come from the suite (it knows the instrument).
 */
export interface MeasurementSpec {
  /** Key in the plan's limits and in records ("mainsVoltage"). */
  id: string;
  /** Shown in reports ("mains voltage"). */
  name: string;
  unit: string;
  limits: LimitSpec;
  uncertainty?: UncertaintySpec;
  /** Default 'uncertainty' (guarded acceptance). */
  guardBand?: GuardBand;
  /** Default from the plan's defaults. */
  onMarginal?: MarginalAction;
  /** Largest acceptable U; above it the verdict is marginal. */
  uncertaintyTarget?: number;
}

/** A measurement as the step result carries it (and every listener renders it). */
export interface MeasurementResult {
  id: string;
  name: string;
  unit: string;
  /** False when the step never took a declared measurement (verdict fail). */
  taken: boolean;
  value?: number;
  /** Combined standard uncertainty. */
  u: number;
  k: number;
  /** Expanded uncertainty k·u. */
  U: number;
  contributions: Contribution[];
  limits?: ResolvedLimits;
  guardBand: GuardBand;
  verdict: Verdict;
  decision: Decision;
  reason: string;
  attempt: number;
  /** Clock milliseconds (virtual or real) when taken, and the wall time. */
  t?: number;
  at?: string;
  diag?: Record<string, unknown>;
}
