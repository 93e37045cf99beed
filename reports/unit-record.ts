import { makeDirectory } from '../rig/core/make-directory.ts';
import { writeFileAtomic } from '../rig/core/atomic-file.ts';
import { confinedPath } from '../rig/core/confined-path.ts';
import type { ResultEvent, ResultSink, RunInfo } from '../suites/model/events.ts';
import type { SlotResult, StepResult } from '../suites/model/step-result.ts';
import { writeRefused } from './write-refused.ts';

export const UNIT_RECORD_SCHEMA = 'plugrig.unit-record/1';

/** The per-unit JSON record (`slot-N.json`), complete after every finished step. */
export interface UnitRecord {
  schema: typeof UNIT_RECORD_SCHEMA;
  run?: RunInfo;
  slot: number;
  /** False until the slot finished: a record left incomplete is a unit interrupted mid-run. */
  complete: boolean;
  verdict: SlotResult['verdict'] | null;
  flagged: boolean;
  reason?: string;
  unit: Record<string, unknown>;
  /** The steps the slot will run, in order, and those finished so far (with measurements and checks). */
  plannedSteps: string[];
  steps: StepResult[];
  startedAt: string;
  finishedAt?: string;
  /** Set with complete: the slot's duration (model ms) and whether an abort cut it, as the store keeps them. */
  ms?: number;
  aborted?: boolean;
  updatedAt: string;
}

/**
 * Persists each slot's unit record whenever something final happens (slot start, unit facts, every
 * finished step, slot end): the whole record is written to a temporary file, fsync'ed and renamed
 * over `slot-N.json`, then the directory is fsync'ed. A SIGKILL (or power loss) leaves the previous
 * or the new record, never a torn one, and loses at most the step in progress.
 */
export class UnitRecordWriter implements ResultSink {
  readonly #dir: string;
  #run: RunInfo | undefined;
  readonly #records = new Map<number, UnitRecord>();
  /** Writes of one slot never overlap (two renames racing could land the older one last). */
  readonly #queues = new Map<number, Promise<void>>();
  readonly #now: () => string;
  readonly paths = new Map<number, string>();

  constructor(dir: string, o: { wallTime?: () => string } = {}) {
    this.#dir = dir;
    this.#now = o.wallTime ?? ((): string => new Date().toISOString());
  }

  async emit(e: ResultEvent): Promise<void> {
    switch (e.type) {
      case 'run-started':
        this.#run = e.run;
        return;
      case 'slot-started':
        this.#records.set(e.slot, {
          schema: UNIT_RECORD_SCHEMA,
          ...(this.#run ? { run: this.#run } : {}),
          slot: e.slot,
          complete: false,
          verdict: null,
          flagged: false,
          unit: {},
          plannedSteps: e.steps.map((s) => s.name),
          steps: [],
          startedAt: e.at,
          updatedAt: e.at,
        });
        return this.#persist(e.slot);
      case 'unit': {
        const r = this.#records.get(e.slot);
        if (!r) return;
        Object.assign(r.unit, e.facts);
        return this.#persist(e.slot);
      }
      case 'step-finished': {
        const r = this.#records.get(e.slot);
        if (!r) return;
        r.steps.push(e.result);
        return this.#persist(e.slot);
      }
      case 'slot-finished': {
        const r = this.#records.get(e.slot);
        if (!r) return;
        r.complete = true;
        r.verdict = e.result.verdict;
        r.flagged = e.result.flagged;
        if (e.result.reason) r.reason = e.result.reason;
        r.unit = { ...r.unit, ...e.result.unit };
        r.finishedAt = e.result.finishedAt;
        r.ms = e.result.ms;
        r.aborted = e.result.aborted;
        return this.#persist(e.slot);
      }
      default:
        return;
    }
  }

  #persist(slot: number): Promise<void> {
    const prev = this.#queues.get(slot) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => this.#write(slot));
    this.#queues.set(slot, next);
    return next;
  }

  async #write(slot: number): Promise<void> {
    const r = this.#records.get(slot)!;
    r.updatedAt = this.#now();
    const path = confinedPath(this.#dir, `slot-${slot}.json`, 'unit record');
    try {
      await makeDirectory(this.#dir);
      await writeFileAtomic(path, JSON.stringify(r, null, 2) + '\n');
    } catch (e) {
      // The unit's record is its traceability: a refused write fails the unit with the store's class.
      throw writeRefused('unit record', path, e, { slot, ...(this.#run ? { run: this.#run.runId } : {}), step: 'unit-record' });
    }
    this.paths.set(slot, path);
  }
}
