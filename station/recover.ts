import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../rig/core/errors.ts';
import { closeRecoveredRun, recommitUnitRecord } from '../rig/store/recommit.ts';
import type { SqliteStore } from '../rig/store/sqlite-store.ts';
import { UNIT_RECORD_SCHEMA, type UnitRecord } from '../reports/unit-record.ts';
import { readStationState, writeStationState, type SlotStanding, type StationState } from './station-state.ts';

/** A run directory whose station state file still says running while its process is gone. */
export interface InterruptedRun {
  dir: string;
  state: StationState;
  /** Slots whose unit is not finished, with where each stood. */
  unfinished: Array<{ slot: number; standing: SlotStanding }>;
}

/** Is a process with this pid alive (signal 0 probes without sending anything)? */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The run in `dir` if its station died mid-run (status running, pid gone); undefined otherwise. */
export function findInterrupted(dir: string): InterruptedRun | undefined {
  const state = readStationState(dir);
  if (!state || state.status !== 'running' || processAlive(state.pid)) return undefined;
  bringForwardFromRecords(dir, state);
  return { dir, state, unfinished: unfinishedSlots(state) };
}

/** A run directory's unit record, if it is one of this run's (undefined when absent or not a record). */
function readUnitRecord(path: string, runId: string | undefined): UnitRecord | undefined {
  let rec: UnitRecord;
  try {
    rec = JSON.parse(readFileSync(path, 'utf8')) as UnitRecord;
  } catch {
    return undefined; // absent (or, were it ever torn, not a record: resume keeps it as an interrupted try)
  }
  if (rec.schema !== UNIT_RECORD_SCHEMA || (runId !== undefined && rec.run?.runId !== undefined && rec.run.runId !== runId)) return undefined;
  return rec;
}

/**
 * A slot whose unit record says complete is finished, whatever the state file says. The station
 * writes every event to the unit record first and to the state file after it, so a SIGKILL between
 * the two leaves the state one event behind: a unit finished and recorded, its slot still standing
 * in its last step. Left so, a resume would test that unit again and record it twice. This brings
 * each such slot's standing forward from its record (in memory; the caller writes the state) and
 * returns those slots.
 */
export function bringForwardFromRecords(dir: string, state: StationState, at = new Date().toISOString()): number[] {
  const out: number[] = [];
  for (const [id, s] of Object.entries(state.slots)) {
    if (s.complete) continue;
    const rec = readUnitRecord(join(dir, `slot-${id}.json`), state.run?.runId);
    if (!rec?.complete || rec.slot !== Number(id)) continue;
    s.complete = true;
    s.phase = 'done';
    s.finishedSteps = rec.steps.length;
    s.plannedSteps = rec.plannedSteps.length;
    if (rec.verdict) s.verdict = rec.verdict;
    for (const k of ['mac', 'serial']) if (rec.unit[k] !== undefined) s.unit[k] = rec.unit[k];
    s.updatedAt = at;
    listKept(readdirSync(dir), Number(id), s);
    state.history.push({ at, event: `slot ${id}: its unit record says complete (the station died before its state file did): finished, not tested again` });
    out.push(Number(id));
  }
  return out;
}

/**
 * Every unit record of a run directory, for bringing the store up to them: per slot, the kept
 * interrupted tries in order, then slot-N.json.
 */
export function unitRecordsOf(dir: string, runId: string | undefined): Array<{ file: string; record: UnitRecord }> {
  const files = readdirSync(dir).flatMap((f) => {
    const m = /^slot-(\d+)(?:\.interrupted-(\d+))?\.json$/.exec(f);
    return m ? [{ f, slot: Number(m[1]), k: m[2] === undefined ? Infinity : Number(m[2]) }] : [];
  });
  files.sort((a, b) => a.slot - b.slot || a.k - b.k);
  return files.flatMap(({ f }) => {
    const record = readUnitRecord(join(dir, f), runId);
    return record ? [{ file: f, record }] : [];
  });
}

/** Interrupted runs among the run directories under `runsDir` (e.g. runs/). */
export function findInterruptedRuns(runsDir: string): InterruptedRun[] {
  if (!existsSync(runsDir)) return [];
  const out: InterruptedRun[] = [];
  for (const name of readdirSync(runsDir).sort()) {
    try {
      const r = findInterrupted(join(runsDir, name));
      if (r) out.push(r);
    } catch {
      // Not a run directory, or an unreadable one: not ours to judge here.
    }
  }
  return out;
}

export function unfinishedSlots(state: StationState): Array<{ slot: number; standing: SlotStanding }> {
  return Object.entries(state.slots)
    .filter(([, s]) => !s.complete)
    .map(([id, s]) => ({ slot: Number(id), standing: s }))
    .sort((a, b) => a.slot - b.slot);
}

const DIED = 'the station process';

/** Was this state aborted because its station died (found by a later start), rather than by a signal, the lid or the E-stop? */
export function abortedByDeath(state: StationState): boolean {
  return state.status === 'aborted' && state.abortReason?.startsWith(`${DIED} (pid `) === true;
}

/**
 * Mark an interrupted run aborted in its state file (the crash is history from now on) and say
 * where each unfinished slot stood.
 */
