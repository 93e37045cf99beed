import { randomUUID } from 'node:crypto';
import type { ResultEvent, ResultSink } from '../../suites/model/events.ts';
import type { AbortedRun, RunMeta, SqliteStore } from './sqlite-store.ts';
import type { StoredCalibrationFactor } from './types.ts';

export interface StoreSinkOptions {
  meta: RunMeta;
  /** Slot id → the jig key of the reference meter the slot measures with. */
  slotInstruments?: ReadonlyMap<number, string>;
  /** Called with the station's earlier runs that run-started found unfinished and marked aborted. */
  onAborted?: (runs: AbortedRun[]) => void;
  /**
   * Identifies this writer's slot attempts (default: a fresh UUID). A process that replays its own
   * events passes the same id and changes nothing; a station resuming a crashed run's units uses a
   * new one, so they get a new slot attempt.
   */
  sessionId?: string;
}

/**
 * Writes the runner's events into the station's SQLite store as they happen: each finished step is
 * committed at step-finished, in one transaction with its measurements (and the calibration factors
 * the step set). Every write is keyed by run / unit / step ids, so a replayed event changes nothing.
 * At run-started it first marks this station's runs that were left unfinished as aborted.
 */
export class StoreSink implements ResultSink {
  readonly #store: SqliteStore;
  readonly #o: StoreSinkOptions;
  /** Slot attempts of this process are told apart from a crashed process's by this id. */
  readonly #session: string;
  #runId: string | undefined;
  readonly #units = new Map<number, { unitId: string; attempt: number }>();
  /** Calibration factors seen in unit facts, stored with the step that set them when it finishes. */
  readonly #pendingCalibration = new Map<number, StoredCalibrationFactor[]>();

  constructor(store: SqliteStore, o: StoreSinkOptions) {
    this.#store = store;
    this.#o = o;
    this.#session = o.sessionId ?? randomUUID();
  }

  get runId(): string | undefined {
    return this.#runId;
  }

  /** The first write the store refused (the run then fails its units and exits with the store's code). */
  get failure(): Error | undefined {
    return this.#failure;
  }
  #failure: Error | undefined;

  emit(e: ResultEvent): void {
    try {
      this.#emit(e);
    } catch (err) {
      this.#failure ??= err as Error;
      throw err;
    }
  }

  #emit(e: ResultEvent): void {
    switch (e.type) {
      case 'run-started': {
        const aborted = this.#store.abortUnfinishedRuns(this.#o.meta.station.id, { reason: 'found unfinished when the next run started' });
        if (aborted.length) this.#o.onAborted?.(aborted);
        this.#runId = e.run.runId;
        this.#store.beginRun(e.run, this.#o.meta);
        return;
      }
      case 'slot-started': {
        const runId = this.#need(e.type);
        const instrumentId = this.#o.slotInstruments?.get(e.slot);
        this.#units.set(e.slot, this.#store.startUnit({ runId, slot: e.slot, plannedSteps: e.steps.map((s) => s.name), at: e.at, sessionId: this.#session, ...(instrumentId ? { instrumentId } : {}) }));
        return;
      }
      case 'unit': {
        const u = this.#units.get(e.slot);
        if (!u) return;
        this.#store.addUnitFacts(u.unitId, e.facts);
        const cal = calibrationFactors(e.facts, '');
        if (cal.length) this.#pendingCalibration.set(e.slot, [...(this.#pendingCalibration.get(e.slot) ?? []), ...cal]);
        return;
      }
      case 'step-finished': {
        const u = this.#units.get(e.slot);
        if (!u) return;
        // The factors are dated by the step that set them (deterministic, unlike a wall-clock read here).
        const cal = (this.#pendingCalibration.get(e.slot) ?? []).map((c) => ({ ...c, at: e.result.finishedAt }));
        this.#store.commitStep(u.unitId, u.attempt, e.result, cal);
        this.#pendingCalibration.delete(e.slot);
        return;
      }
      case 'slot-finished': {
        const u = this.#units.get(e.slot);
        if (!u) return;
        this.#store.finishUnit(u.unitId, u.attempt, e.result);
        return;
      }
      case 'slot-state':
      case 'instrument': {
        const u = this.#units.get(e.slot);
        if (!u) return;
        const { slot: _slot, ...event } = e;
        this.#store.addUnitEvent(u.unitId, u.attempt, event);
        return;
      }
      case 'run-finished':
        this.#store.finishRun(e.run.runId, e.finishedAt);
        return;
      default:
        // measurement and check events arrive again inside step-finished, which is what is stored.
        return;
    }
  }

  #need(what: string): string {
    if (!this.#runId) throw new Error(`StoreSink: ${what} before run-started`);
    return this.#runId;
  }
}

/** The calibrate suite's unit fact `calibration: { load, ratios: {voltage, current, power}, reference }`. */
export function calibrationFactors(facts: Record<string, unknown>, at: string): StoredCalibrationFactor[] {
  const c = facts.calibration as { load?: unknown; ratios?: Record<string, unknown>; reference?: Record<string, unknown> } | undefined;
  if (!c || typeof c !== 'object' || !c.ratios) return [];
  const ref = c.reference ?? {};
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const reference = {
    ...(str(ref.model) ? { model: str(ref.model)! } : {}),
    ...(str(ref.serial) ? { serial: str(ref.serial)! } : {}),
    ...(str(ref.calibrationDate) ? { calibrationDate: str(ref.calibrationDate)! } : {}),
  };
  const out: StoredCalibrationFactor[] = [];
  for (const q of ['voltage', 'current', 'power'] as const) {
    const f = c.ratios[q];
    if (typeof f === 'number') out.push({ quantity: q, factor: f, ...(typeof c.load === 'string' ? { load: c.load } : {}), reference, at });
  }
  return out;
}
