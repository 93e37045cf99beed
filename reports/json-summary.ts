import type { Decision, Verdict } from '../suites/model/verdict.ts';
import { measurementKey, runCounts, unitOutcome, type ReportRun, type RunCounts, type UnitOutcome } from './report-run.ts';

export const RUN_SUMMARY_SCHEMA = 'plugrig.run-summary/1';

/**
 * `summary.json`: the run for other tools (MES import, dashboards, `plugrig nightly --compare`).
 * Shape (version in `schema`; a change that removes or retypes a field bumps it):
 *   schema        "plugrig.run-summary/1"
 *   runId, station?, plan {name, sha256}, jig, image? {name, sha256?, version?}
 *   instruments   [{model, serial?, calibrationDate?}]
 *   startedAt, finishedAt?, aborted
 *   counts        {units, passed, failed, incomplete, flagged, yield (0..1)}
 *   units[]       {id, slot, mac?, serial?, outcome pass|fail|incomplete, flagged, reason?, ms,
 *                  failedSteps [names], calibration? {quantity: factor},
 *                  measurements[] {key "<step> / <id>", step, id, name, unit, taken, value?, U, k,
 *                                  low?, high?, verdict, decision}}
 *   steps[]       {name, ran, failed, skipped, meanMs}  (per step name over the units)
 * Values are the stored numbers (not rounded); order is slot, then step index.
 */
export interface RunSummary {
  schema: typeof RUN_SUMMARY_SCHEMA;
  runId: string;
  station?: string;
  plan: { name: string; sha256: string };
  jig: string;
  image?: { name: string; sha256?: string; version?: string };
  instruments: Array<{ model: string; serial?: string; calibrationDate?: string }>;
  startedAt: string;
  finishedAt?: string;
  aborted: boolean;
  counts: RunCounts;
  units: UnitSummary[];
  steps: Array<{ name: string; ran: number; failed: number; skipped: number; meanMs: number }>;
}

export interface UnitSummary {
  id: string;
  slot: number;
  mac?: string;
  serial?: string;
  outcome: UnitOutcome;
  flagged: boolean;
  reason?: string;
  ms: number;
  failedSteps: string[];
  calibration?: Record<string, number>;
  measurements: MeasurementSummary[];
}

export interface MeasurementSummary {
  key: string;
  step: string;
  id: string;
  name: string;
  unit: string;
  taken: boolean;
  value?: number;
  U: number;
  k: number;
  low?: number;
  high?: number;
  verdict: Verdict;
  decision: Decision;
}

export function summarizeRun(run: ReportRun): RunSummary {
  const steps = new Map<string, { name: string; ran: number; failed: number; skipped: number; totalMs: number }>();
  for (const u of run.units) {
    for (const s of u.steps) {
      const e = steps.get(s.name) ?? { name: s.name, ran: 0, failed: 0, skipped: 0, totalMs: 0 };
      if (s.status === 'skip') e.skipped++;
      else {
        e.ran++;
        e.totalMs += s.ms;
        if (s.status === 'fail') e.failed++;
      }
      steps.set(s.name, e);
    }
  }
  return {
    schema: RUN_SUMMARY_SCHEMA,
    runId: run.runId,
    ...(run.station ? { station: run.station } : {}),
    plan: run.plan,
    jig: run.jig.name,
    ...(run.image ? { image: run.image } : {}),
    instruments: run.instruments,
    startedAt: run.startedAt,
    ...(run.finishedAt ? { finishedAt: run.finishedAt } : {}),
    aborted: run.aborted,
    counts: runCounts(run),
    units: run.units.map((u) => ({
      id: u.id,
      slot: u.slot,
      ...(u.mac ? { mac: u.mac } : {}),
      ...(u.serial ? { serial: u.serial } : {}),
      outcome: unitOutcome(u),
      flagged: u.flagged,
      ...(u.reason ? { reason: u.reason } : {}),
      ms: u.steps.reduce((s, x) => s + x.ms, 0),
      failedSteps: u.steps.filter((s) => s.status === 'fail').map((s) => s.name),
      ...(u.calibration ? { calibration: u.calibration } : {}),
      measurements: u.steps.flatMap((s) =>
        s.measurements.map((m) => ({
          key: measurementKey(s, m),
          step: s.name,
          id: m.id,
          name: m.name,
          unit: m.unit,
          taken: m.taken,
          ...(m.taken && m.value !== undefined ? { value: m.value } : {}),
          U: m.U,
          k: m.k,
          ...(m.limits?.low !== undefined ? { low: m.limits.low } : {}),
          ...(m.limits?.high !== undefined ? { high: m.limits.high } : {}),
          verdict: m.verdict,
          decision: m.decision,
        })),
      ),
    })),
    steps: [...steps.values()].map(({ totalMs, ...e }) => ({ ...e, meanMs: e.ran ? totalMs / e.ran : 0 })),
  };
}

export function renderJsonSummary(run: ReportRun): string {
  return JSON.stringify(summarizeRun(run), null, 2) + '\n';
}
