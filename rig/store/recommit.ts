import type { StepResult } from '../../suites/model/step-result.ts';
import { storeFailure, type SqliteStore, unitIdOf } from './sqlite-store.ts';
import { calibrationFactors } from './store-sink.ts';
import type { StoredCalibrationFactor } from './types.ts';

/**
 * A unit record as a killed station left it on disk (reports/unit-record.ts: slot-N.json, or a kept
 * slot-N.interrupted-K.json), as far as the store needs it.
 */
export interface RecordedUnit {
  slot: number;
  complete: boolean;
  verdict: 'pass' | 'fail' | null;
  flagged: boolean;
  reason?: string;
  unit: Record<string, unknown>;
  steps: StepResult[];
  /** The slot-started moment: the store's slot attempt carries the same one. */
  startedAt: string;
  finishedAt?: string;
  ms?: number;
  aborted?: boolean;
}

export interface Recommitted {
  unitId: string;
  /** The slot attempt the record's steps belong to (undefined: a record with nothing to commit). */
  attempt?: number;
  /** Steps the store lacked, committed now. */
  stepsAdded: number;
  /** The unit was not complete in the store and is now. */
  finished: boolean;
}

/**
 * Bring the store up to a unit record. The station writes every event to the unit record first, then
 * the state file, then the store, so a SIGKILL between those writes leaves the store up to one event
 * behind the record: the last finished step, or the unit's completion. This commits what the store
 * lacks, in one transaction, and changes nothing that is there already, so running it again (a resume
 * killed in turn) or on a record the store has in full is harmless. The record's steps go to the slot
 * attempt that wrote them, found by its start moment, never to a new one: a step is stored once.
 */
export function recommitUnitRecord(store: SqliteStore, runId: string, rec: RecordedUnit): Recommitted {
  const unitId = unitIdOf(runId, rec.slot);
  const db = store.db;
  const tx = db.transaction((): Recommitted => {
    let attempt = (db.prepare('SELECT attempt FROM slot_attempts WHERE unit_id = ? AND started_at = ? ORDER BY attempt LIMIT 1').get(unitId, rec.startedAt) as { attempt: number } | undefined)?.attempt;
    if (attempt === undefined) {
      // The kill came between the record's slot start and the store's: nothing finished yet.
      if (!rec.complete && rec.steps.length === 0) return { unitId, stepsAdded: 0, finished: false };
      db.prepare('INSERT INTO units (unit_id, run_id, slot, planned_steps, started_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (unit_id) DO NOTHING').run(unitId, runId, rec.slot, JSON.stringify(rec.steps.map((s) => s.name)), rec.startedAt);
      attempt = (db.prepare('SELECT COALESCE(MAX(attempt), 0) + 1 AS n FROM slot_attempts WHERE unit_id = ?').get(unitId) as { n: number }).n;
      db.prepare('INSERT INTO slot_attempts (unit_id, attempt, session_id, started_at) VALUES (?, ?, ?, ?)').run(unitId, attempt, `record:${rec.startedAt}`, rec.startedAt);
    }
    if (Object.keys(rec.unit).length) store.addUnitFacts(unitId, rec.unit);
    const cal = calibrationFactors(rec.unit, '');
    let stepsAdded = 0;
    for (const s of rec.steps) {
      // The factors go with the step that set them (its data holds the same ratios), dated by it.
      const sets = cal.length > 0 && setsRatios(s, rec.unit);
      if (store.commitStep(unitId, attempt, s, sets ? cal.map((c): StoredCalibrationFactor => ({ ...c, at: s.finishedAt })) : [])) stepsAdded++;
    }
    let finished = false;
    if (rec.complete && rec.verdict !== null) {
      const row = db.prepare('SELECT u.complete, a.finished_at FROM units u JOIN slot_attempts a ON a.unit_id = u.unit_id WHERE u.unit_id = ? AND a.attempt = ?').get(unitId, attempt) as { complete: number; finished_at: string | null };
      if (!row.complete || row.finished_at === null) {
        const first = rec.steps[0];
        const last = rec.steps[rec.steps.length - 1];
        // Records written before `ms` was kept: the span of the steps' model times.
        const ms = rec.ms ?? (first && last ? last.finishedT - first.startedT : 0);
        store.finishUnit(unitId, attempt, { slot: rec.slot, verdict: rec.verdict, flagged: rec.flagged, aborted: rec.aborted ?? false, unit: rec.unit, steps: rec.steps, ...(rec.reason !== undefined ? { reason: rec.reason } : {}), ms, startedAt: rec.startedAt, finishedAt: rec.finishedAt ?? rec.startedAt });
        finished = !row.complete;
      }
    }
    return { unitId, attempt, stepsAdded, finished };
  });
  return immediately(store, tx);
}

/**
 * Close a run in the store whose every unit is complete (its station died after the last unit's
 * record and before it ended the run). Returns false, changing nothing, while a unit is unfinished.
 */
export function closeRecoveredRun(store: SqliteStore, runId: string, finishedAt: string): boolean {
  const db = store.db;
  const tx = db.transaction((): boolean => {
    const open = (db.prepare('SELECT COUNT(*) AS n FROM units WHERE run_id = ? AND complete = 0').get(runId) as { n: number }).n;
    if (open > 0) return false;
    return db.prepare("UPDATE runs SET status = 'finished', finished_at = ? WHERE run_id = ? AND status IN ('running', 'aborted')").run(finishedAt, runId).changes > 0;
  });
  return immediately(store, tx);
}

/** Run a write transaction (BEGIN IMMEDIATE); SQLite refusing it (full, locked, I/O) is a StoreError. */
function immediately<T>(store: SqliteStore, tx: { immediate(): T }): T {
  try {
    return tx.immediate();
  } catch (e) {
    throw storeFailure(e, store.path) ?? e;
  }
}

function setsRatios(s: StepResult, unit: Record<string, unknown>): boolean {
  const ratios = (unit.calibration as { ratios?: unknown } | undefined)?.ratios;
  const data = s.data as { ratios?: unknown } | undefined;
  return ratios !== undefined && data?.ratios !== undefined && JSON.stringify(data.ratios) === JSON.stringify(ratios);
}
