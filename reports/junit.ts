import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';
import type { StepResult } from '../suites/model/step-result.ts';
import { measurementLine, seconds } from './format.ts';
import { unitOutcome, type ReportRun, type ReportUnit } from './report-run.ts';
import { unitName } from './run-tap.ts';

/**
 * The run as JUnit XML within the Jenkins junit-10 schema (reports/schema/junit-10.xsd): one
 * <testsuite> per unit, one <testcase> per step plus a closing "unit verdict" case, so CI tools
 * count the same failures the store holds. Only attributes that schema allows are written (the
 * common writers add `skipped`/`id` on <testsuites>, which it rejects). `classname` is
 * `<station or jig>.slot<N>`: GitLab takes its Suite column from it.
 * A failed step with an exception is an <error>, one failed by a check or measurement a <failure>.
 */
export function renderJunit(run: ReportRun): string {
  const doc = create({ version: '1.0', encoding: 'UTF-8' });
  const suites = run.units.map((u) => unitTotals(u));
  const root = doc.ele('testsuites', {
    name: `plugrig run ${run.runId} (plan ${run.plan.name})`,
    tests: String(sum(suites, 'tests')),
    failures: String(sum(suites, 'failures')),
    errors: String(sum(suites, 'errors')),
    time: seconds(suites.reduce((s, x) => s + x.ms, 0)),
  });
  for (const [i, unit] of run.units.entries()) renderUnit(root, run, unit, suites[i]!);
  return doc.end({ prettyPrint: true }) + '\n';
}

interface Totals {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  ms: number;
}

function sum(list: Totals[], key: keyof Totals): number {
  return list.reduce((s, x) => s + x[key], 0);
}

function unitTotals(u: ReportUnit): Totals {
  const failed = u.steps.filter((s) => s.status === 'fail');
  const errors = failed.filter((s) => s.error).length;
  const verdictCase = unitOutcome(u) === 'pass' ? 0 : 1;
  return {
    tests: u.steps.length + 1,
    failures: failed.length - errors + (unitOutcome(u) === 'fail' ? verdictCase : 0),
    errors: errors + (unitOutcome(u) === 'incomplete' ? verdictCase : 0),
    skipped: u.steps.filter((s) => s.status === 'skip').length,
    ms: u.steps.reduce((s, x) => s + Math.max(0, x.ms), 0),
  };
}

function renderUnit(root: XMLBuilder, run: ReportRun, u: ReportUnit, totals: Totals): void {
  const classname = `${run.station ?? run.jig.name}.slot${u.slot}`;
  const suite = root.ele('testsuite', {
    name: unitName(u),
    tests: String(totals.tests),
    failures: String(totals.failures),
    errors: String(totals.errors),
    skipped: String(totals.skipped),
    time: seconds(totals.ms),
    timestamp: u.startedAt,
    id: u.id,
    package: `plugrig.${run.plan.name}`,
    ...(run.station ? { hostname: run.station } : {}),
  });
  const props = suite.ele('properties');
  const prop = (name: string, value: string | undefined): void => {
    if (value !== undefined) props.ele('property', { name, value });
  };
  prop('run', run.runId);
  prop('plan', run.plan.name);
  prop('plan.sha256', run.plan.sha256);
  prop('jig', run.jig.name);
  prop('image', run.image?.name);
  prop('image.sha256', run.image?.sha256);
  prop('slot', String(u.slot));
  prop('mac', u.mac);
  prop('serial', u.serial);
  prop('verdict', unitOutcome(u));
  for (const [q, ratio] of Object.entries(u.calibration ?? {})) prop(`calibration.${q}`, String(ratio));
  for (const step of u.steps) renderStep(suite, classname, step);
  const verdict = suite.ele('testcase', { name: 'unit verdict', classname, time: '0.000' });
  const outcome = unitOutcome(u);
  if (outcome === 'fail') verdict.ele('failure', { type: 'unit-verdict', message: u.reason ?? 'failed' }).txt(u.reason ?? 'failed');
  else if (outcome === 'incomplete') verdict.ele('error', { type: 'incomplete', message: 'the unit never finished (run interrupted)' });
  if (u.flagged) verdict.ele('system-out').txt('passed with a flagged (marginal) measurement');
}

function renderStep(suite: XMLBuilder, classname: string, s: StepResult): void {
  const tc = suite.ele('testcase', { name: s.name, classname, time: seconds(s.ms) });
  const lines = [
    ...s.earlierAttempts.map((a) => `attempt ${a.attempt} of ${s.maxAttempts}: ${a.status} (${a.reason})`),
    ...s.checks.map((c) => `${c.ok ? 'ok' : 'FAILED'}: ${c.name}`),
    ...s.measurements.map(measurementLine),
  ];
  if (s.status === 'skip') tc.ele('skipped', { message: s.reason ?? 'skipped' });
  else if (s.status === 'fail') {
    const message = s.reason ?? 'failed';
    if (s.error) tc.ele('error', { type: s.error.code ?? s.error.name, message }).txt(message);
    else {
      const what = s.checks.some((c) => !c.ok) ? 'check' : s.measurements.some((m) => m.decision === 'reject') ? 'measurement' : 'step';
      tc.ele('failure', { type: what, message }).txt(lines.filter((l) => !l.startsWith('ok:')).join('\n'));
    }
  }
  if (lines.length > 0) tc.ele('system-out').txt(lines.join('\n'));
}
