import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../rig/core/atomic-file.ts';
import { join } from 'node:path';
import { confinedPath } from '../rig/core/confined-path.ts';
import { ConfigError } from '../rig/core/errors.ts';
import type { ResultEvent, ResultSink, RunInfo } from '../suites/model/events.ts';
import type { StepKind } from '../suites/model/step-result.ts';
import { SlotStateMachine, type SlotPhase } from './slot-state.ts';

export const STATION_STATE_SCHEMA = 'plugrig.station-state/1';
export const STATION_STATE_FILE = 'station-state.json';

export interface SlotStanding {
  phase: SlotPhase;
  /** The step in progress (or the last one started). */
  step?: string;
  stepIndex?: number;
  attempt?: number;
  /** Steps whose results are in the unit record. */
  finishedSteps: number;
  plannedSteps: number;
  /** MAC, serial, ... as far as known. */
  unit: Record<string, unknown>;
  verdict?: 'pass' | 'fail';
  /** The unit record says complete (slot-finished persisted). */
  complete: boolean;
  /** Unit records of earlier, interrupted tries of this slot (kept, never overwritten). */
  interrupted: string[];
  updatedAt: string;
}

/** The run directory's station state file: where every slot stood, and how the run ended. */
export interface StationState {
  schema: typeof STATION_STATE_SCHEMA;
  run?: RunInfo;
  pid: number;
  /** running until the station ends it; a file still saying running belongs to a process that died. */
  status: 'running' | 'finished' | 'aborted';
  /** Why the run was aborted: a signal, the lid, the E-stop, or a crash found by the next start. */
  abortReason?: string;
  /** Earlier ends of this run directory (a crash found, a resume started). */
  history: Array<{ at: string; event: string }>;
  slots: Record<string, SlotStanding>;
  startedAt: string;
  updatedAt: string;
}

