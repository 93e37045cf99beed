import type { MeasurementResult } from './measurement.ts';
import type { CheckResult, SlotResult, StepKind, StepResult } from './step-result.ts';

/** What a run is, for every listener's header. */
export interface RunInfo {
  runId: string;
  plan: { name: string; sha256: string; source: string };
  jig: { name: string; source: string };
  image?: { name: string; sha256?: string };
  startedAt: string;
}

export type ResultEvent =
  | { type: 'run-started'; run: RunInfo }
  | { type: 'slot-started'; slot: number; steps: Array<{ name: string; kind: StepKind; suite?: string }>; at: string }
  | { type: 'step-started'; slot: number; index: number; name: string; attempt: number; at: string }
  | { type: 'measurement'; slot: number; index: number; step: string; measurement: MeasurementResult }
  | { type: 'check'; slot: number; index: number; step: string; check: CheckResult }
  | { type: 'unit'; slot: number; facts: Record<string, unknown> }
  | { type: 'step-finished'; slot: number; result: StepResult }
  | { type: 'slot-finished'; slot: number; result: SlotResult }
  | { type: 'run-finished'; run: RunInfo; slots: SlotResult[]; finishedAt: string }
  /** A slot's state machine moved (station/slot-state.ts: idle, power-link, flash, ... safe, done). */
  | { type: 'slot-state'; slot: number; state: string; from: string; step?: string; t: number; at: string }
  /**
   * A step waited for, took or gave back a shared instrument (station/instrument-lease.ts); t is
   * clock time, so a report can draw each slot's waits and holds on one timeline.
   */
  | { type: 'instrument'; slot: number; step: string; instrument: string; kind: 'wait' | 'acquired' | 'released' | 'timeout'; t: number; at: string; waitedMs?: number; heldMs?: number; heldBy?: number };

/**
 * Where the runner sends what happens. The runner awaits each emit before going on, so a listener
 * that persists (the unit record) has the finished step on disk before the next step starts.
 */
export interface ResultSink {
  emit(event: ResultEvent): void | Promise<void>;
}

/** Fan out to several sinks in order; every sink sees every event even if an earlier one throws. */
export function teeSink(...sinks: ResultSink[]): ResultSink {
  return {
    async emit(event) {
      let first: unknown;
      for (const s of sinks) {
        try {
          await s.emit(event);
        } catch (e) {
          first ??= e;
        }
      }
      if (first !== undefined) throw first;
    },
  };
}
