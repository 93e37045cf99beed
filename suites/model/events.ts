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
  | { type: 'run-finished'; run: RunInfo; slots: SlotResult[]; finishedAt: string };

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