export function readStationState(dir: string): StationState | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, STATION_STATE_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${join(dir, STATION_STATE_FILE)}: ${(e as Error).message}`, { step: 'station-state' });
  }
  const s = JSON.parse(text) as StationState;
  if (s.schema !== STATION_STATE_SCHEMA) throw new ConfigError(`${join(dir, STATION_STATE_FILE)} is not a station state file (schema ${String(s.schema)})`, { step: 'station-state' });
  return s;
}

/** The whole file, atomically and durably (rig/core/atomic-file.ts). */
export async function writeStationState(dir: string, state: StationState): Promise<void> {
  await writeFileAtomic(confinedPath(dir, STATION_STATE_FILE, 'station state'), JSON.stringify(state, null, 2) + '\n');
}

/**
 * Keeps the station state file current from the result events: every slot's phase (through its
 * state machine), step and progress. It listens after the unit records, so a step counted here is
 * already in its record. Writes never overlap; the newest state wins.
 */
export class StationStateWriter implements ResultSink {
  readonly dir: string;
  readonly state: StationState;
  readonly #machines = new Map<number, SlotStateMachine>();
  readonly #now: () => string;
  readonly #onPhase: ((slot: number, from: SlotPhase, to: SlotPhase, step?: string) => void) | undefined;
  #writing: Promise<void> = Promise.resolve();
  readonly #planned = new Map<number, Array<{ name: string; kind: StepKind; suite?: string }>>();

  constructor(dir: string, o: { previous?: StationState; slots?: readonly number[]; wallTime?: () => string; onPhase?: (slot: number, from: SlotPhase, to: SlotPhase, step?: string) => void } = {}) {
    this.dir = dir;
    this.#now = o.wallTime ?? ((): string => new Date().toISOString());
    this.#onPhase = o.onPhase;
    const at = this.#now();
    this.state = o.previous
      ? { ...o.previous, pid: process.pid, status: 'running', history: [...o.previous.history, { at, event: `resumed by pid ${process.pid}` }], updatedAt: at }
      : { schema: STATION_STATE_SCHEMA, pid: process.pid, status: 'running', history: [], slots: {}, startedAt: at, updatedAt: at };
    delete this.state.abortReason;
    // Every slot of the run is listed from the start: one killed before it began is still unfinished.
    for (const slot of o.slots ?? []) this.state.slots[String(slot)] ??= { phase: 'idle', finishedSteps: 0, plannedSteps: 0, unit: {}, complete: false, interrupted: [], updatedAt: at };
  }

  standing(slot: number): SlotStanding | undefined {
    return this.state.slots[String(slot)];
  }

  async emit(e: ResultEvent): Promise<void> {
    const at = this.#now();
    switch (e.type) {
      case 'run-started':
        this.state.run ??= e.run;
        break;
      case 'slot-started': {
        const prev = this.state.slots[String(e.slot)];
        this.#machines.set(e.slot, new SlotStateMachine(e.slot));
        this.state.slots[String(e.slot)] = { phase: 'idle', finishedSteps: 0, plannedSteps: e.steps.length, unit: {}, complete: false, interrupted: prev?.interrupted ?? [], updatedAt: at };
        break;
      }
      case 'step-started': {
        const s = this.state.slots[String(e.slot)];
        if (!s) return;
        const planned = this.#planned.get(e.slot)?.[e.index];
        if (planned) this.#move(e.slot, s, planned, e.name);
        s.step = e.name;
        s.stepIndex = e.index;
        s.attempt = e.attempt;
        s.updatedAt = at;
        break;
      }
      case 'step-finished': {
        const s = this.state.slots[String(e.slot)];
        if (!s) return;
        s.finishedSteps++;
        s.updatedAt = at;
        break;
      }
      case 'unit': {
        const s = this.state.slots[String(e.slot)];
        if (!s) return;
        Object.assign(s.unit, pickIdentity(e.facts));
        break;
      }
      case 'slot-finished': {
        const s = this.state.slots[String(e.slot)];
        if (!s) return;
        const m = this.#machines.get(e.slot);
        if (m && m.phase !== 'safe') this.#moveTo(e.slot, s, 'safe');
        this.#moveTo(e.slot, s, 'done');
        s.verdict = e.result.verdict;
        s.complete = true;
        Object.assign(s.unit, pickIdentity(e.result.unit));
        s.updatedAt = at;
        break;
      }
      default:
        return;
    }
    if (e.type === 'slot-started') this.#planned.set(e.slot, e.steps);
    await this.flush();
  }

  /** End the run: finished, or aborted with a reason (the state file keeps it for the next start). */
  async end(status: 'finished' | 'aborted', reason?: string): Promise<void> {
    this.state.status = status;
    if (reason) this.state.abortReason = reason;
    this.state.history.push({ at: this.#now(), event: status === 'finished' ? 'finished' : `aborted: ${reason ?? 'unknown'}` });
    await this.flush();
  }

  /** Persist the current state (queued after any write in flight). */
  flush(): Promise<void> {
    this.state.updatedAt = this.#now();
    const snapshot = JSON.parse(JSON.stringify(this.state)) as StationState;
    const next = this.#writing.catch(() => undefined).then(() => writeStationState(this.dir, snapshot));
    this.#writing = next;
    return next;
  }

  #move(slot: number, s: SlotStanding, step: { name: string; kind: StepKind; suite?: string }, name: string): void {
    const m = this.#machines.get(slot);
    if (!m) return;
    const from = m.phase;
    const to = m.next(step);
    if (to !== from) {
      s.phase = to;
      this.#onPhase?.(slot, from, to, name);
    }
  }

  #moveTo(slot: number, s: SlotStanding, p: SlotPhase): void {
    const m = this.#machines.get(slot);
    if (!m) return;
    const from = m.phase;
    m.to(p);
    s.phase = p;
    if (from !== p) this.#onPhase?.(slot, from, p);
  }
}

function pickIdentity(facts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['mac', 'serial']) if (facts[k] !== undefined) out[k] = facts[k];
  return out;
}
