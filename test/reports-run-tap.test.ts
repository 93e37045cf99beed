import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser, type Result } from 'tap-parser';
import { renderRunTap } from '../reports/run-tap.ts';
import type { ReportRun } from '../reports/report-run.ts';
import { clone, fixtureRun } from './fixtures/reports/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'plugrig-run-tap-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Parsed {
  ok: boolean;
  tapErrors: string[];
  top: Result[];
}

/** tap-parser in strict mode; format errors are `tapError` entries of the failures, not the exit status. */
function parse(text: string): Promise<Parsed> {
  return new Promise((resolve) => {
    const top: Result[] = [];
    const p = new Parser({ strict: true }, (final) => {
      const f = final as unknown as { ok: boolean; failures: Array<{ tapError?: string }> };
      resolve({ ok: f.ok, tapErrors: f.failures.flatMap((x) => (x.tapError ? [x.tapError] : [])), top });
    });
    p.on('assert', (r: Result) => top.push(r));
    p.end(text);
  });
}

/** TAP 14's rule tap-parser does not enforce: `# Subtest: X` is closed by the next point at its level, named X. */
function subtestNameErrors(text: string): string[] {
  const lines = text.split('\n');
  const errors: string[] = [];
  lines.forEach((l, i) => {
    const m = /^( *)# Subtest: (.*)$/.exec(l);
    if (!m) return;
    const indent = m[1]!;
    const close = lines.slice(i + 1).find((x) => new RegExp(`^${indent}(not )?ok \\d+`).test(x));
    const name = close ? /^ *(?:not )?ok \d+ - (.*?)(?: # (?:SKIP|TODO).*)?$/.exec(close)?.[1] : undefined;
    if (name !== m[2]) errors.push(`line ${i + 1}: subtest '${m[2]}' closed by '${name ?? 'nothing'}'`);
  });
  return errors;
}

function prove(path: string): { stdout: string; status: number | null } {
  const p = spawnSync('/usr/bin/prove', ['--exec', 'cat', path], { encoding: 'utf8' });
  return { stdout: p.stdout + p.stderr, status: p.status };
}

const failing = fixtureRun('calibrate-4slot');
const passing = fixtureRun('factory-1slot');

t.test('TAP 14: a subtest per unit, nested per suite and step, parses strictly', async (t) => {
  for (const run of [failing, passing]) {
    const text = await renderRunTap(run);
    t.equal(text.split('\n')[0], 'TAP version 14');
    const parsed = await parse(text);
    t.same(parsed.tapErrors, [], `no TAP format error (${run.plan.name})`);
    t.same(subtestNameErrors(text), [], 'every subtest is closed by a point of its name');
    t.same(parsed.top.map((r) => [r.name, r.ok]), run.units.map((u) => [`slot ${u.slot}${u.mac ? ` ${u.mac}` : ''}`, u.verdict === 'pass']), 'top-level points are the units with their stored verdicts');
    t.equal(parsed.ok, run.units.every((u) => u.verdict === 'pass'));
    // suites nested in units, steps nested in suites
    for (const suite of new Set(run.units.flatMap((u) => u.steps.map((s) => s.suite ?? 'station')))) t.match(text, new RegExp(`^    # Subtest: ${suite}$`, 'm'), `suite ${suite} is a subtest of a unit`);
    const step = run.units[0]!.steps[1]!;
    t.match(text, new RegExp(`^        # Subtest: ${step.name.replace(/[()]/g, '\\$&')}$`, 'm'), 'steps are subtests of their suite');
    t.notMatch(text, /# time=/, 'no host timing in the report');
  }
  const text = await renderRunTap(failing);
  // A measurement's YAML: value, unit, U, k, limits, verdict, timing.
  const m = failing.units[0]!.steps.flatMap((s) => s.measurements).find((x) => x.id === 'powerErrorPct')!;
  t.match(text, new RegExp(`value: ${m.value}\\n\\s+unit: "?%"?\\n\\s+U: ${m.U}\\n\\s+k: 2\\n\\s+limits:\\n\\s+low: -1\\n\\s+high: 1\\n\\s+nominal: 0\\n\\s+verdict: ${m.verdict}\\n\\s+decision: ${m.decision}\\n\\s+reason: [^\\n]+\\n\\s+(attempt: \\d+\\n\\s+)?takenAt: ${m.at}`), 'measurement YAML carries value, unit, U, k, limits, verdict, timing');
  t.match(text, /startedAt: 2026-12-01T12:05:40\.603Z\n\s+finishedAt: 2026-12-01T12:05:53\.491Z\n\s+ms: 12887/, 'step timing in the closing point');
  t.match(text, /# attempt 1 of 2: fail \(/, 'earlier attempts kept');
});

t.test('same results, same bytes', async (t) => {
  t.equal(await renderRunTap(failing), await renderRunTap(clone(failing)));
  t.equal(await renderRunTap(passing, { version: 13 }), await renderRunTap(clone(passing), { version: 13 }));
});

t.test('an interrupted unit and a skipped step', async (t) => {
  const run: ReportRun = clone(passing);
  const u = run.units[0]!;
  run.units.push({ ...clone(u), id: 'slot-2', slot: 2, verdict: null, steps: u.steps.slice(0, 3) });
  run.units.push({ ...clone(u), id: 'slot-3', slot: 3, verdict: 'fail', reason: 'flash: x', steps: [u.steps[0]!, { ...u.steps[1]!, status: 'skip', reason: "critical step 'x' failed" }, u.steps.at(-1)!] });
  run.aborted = true;
  const text = await renderRunTap(run);
  const parsed = await parse(text);
  t.same(parsed.tapErrors, []);
  t.same(subtestNameErrors(text), []);
  t.same(parsed.top.map((r) => r.ok), [true, false, false]);
  t.match(text, /not ok \d+ - verdict: none, the unit never finished/);
  t.match(text, /ok \d+ - connect UART and 3V3 \(mains off\) # SKIP critical step 'x' failed/);
  t.match(text, /# aborted: yes/);
});

t.test('a rendering that contradicts the stored verdict is refused', async (t) => {
  // Mutation of the data: a unit stored as pass whose step failed must not render as a passing unit.
  const run = clone(passing);
  run.units[0]!.steps[2]!.checks.push({ name: 'a check that failed', ok: false, attempt: 1, t: 0 });
  const step = run.units[0]!.steps[2]!;
  await t.rejects(renderRunTap(run), {
    name: 'StoreError',
    code: 'E_STORE',
    message: `TAP rendering of step '${step.name}' disagrees with its status pass: report not written`,
    context: { run: run.runId, plan: run.plan.name, slot: run.units[0]!.slot, step: step.name, status: 'pass', tapPoint: 'not ok' },
  }, 'typed, naming run, slot, step, status and the point it rendered');
  const lie = clone(failing);
  lie.units[0]!.verdict = 'pass';
  await t.rejects(renderRunTap(lie), { name: 'StoreError', code: 'E_STORE', message: /disagrees with its stored verdict pass: report not written$/, context: { run: lie.runId, slot: lie.units[0]!.slot, verdict: 'pass', tapPoint: 'not ok' } });
});

t.test('TAP 13 for Perl prove: accepted, units graded', { skip: spawnSync('/usr/bin/prove', ['--version']).status === 0 ? false : 'no /usr/bin/prove' }, async (t) => {
  for (const [name, run] of [['fail', failing], ['pass', passing]] as const) {
    const path = join(dir, `${name}.tap`);
    const text = await renderRunTap(run, { version: 13 });
    t.equal(text.split('\n')[0], 'TAP version 13');
    writeFileSync(path, text);
    const p = prove(path);
    t.notMatch(p.stdout, /Parse errors|don't know about versions/, `prove parses the ${name} run`);
    const failed = run.units.filter((u) => u.verdict !== 'pass').length;
    if (failed) t.match(p.stdout, new RegExp(`Tests: ${run.units.length} Failed: ${failed}\\)`), 'prove counts the failed units');
    else t.match(p.stdout, /Result: PASS/, 'prove passes the passing run');
    t.equal(p.status === 0, failed === 0, 'prove exit status follows the verdicts');
  }
  // The TAP 14 rendering is what Debian's prove refuses: the reason the 13 rendering exists.
  const v14 = join(dir, 'v14.tap');
  writeFileSync(v14, await renderRunTap(passing));
  t.match(prove(v14).stdout, /don't know about versions later than 13|Parse errors/);
});
