import { existsSync, readdirSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
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
  return { dir, state, unfinished: unfinishedSlots(state) };
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

/**
 * Mark an interrupted run aborted in its state file (the crash is history from now on) and say
 * where each unfinished slot stood.
 */
export async function markAborted(run: InterruptedRun, at = new Date().toISOString()): Promise<StationState> {
  const reason = `the station process (pid ${run.state.pid}) died while the run was in progress`;
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
    const keptK = new Map(files.flatMap((f) => {
      const m = new RegExp(`^slot-${slot}\\.interrupted-(\\d+)\\.json$`).exec(f);
      return m ? [[f, Number(m[1])] as const] : [];
    }));
    if (standing) for (const f of [...keptK.keys()].sort((a, b) => keptK.get(a)! - keptK.get(b)!)) if (!standing.interrupted.includes(f)) standing.interrupted.push(f);
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
