import type { Clock } from '../rig/core/clock.ts';
import type { Logger } from '../rig/core/log.ts';
import { PlugrigError } from '../rig/core/errors.ts';
import type { MeasurementLimits, TapReport } from '../reports/tap-writer.ts';

/** One recorded measurement of a unit (goes to the TAP report and the unit record). */
export interface MeasurementRecord {
  step: string;
  name: string;
  value: number;
  unit: string;
  limits: MeasurementLimits;
  passed: boolean;
}

export interface StepContext {
  slot: number;
  clock: Clock;
  log: Logger;
  /** Judge a value against limits (with the marginal band) and record it. Returns whether it passed. */
  measure(name: string, value: number, unit: string, limits: MeasurementLimits): boolean;
  /** Record a boolean check. */
  check(name: string, ok: boolean, diag?: Record<string, unknown>): boolean;
}

export interface Step {
  name: string;
  /** A failing critical step skips the remaining ordinary steps (cleanup steps still run). */
  critical?: boolean;
  /** Cleanup steps always run, even after a failure (e.g. interlock safe state). */
  cleanup?: boolean;
  run(ctx: StepContext): Promise<Record<string, unknown> | void>;
}

export interface StepOutcome {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  ms: number;
  data?: Record<string, unknown>;
  error?: unknown;
}

export interface SlotRun {
  slot: number;
  passed: boolean;
  steps: StepOutcome[];
  measurements: MeasurementRecord[];
}

/**
 * Run a slot's steps in order, each as a TAP subtest. A step fails when it throws or when any of
 * its checks/measurements fails; the error (typed, with context) goes into the report's YAML.
 */
export async function runSteps(steps: readonly Step[], o: { slot: number; clock: Clock; log: Logger; report: TapReport }): Promise<SlotRun> {
  const outcomes: StepOutcome[] = [];
  const measurements: MeasurementRecord[] = [];
  let stopped = false;
  for (const step of steps) {
    if (stopped && !step.cleanup) {
      o.report.skip(step.name, 'an earlier critical step failed');
      outcomes.push({ name: step.name, status: 'skip', ms: 0 });
      continue;
    }
    const t0 = o.clock.now();
    let data: Record<string, unknown> | undefined;
    let error: unknown;
    const passed = await o.report.subtest(step.name, async (r) => {
      const ctx: StepContext = {
        slot: o.slot,
        clock: o.clock,
        log: o.log.child({ step: step.name }),
        measure: (name, value, unit, limits) => {
          const ok = r.measurement(name, value, unit, limits);
          measurements.push({ step: step.name, name, value, unit, limits, passed: ok });
          return ok;
        },
        check: (name, ok, diag) => (ok ? r.ok(name, diag) : r.fail(name, diag)),
      };
      try {
        data = (await step.run(ctx)) ?? undefined;
        r.ok(`${step.name} completed`, data ? { ...data } : undefined);
      } catch (e) {
        error = e;
        const context = e instanceof PlugrigError ? { slot: o.slot, step: step.name, ...e.context } : { slot: o.slot, step: step.name };
        o.log.warn({ err: e instanceof PlugrigError ? e.toJSON() : String(e), ...context }, 'step failed');
        r.fail(`${step.name} completed`, { error: e });
      }
    });
    const outcome: StepOutcome = { name: step.name, status: passed ? 'pass' : 'fail', ms: o.clock.now() - t0, ...(data ? { data } : {}), ...(error ? { error } : {}) };
    outcomes.push(outcome);
    if (!passed && step.critical) stopped = true;
  }
  return { slot: o.slot, passed: outcomes.every((s) => s.status === 'pass'), steps: outcomes, measurements };
}
