import type { MeasurementResult } from '../suites/model/measurement.ts';
import type { StepResult } from '../suites/model/step-result.ts';

/**
 * What every report renders: one run as the store holds it, in a fixed order (units by slot, steps by
 * index), with nothing computed from the clock or a random source, so the same store gives the same
 * bytes. Built from the store's read model by `reportRunFromStore`; steps and measurements keep the
 * result model's shapes (suites/model) so no renderer re-judges anything.
 */
export interface ReportRun {
  runId: string;
  station?: string;
  plan: { name: string; sha256: string };
  jig: { name: string };
  image?: { name: string; sha256?: string; version?: string };
  /** Reference instruments the run used (model, serial, calibration date). */
  instruments: ReportInstrument[];
  startedAt: string;
  finishedAt?: string;
  /** A run the station found unfinished at its next start. */
  aborted: boolean;
  units: ReportUnit[];
}

export interface ReportInstrument {
  model: string;
  serial?: string;
  calibrationDate?: string;
}

export interface ReportUnit {
  /** Identifies the unit within the run (the store's unit id, or `slot-N`). */
  id: string;
  slot: number;
  mac?: string;
  serial?: string;
  /** null while the slot never finished (interrupted run). */
  verdict: 'pass' | 'fail' | null;
  flagged: boolean;
  reason?: string;
  startedAt: string;
  finishedAt?: string;
  steps: StepResult[];
  /** Correction factors a calibrate step applied (quantity -> ratio), when one ran. */
  calibration?: Record<string, number>;
  /** Stretches the unit's steps waited for a shared instrument (clock ms, like the steps' startedT). */
  waits: InstrumentWait[];
}

export interface InstrumentWait {
  instrument: string;
  step: string;
  fromT: number;
  toT: number;
  /** The wait ended in a timeout, not with the instrument. */
  timedOut: boolean;
}

export type UnitOutcome = 'pass' | 'fail' | 'incomplete';

export function unitOutcome(u: ReportUnit): UnitOutcome {
  return u.verdict ?? 'incomplete';
}

export interface RunCounts {
  units: number;
  passed: number;
  failed: number;
  incomplete: number;
  flagged: number;
  /** passed / units (0 for an empty run). */
  yield: number;
}

export function runCounts(run: ReportRun): RunCounts {
  const passed = run.units.filter((u) => u.verdict === 'pass').length;
  const failed = run.units.filter((u) => u.verdict === 'fail').length;
  const units = run.units.length;
  return { units, passed, failed, incomplete: units - passed - failed, flagged: run.units.filter((u) => u.flagged).length, yield: units === 0 ? 0 : passed / units };
}

/** Consecutive steps of one suite (steps without a suite - jig set-up, safe state - group as 'station'). */
export interface SuiteGroup {
  suite: string;
  steps: StepResult[];
}

export const NO_SUITE = 'station';

export function suiteGroups(steps: readonly StepResult[]): SuiteGroup[] {
  const out: SuiteGroup[] = [];
  for (const s of steps) {
    const suite = s.suite ?? NO_SUITE;
    const last = out[out.length - 1];
    if (last && last.suite === suite) last.steps.push(s);
    else out.push({ suite, steps: [s] });
  }
  return out;
}

/** Every measurement of a unit with the step it belongs to, in step order (final attempts only). */
export function unitMeasurements(u: ReportUnit): Array<{ step: StepResult; m: MeasurementResult }> {
  return u.steps.flatMap((step) => step.measurements.map((m) => ({ step, m })));
}

/** Stable textual key of a measurement across runs: the step it was taken in and its id. */
export function measurementKey(step: Pick<StepResult, 'name'>, m: Pick<MeasurementResult, 'id'>): string {
  return `${step.name} / ${m.id}`;
}