export async function markAborted(run: InterruptedRun, at = new Date().toISOString()): Promise<StationState> {
  const reason = `${DIED} (pid ${run.state.pid}) died while the run was in progress`;
  const state: StationState = { ...run.state, status: 'aborted', abortReason: reason, history: [...run.state.history, { at, event: `aborted: ${reason} (found at the next start)` }], updatedAt: at };
  await writeStationState(run.dir, state);
  return state;
}

/** One line per unfinished slot: phase, step, progress, unit. */
export function describeUnfinished(run: { unfinished: Array<{ slot: number; standing: SlotStanding }> }): string[] {
  return run.unfinished.map(({ slot, standing: s }) => {
    const unit = [s.unit.mac ? `MAC ${String(s.unit.mac)}` : undefined, s.unit.serial ? `serial ${String(s.unit.serial)}` : undefined].filter(Boolean).join(', ');
    return `slot ${slot}: stood in ${s.phase}${s.step ? ` ('${s.step}', attempt ${s.attempt ?? 1})` : ''}, ${s.finishedSteps} of ${s.plannedSteps} steps recorded${unit ? `, ${unit}` : ''}`;
  });
}

/**
 * Bring the store up to a run directory's unit records (rig/store/recommit.ts): a station killed
 * between a record's write and the store's leaves the store one event behind the record. A resume
 * needs its run in this store (`required`); a died run found beside a fresh one may be another store's.
 * Returns how many steps and units the store lacked.
 */
export function recommitRunRecords(store: SqliteStore, dir: string, state: StationState, o: { required: boolean }): { steps: number; units: number } {
  const out = { steps: 0, units: 0 };
  const runId = state.run?.runId;
  if (!runId) return out; // killed before its run began: no record, nothing stored
  const records = unitRecordsOf(dir, runId);
  if (!store.db.prepare('SELECT 1 FROM runs WHERE run_id = ?').get(runId)) {
    // Killed between its state's first write and the store's, there is no record yet either.
    if (o.required && records.length) throw new ConfigError(`--resume ${dir}: run ${runId} is not in the store ${store.path}; give the --store it ran with`, { step: 'args' });
    return out;
  }
  for (const { record } of records) {
    const r = recommitUnitRecord(store, runId, record);
    out.steps += r.stepsAdded;
    if (r.finished) out.units++;
  }
  return out;
}

/**
 * A died run whose every unit is recorded complete (the station died after the last record, before
 * it ended the run): close it in the store and in its state file, from the records, testing nothing
 * again. The store first: a start killed in between finds the state still aborted and closes it again.
 */
export async function closeFromRecords(store: SqliteStore, dir: string, state: StationState, at = new Date().toISOString()): Promise<StationState> {
  recommitRunRecords(store, dir, state, { required: true });
  if (state.run) closeRecoveredRun(store, state.run.runId, at);
  const closed: StationState = { ...state, pid: process.pid, status: 'finished', history: [...state.history, { at, event: `finished: closed by pid ${process.pid}, every unit recorded complete` }], updatedAt: at };
  delete closed.abortReason;
  await writeStationState(dir, closed);
  return closed;
}

/**
 * The kept tries of a slot on disk (slot-N.interrupted-K.json → K), each listed in its standing: a start
 * killed between its renames and the state write that lists them left kept files the state does not name.
 */
function listKept(files: readonly string[], slot: number, standing: SlotStanding | undefined): Map<string, number> {
  const keptK = new Map(files.flatMap((f) => {
    const m = new RegExp(`^slot-${slot}\\.interrupted-(\\d+)\\.json$`).exec(f);
    return m ? [[f, Number(m[1])] as const] : [];
  }));
  if (standing) for (const f of [...keptK.keys()].sort((a, b) => keptK.get(a)! - keptK.get(b)!)) if (!standing.interrupted.includes(f)) standing.interrupted.push(f);
  return keptK;
}

/**
 * Before a resumed run re-tests `slots`, keep each one's interrupted record and TAP file under a new
 * name (slot-N.interrupted-K.json/.tap), listed in the state: finished steps are never overwritten.
 * K follows the kept files on disk as well as the list: a start killed between its renames and the
 * state write that lists them left kept files the state does not name yet, which are listed now.
 */
export async function interruptPartialRecords(dir: string, state: StationState, slots: readonly number[]): Promise<void> {
  const files = readdirSync(dir);
  for (const slot of slots) {
    const standing = state.slots[String(slot)];
    if (standing?.complete) continue;
    const keptK = listKept(files, slot, standing);
    const rec = join(dir, `slot-${slot}.json`);
    if (!existsSync(rec)) continue;
    const k = Math.max(standing?.interrupted.length ?? 0, ...keptK.values()) + 1;
    const kept = `slot-${slot}.interrupted-${k}.json`;
    await rename(rec, join(dir, kept));
    const tap = join(dir, `slot-${slot}.tap`);
    if (existsSync(tap)) await rename(tap, join(dir, `slot-${slot}.interrupted-${k}.tap`));
    if (standing) standing.interrupted.push(kept);
  }
  await writeStationState(dir, state);
}
