import type { ErrorContext } from '../rig/core/errors.ts';
import { StoreError } from '../rig/store/store-error.ts';
import type { StepResult } from '../suites/model/step-result.ts';
import { runCounts, suiteGroups, unitOutcome, type ReportRun, type ReportUnit } from './report-run.ts';
import { renderTapReport, type TapReport, type TapVersion } from './tap-writer.ts';

/**
 * The run as one TAP document: a subtest per unit (slot order), inside it a subtest per suite, inside
 * that a subtest per step holding its checks and measurements (value, U, k, limits, verdict, timing in
 * the YAML). The unit's own point closes with the unit's stored verdict, and a rendering whose points
 * disagree with a stored status throws instead of writing a report that contradicts the store.
 * TAP 13 (for Perl's prove, which refuses 14) is the same document with the version line and YAML
 * restricted to what Perl's YAMLish reader parses; prove grades the top-level (unit) points.
 */
export async function renderRunTap(run: ReportRun, o: { version?: TapVersion } = {}): Promise<string> {
  const counts = runCounts(run);
  const title = `plugrig run ${run.runId}, plan ${run.plan.name}, jig ${run.jig.name}`;
  const meta: Record<string, unknown> = {
    ...(run.station ? { station: run.station } : {}),
    plan: `${run.plan.name} sha256 ${run.plan.sha256}`,
    ...(run.image ? { image: `${run.image.name}${run.image.sha256 ? ` sha256 ${run.image.sha256}` : ''}` } : {}),
    started: run.startedAt,
    ...(run.finishedAt ? { finished: run.finishedAt } : {}),
    ...(run.aborted ? { aborted: 'yes: the run did not finish' } : {}),
    yield: `${counts.passed} of ${counts.units} units passed`,
  };
  // Found inside subtests (where tap would turn a throw into a failing point), thrown once rendering is done.
  const contradictions: TapContradiction[] = [];
  const text = await renderTapReport({ title, meta, ...(o.version ? { version: o.version } : {}) }, async (report) => {
    for (const unit of run.units) {
      const name = unitName(unit);
      const found: TapContradiction[] = [];
      const passed = await report.subtest(name, (ut) => renderUnit(ut, unit, found));
      contradictions.push(...found.map((c) => ({ ...c, context: { slot: unit.slot, ...c.context } })));
      if (passed !== (unit.verdict === 'pass')) {
        const outcome = unitOutcome(unit);
        contradictions.push({ message: `TAP rendering of ${name} disagrees with its stored verdict ${outcome}`, context: { slot: unit.slot, ...(unit.mac ? { unit: unit.mac } : {}), verdict: outcome, tapPoint: passed ? 'ok' : 'not ok' } });
      }
    }
  });
  const first = contradictions[0];
  if (first) throw tapContradictionError(first, { run: run.runId, plan: run.plan.name, ...(contradictions.length > 1 ? { contradictions: contradictions.length } : {}) });
  return text;
}

/** A TAP rendering that says the opposite of a stored status: what disagrees, with where. */
export interface TapContradiction {
  message: string;
  context: ErrorContext;
}

/**
 * The refusal to write a report that contradicts the store (a rendering bug must not turn a failed unit
 * green or the reverse): the store's failure class, as a report that cannot be written, typed, with where
 * it happened (run, slot, step, the stored status and the point the rendering gave).
 */
export function tapContradictionError(c: TapContradiction, context: ErrorContext = {}): StoreError {
  return new StoreError(`${c.message}: report not written`, { step: 'tap-report', ...context, ...c.context });
}

export function unitName(u: ReportUnit): string {
  return `slot ${u.slot}${u.mac ? ` ${u.mac}` : ''}${u.serial ? ` serial ${u.serial}` : ''}`;
}

async function renderUnit(t: TapReport, u: ReportUnit, contradictions: TapContradiction[]): Promise<void> {
  for (const group of suiteGroups(u.steps)) {
    await t.subtest(group.suite, async (st) => {
      for (const step of group.steps) {
        const contradiction = await renderStepTap(st, step);
        if (contradiction) contradictions.push(contradiction);
      }
    });
  }
  const diag = { slot: u.slot, ...(u.mac ? { mac: u.mac } : {}), ...(u.serial ? { serial: u.serial } : {}), startedAt: u.startedAt, ...(u.finishedAt ? { finishedAt: u.finishedAt } : {}), ...(u.calibration ? { calibration: u.calibration } : {}) };
  const outcome = unitOutcome(u);
  if (outcome === 'pass') t.ok(`verdict: PASS${u.flagged ? ' (flagged)' : ''}`, diag);
  else if (outcome === 'fail') t.fail(`verdict: FAIL${u.reason ? `: ${u.reason}` : ''}`, diag);
  else t.fail('verdict: none, the unit never finished (run interrupted)', diag);
}

/**
 * One step as a subtest holding its checks and measurements (earlier attempts as comments), closed by a
 * point that says the step's status. The one step rendering of both TAP paths: the run's report from the
 * store and the per-slot file written live (tap-listener.ts). Returns what contradicts the stored status
 * (a point ok where the step failed, or the reverse), undefined when the rendering agrees.
 */
export async function renderStepTap(t: TapReport, r: StepResult): Promise<TapContradiction | undefined> {
  if (r.status === 'skip') {
    t.skip(r.name, r.reason ?? 'skipped');
    return undefined;
  }
  const passed = await t.subtest(r.name, (st) => {
    for (const a of r.earlierAttempts) st.comment(`attempt ${a.attempt} of ${r.maxAttempts}: ${a.status} (${a.reason})`);
    for (const c of r.checks) {
      if (c.ok) st.ok(c.name, c.diag);
      else st.fail(c.name, c.diag);
    }
    for (const m of r.measurements) st.measurement(m);
    const diag = {
      ...(r.error ? { error: r.error } : {}),
      attempt: r.attempt,
      maxAttempts: r.maxAttempts,
      ...(r.flagged ? { flagged: true } : {}),
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
      ms: Math.round(r.ms),
    };
    if (r.status === 'pass') st.ok(`${r.name} completed`, diag);
    else st.fail(`${r.name}: ${r.reason ?? 'failed'}`, diag);
  });
  if (passed === (r.status === 'pass')) return undefined;
  return { message: `TAP rendering of step '${r.name}' disagrees with its status ${r.status}`, context: { step: r.name, stepIndex: r.index, status: r.status, attempt: r.attempt, tapPoint: passed ? 'ok' : 'not ok' } };
}
