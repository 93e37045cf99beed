import type { StepResult } from '../../suites/model/step-result.ts';
import type { Verdict } from '../../suites/model/verdict.ts';
import type { InstrumentWait, ReportRun, ReportUnit } from '../report-run.ts';

/** What the HTML report's plots show, taken from the stored results; nothing is re-judged here. */

export interface ErrorPoint {
  slot: number;
  unitId: string;
  step: string;
  /** Reference power at that point (W). */
  loadW: number;
  value: number;
  U: number;
  low?: number;
  high?: number;
  verdict: Verdict;
}

/**
 * When a metering point was taken: as found (the plug's factors as they came, judged against the
 * as-found limits: the spread of a good uncalibrated front end) or after calibration (the re-verify
 * points and the calibration point itself, judged against the product limits). Each phase is plotted
 * against its own limits: on one plot the tight re-verify limits would misjudge every as-found point.
 */
export type MeteringPhase = 'as-found' | 'calibrated';

export const METERING_PHASES: ReadonlyArray<{ phase: MeteringPhase; label: string }> = [
  { phase: 'as-found', label: 'as found (before calibration)' },
  { phase: 'calibrated', label: 'after calibration (re-verify)' },
];

/** The calibrate suite's measuring steps come after its VoltageSet/CurrentSet/PowerSet; every other suite's measure the plug as found. */
export function meteringPhase(step: Pick<StepResult, 'suite'>): MeteringPhase {
  return step.suite === 'calibrate' ? 'calibrated' : 'as-found';
}

/** Metering errors (measurement `id`, e.g. powerErrorPct) against the reference power of the step's load, of one phase or all. */
export function errorPoints(units: readonly ReportUnit[], id: string, phase?: MeteringPhase): ErrorPoint[] {
  const out: ErrorPoint[] = [];
  for (const u of units) {
    for (const step of u.steps) {
      if (phase !== undefined && meteringPhase(step) !== phase) continue;
      const m = step.measurements.find((x) => x.id === id && x.taken && x.value !== undefined);
      if (!m) continue;
      const loadW = referenceWatts(step);
      if (loadW === undefined || !(loadW > 0)) continue;
      out.push({ slot: u.slot, unitId: u.id, step: step.name, loadW, value: m.value!, U: m.U, ...(m.limits?.low !== undefined ? { low: m.limits.low } : {}), ...(m.limits?.high !== undefined ? { high: m.limits.high } : {}), verdict: m.verdict });
    }
  }
  return out;
}

/** The reference meter's mean power during a metering step: its result data, else the power error's diag. */
function referenceWatts(step: StepResult): number | undefined {
  const ref = (step.data as { ref?: { watts?: unknown } } | undefined)?.ref?.watts;
  if (typeof ref === 'number') return ref;
  const diag = step.measurements.find((m) => m.id === 'powerErrorPct')?.diag?.ref;
  return typeof diag === 'number' ? diag : undefined;
}

export interface CalibrationFactor {
  quantity: string;
  slot: number;
  unitId: string;
  factor: number;
}

export function calibrationFactors(run: ReportRun): CalibrationFactor[] {
  return run.units.flatMap((u) => Object.entries(u.calibration ?? {}).map(([quantity, factor]) => ({ quantity, slot: u.slot, unitId: u.id, factor })));
}

export interface StepTakt {
  step: string;
  n: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
}

/** Duration of every step that ran (not skipped), over all units, in the order steps first appear. */
export function taktPerStep(run: ReportRun): StepTakt[] {
  const by = new Map<string, number[]>();
  for (const u of run.units) {
    for (const s of u.steps) {
      if (s.status === 'skip') continue;
      const list = by.get(s.name) ?? [];
      list.push(s.ms);
      by.set(s.name, list);
    }
  }
  return [...by.entries()].map(([step, ms]) => ({ step, n: ms.length, meanMs: ms.reduce((a, b) => a + b, 0) / ms.length, minMs: Math.min(...ms), maxMs: Math.max(...ms) }));
}

export interface SlotTakt {
  slot: number;
  /** First step start to last step end (clock ms). */
  ms: number;
}

export function taktPerSlot(run: ReportRun): SlotTakt[] {
  return run.units.filter((u) => u.steps.length > 0).map((u) => ({ slot: u.slot, ms: Math.max(...u.steps.map((s) => s.finishedT)) - Math.min(...u.steps.map((s) => s.startedT)) }));
}

export interface TimelineLane {
  slot: number;
  steps: Array<{ name: string; fromT: number; toT: number; status: StepResult['status'] }>;
  waits: InstrumentWait[];
}

/** One lane per slot on the run's clock, with the unit's waits for shared instruments. */
export function timeline(run: ReportRun): { t0: number; t1: number; lanes: TimelineLane[] } {
  const lanes = run.units.map((u) => ({
    slot: u.slot,
    steps: u.steps.filter((s) => s.status !== 'skip').map((s) => ({ name: s.name, fromT: s.startedT, toT: s.finishedT, status: s.status })),
    waits: u.waits,
  }));
  const ts = lanes.flatMap((l) => [...l.steps.flatMap((s) => [s.fromT, s.toT]), ...l.waits.flatMap((w) => [w.fromT, w.toT])]);
  return { t0: ts.length ? Math.min(...ts) : 0, t1: ts.length ? Math.max(...ts) : 1, lanes };
}
