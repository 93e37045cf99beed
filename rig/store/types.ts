import type { ResultEvent } from '../../suites/model/events.ts';
import type { MeasurementResult } from '../../suites/model/measurement.ts';
import type { AttemptSummary, StepResult } from '../../suites/model/step-result.ts';

/**
 * The read model of the traceability store: what reports, `plugrig history` and the queries render
 * from. It mirrors suites/model (StepResult, MeasurementResult) field for field where it can, so a
 * run read back from SQLite or PostgreSQL renders exactly like the run the runner just produced; the
 * additions are the identities the runner does not know (station, instruments, firmware origin,
 * unit ids, slot attempts) and the run's lifecycle (running / finished / aborted).
 */

/** One station (a PC with its jig); ids are chosen by the station config, stable across runs. */
export interface StoredStation {
  id: string;
  name: string;
  /** Line or location, when the station config names one. */
  line?: string;
}

/** A firmware image as flashed: identified by its SHA-256 (the name alone can lie). */
export interface StoredFirmwareImage {
  sha256?: string;
  name: string;
  /** "1.18.42" when the image name or header says so. */
  version?: string;
  /** Where it came from: a file path, "synthetic", a release URL. */
  origin?: string;
}

/** A reference instrument a run used; `id` is the jig file's key for it (meters.<id>). */
export interface StoredInstrument {
  id: string;
  kind?: string;
  manufacturer?: string;
  model: string;
  serial?: string;
  firmware?: string;
  /** ISO date of its last calibration (from the jig file; instruments do not report it). */
  calibrationDate?: string;
}

export type RunStatus = 'running' | 'finished' | 'aborted';

/** A measurement as stored: the runner's MeasurementResult, plus where it belongs. */
export interface StoredMeasurement extends MeasurementResult {
  /** Index of the step (in the slot's program) that took it. */
  stepIndex: number;
  /** Position among the step's measurements of that attempt (the order the step took them). */
  seq: number;
}

/** An earlier attempt of a retried step, as stored (kept, not overwritten). */
export interface StoredAttempt extends Omit<AttemptSummary, 'measurements'> {
  measurements: StoredMeasurement[];
}

/** A finished step: the runner's StepResult, its measurements (and its earlier attempts') as stored. */
export interface StoredStep extends Omit<StepResult, 'measurements' | 'earlierAttempts'> {
  earlierAttempts: StoredAttempt[];
  measurements: StoredMeasurement[];
}

/** A calibration factor a calibrate step applied to a unit (OpenBeken's VoltageSet/CurrentSet/PowerSet ratio). */
export interface StoredCalibrationFactor {
  quantity: 'voltage' | 'current' | 'power';
  /** Reference / plug, averaged over the windows. */
  factor: number;
  /** The load it was calibrated at ("R25"). */
  load?: string;
  /** The reference meter it was calibrated against. */
  reference?: { model?: string; serial?: string; calibrationDate?: string };
  at: string;
}

/** A point on a unit's timeline: the station's slot-state and instrument events, without the slot. */
export type StoredUnitEvent = Omit<Extract<ResultEvent, { type: 'slot-state' }>, 'slot'> | Omit<Extract<ResultEvent, { type: 'instrument' }>, 'slot'>;

/**
 * One unit in one run: the slot it sat in, its identity (MAC from the ROM, operator serial when the
 * plan asks), its verdict and every finished step. `attempt` counts the slot attempts of this unit in
 * this run (1, or more when a station resumed it after a crash).
 */
export interface StoredUnit {
  unitId: string;
  runId: string;
  slot: number;
  mac?: string;
  serial?: string;
  /** Null while unfinished (and for a unit of an aborted run that never finished). */
  verdict: 'pass' | 'fail' | null;
  flagged: boolean;
  /** The slot ended by an abort (Ctrl-C, lid, E-stop), or the run was found unfinished on the next start. */
  aborted: boolean;
  /** True once slot-finished was stored. */
  complete: boolean;
  reason?: string;
  attempt: number;
  /** Key of the reference instrument the slot measured with (StoredRun.instruments[].id). */
  instrumentId?: string;
  /** Device template the unit was provisioned with. */
  template?: string;
  /** Everything the steps found about the unit (MAC, stock backup, calibration, ...), secrets redacted. */
  facts: Record<string, unknown>;
  plannedSteps: string[];
  steps: StoredStep[];
  calibration: StoredCalibrationFactor[];
  /** Slot state transitions and instrument waits/holds, in clock order (t); empty for a run without them. */
  timeline?: StoredUnitEvent[];
  startedAt: string;
  finishedAt?: string;
  ms?: number;
}

/** A whole run as stored. */
export interface StoredRun {
  runId: string;
  station: StoredStation;
  plan: { name: string; sha256: string; source: string };
  jig: { name: string; source: string };
  image?: StoredFirmwareImage;
  instruments: StoredInstrument[];
  status: RunStatus;
  startedAt: string;
  finishedAt?: string;
  /** When the next start (or an abort) marked it aborted, and why. */
  abortedAt?: string;
  abortReason?: string;
  units: StoredUnit[];
}

/** One row of a run list. */
export interface StoredRunSummary {
  runId: string;
  stationId: string;
  plan: string;
  image?: StoredFirmwareImage;
  status: RunStatus;
  startedAt: string;
  finishedAt?: string;
  units: number;
  passed: number;
  failed: number;
}

/** What reports and the CLI read the store through (SQLite and PostgreSQL alike). */
export interface RunReader {
  /** Newest first. */
  listRuns(filter?: { stationId?: string; limit?: number }): Promise<StoredRunSummary[]>;
  /** Undefined when no run has this id. */
  readRun(runId: string): Promise<StoredRun | undefined>;
}
