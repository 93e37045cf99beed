import type { Clock } from '../../rig/core/clock.ts';
import type { Logger } from '../../rig/core/log.ts';
import type { MeasurementResult, MeasurementSpec } from '../model/measurement.ts';
import type { StepKind } from '../model/step-result.ts';

/** What a step gets from the runner for one attempt. */
export interface StepContext {
  slot: number;
  clock: Clock;
  log: Logger;
  /** Aborted on the step's timeout or when the slot is aborted; pass it to every wait. */
  signal: AbortSignal;
  attempt: number;
  /**
   * Take a declared measurement. `nominal` fills in a nominal the plan leaves to the suite;
   * `contributions` gives the value of each declared uncertainty term.
   */
  measure(id: string, value: number, o?: { nominal?: number; contributions?: Record<string, number>; diag?: Record<string, unknown> }): MeasurementResult;
  /** Record a boolean check; a failing check fails the step. Returns ok. */
  check(name: string, ok: boolean, diag?: Record<string, unknown>): boolean;
  /** Facts about the unit (MAC, ...) for the unit record. */
  unit(facts: Record<string, unknown>): void;
}

/** What a step can ask the station for: the slot's reference meter (shared or its own). */
export type InstrumentNeed = 'meter';

export interface Step {
  name: string;
  /** main (default): in order, skipped after a critical failure or an abort; cleanup: always runs,
   * after the main steps; safe-state: exactly one per slot, always last. */
  kind?: StepKind;
  /** Which suite of the plan contributed it (for reports). */
  suite?: string;
  /** A failing critical step skips the remaining main steps. */
  critical?: boolean;
  /** Declared before the step runs; one never taken fails the step. */
  measurements?: MeasurementSpec[];
  /** Extra attempts after a failure or a marginal-retest (from the plan). */
  retries?: number;
  /** Per attempt (from the plan); the runner's default otherwise. */
  timeoutMs?: number;
  /**
   * Shared instruments the step uses (`meter`: the slot's reference meter), taken before each
   * attempt and held until it ends; the station serialises slots that share one.
   */
  needs?: readonly InstrumentNeed[];
  run(ctx: StepContext): Promise<Record<string, unknown> | void>;
}
