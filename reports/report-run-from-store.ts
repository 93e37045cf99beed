import type { StepResult } from '../suites/model/step-result.ts';
import type { StoredRun, StoredStep, StoredUnit } from '../rig/store/types.ts';
import type { InstrumentWait, ReportRun, ReportUnit } from './report-run.ts';

/**
 * The store's read model as the reports see it. Mechanical: steps and measurements are the result
 * model's shapes already (the stored extras - stepIndex, seq - are dropped), units in slot order,
 * steps by index, instruments by model and serial, so the same store renders the same bytes.
 */
export function reportRunFromStore(s: StoredRun): ReportRun {
  return {
    runId: s.runId,
    station: s.station.name,
    plan: { name: s.plan.name, sha256: s.plan.sha256 },
    jig: { name: s.jig.name },
    ...(s.image ? { image: { name: s.image.name, ...(s.image.sha256 ? { sha256: s.image.sha256 } : {}), ...(s.image.version ? { version: s.image.version } : {}) } } : {}),
    instruments: [...s.instruments]
      .map((i) => ({ model: [i.manufacturer, i.model].filter(Boolean).join(' '), ...(i.serial ? { serial: i.serial } : {}), ...(i.calibrationDate ? { calibrationDate: i.calibrationDate } : {}) }))
      .sort((a, b) => a.model.localeCompare(b.model) || (a.serial ?? '').localeCompare(b.serial ?? '')),
    startedAt: s.startedAt,
    ...(s.finishedAt ? { finishedAt: s.finishedAt } : {}),
    aborted: s.status === 'aborted',
    units: [...s.units].sort((a, b) => a.slot - b.slot || a.attempt - b.attempt).map(unitFromStore),
  };
}

function unitFromStore(u: StoredUnit): ReportUnit {
  const calibration = Object.fromEntries([...u.calibration].sort((a, b) => a.quantity.localeCompare(b.quantity)).map((c) => [c.quantity, c.factor]));
  return {
    id: u.unitId,
    slot: u.slot,
    ...(u.mac ? { mac: u.mac } : {}),
    ...(u.serial ? { serial: u.serial } : {}),
    verdict: u.complete ? u.verdict : null,
    flagged: u.flagged,
    ...(u.reason ? { reason: u.reason } : {}),
    startedAt: u.startedAt,
    ...(u.finishedAt ? { finishedAt: u.finishedAt } : {}),
    steps: [...u.steps].sort((a, b) => a.index - b.index).map(stepFromStore),
    waits: waitsOf(u),
    ...(u.calibration.length ? { calibration } : {}),
  };
}

/** Each wait ends in an `acquired` (or `timeout`) event that says how long it lasted. */
function waitsOf(u: StoredUnit): InstrumentWait[] {
  return (u.timeline ?? [])
    .flatMap((e): InstrumentWait[] => (e.type === 'instrument' && (e.kind === 'acquired' || e.kind === 'timeout') && (e.waitedMs ?? 0) > 0 ? [{ instrument: e.instrument, step: e.step, fromT: e.t - e.waitedMs!, toT: e.t, timedOut: e.kind === 'timeout' }] : []))
    .sort((a, b) => a.fromT - b.fromT || a.instrument.localeCompare(b.instrument));
}

function stepFromStore(s: StoredStep): StepResult {
  const strip = <T extends { stepIndex: number; seq: number }>(list: T[]): Array<Omit<T, 'stepIndex' | 'seq'>> =>
    [...list].sort((a, b) => a.seq - b.seq).map(({ stepIndex: _i, seq: _s, ...m }) => m);
  return {
    ...s,
    measurements: strip(s.measurements),
    earlierAttempts: [...s.earlierAttempts].sort((a, b) => a.attempt - b.attempt).map((a) => ({ ...a, measurements: strip(a.measurements) })),
  };
}
