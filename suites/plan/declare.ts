import type { MeasurementSpec } from '../model/measurement.ts';
import type { UncertaintySpec } from '../model/uncertainty.ts';
import type { Plan, PlanLimit } from './schema.ts';

export type PlanDefaults = Plan['defaults'];

/**
 * Declare a measurement from the plan's limit entry: numbers and decision policy from the plan
 * (entry first, then the plan's defaults), name, unit and uncertainty budget from the suite.
 */
export function declareMeasurement(
  m: { id: string; name: string; unit: string; uncertainty?: UncertaintySpec },
  limit: PlanLimit,
  defaults: PlanDefaults,
): MeasurementSpec {
  const { guardBand, onMarginal, uncertaintyTarget, ...limits } = limit;
  return {
    ...m,
    limits,
    guardBand: guardBand ?? defaults.guardBand,
    onMarginal: onMarginal ?? defaults.onMarginal,
    ...(uncertaintyTarget !== undefined ? { uncertaintyTarget } : {}),
  };
}

/** The step policy of a plan entry (retries, timeout), falling back to the plan's defaults. */
export function stepPolicy(entry: { suite: string; retries?: number; timeoutMs?: number }, defaults: PlanDefaults): { suite: string; retries: number; timeoutMs: number } {
  return { suite: entry.suite, retries: entry.retries ?? defaults.retries, timeoutMs: entry.timeoutMs ?? defaults.stepTimeoutMs };
}
