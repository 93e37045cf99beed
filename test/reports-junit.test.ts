import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { validateXML } from 'xmllint-wasm';
import { renderJunit } from '../reports/junit.ts';
import type { ReportRun } from '../reports/report-run.ts';
import { clone, fixtureRun } from './fixtures/reports/load.ts';

const XSD_PATH = new URL('../reports/schema/junit-10.xsd', import.meta.url).pathname;
const XSD = readFileSync(XSD_PATH, 'utf8');

/** Validate several documents in one xmllint run (a WASM start costs seconds on a loaded machine); errors per file. */
async function validate(docs: Record<string, string>): Promise<{ valid: boolean; errors: Map<string, string[]> }> {
  const r = await validateXML({ xml: Object.entries(docs).map(([fileName, contents]) => ({ fileName, contents })), schema: [{ fileName: 'junit-10.xsd', contents: XSD }] });
  const errors = new Map<string, string[]>(Object.keys(docs).map((f) => [f, []]));
  // Errors without a position are xmllint's closing "<file> fails to validate" lines.
  for (const e of r.errors) if (e.loc) errors.get(e.loc.fileName)?.push(e.message);
  return { valid: r.valid, errors };
}

const failing = fixtureRun('calibrate-4slot');
const passing = fixtureRun('factory-1slot');

function interrupted(): ReportRun {
  const run = clone(passing);
  const u = run.units[0]!;
  run.units.push({ ...clone(u), id: 'slot-2', slot: 2, verdict: null, steps: u.steps.slice(0, 2) });
  run.units.push({ ...clone(u), id: 'slot-3', slot: 3, verdict: 'fail', reason: 'flash: boom', steps: [u.steps[0]!, { ...u.steps[1]!, status: 'fail', reason: 'boom', error: { name: 'TimeoutError', code: 'TIMEOUT', message: 'boom' } }, { ...u.steps[2]!, status: 'skip', reason: "critical step 'x' failed" }] });
  run.aborted = true;
  return run;
}

t.test('the JUnit of real runs validates against the junit-10 schema (xmllint-wasm)', async (t) => {
  const v = await validate({ 'failing.xml': renderJunit(failing), 'passing.xml': renderJunit(passing), 'interrupted.xml': renderJunit(interrupted()) });
  t.same(Object.fromEntries(v.errors), { 'failing.xml': [], 'passing.xml': [], 'interrupted.xml': [] }, 'no schema error in any');
  t.ok(v.valid);
});

t.test("Debian's xmllint agrees", { skip: spawnSync('xmllint', ['--version']).status === 0 ? false : 'xmllint (libxml2-utils) not installed' }, async (t) => {
  const p = spawnSync('xmllint', ['--noout', '--schema', XSD_PATH, '-'], { input: renderJunit(interrupted()), encoding: 'utf8' });
  t.equal(p.status, 0, p.stderr);
  t.match(p.stderr, /- validates/);
});

t.test('the schema rejects what the common writers emit (the validation can fail)', async (t) => {
  const xml = renderJunit(passing);
  // junit-report-builder puts `skipped` on <testsuites>; @tapjs/reporter adds id/assertions there and
  // writes <property> without value.
  const bad = [
    xml.replace('<testsuites ', '<testsuites skipped="0" '),
    xml.replace('<testsuites ', '<testsuites id="x" '),
    xml.replace(/<property name="run" value="[^"]*"\/>/, '<property name="run"/>'),
    xml.replace(/ errors="\d+" skipped=/, ' skipped='),
    xml.replace(/<testsuite ([^>]*)time="[0-9.]+"/, '<testsuite $1time="1.5s"'),
  ];
  for (const b of bad) t.not(b, xml, 'the mutation applied');
  const v = await validate(Object.fromEntries(bad.map((b, i) => [`bad-${i}.xml`, b])));
  t.equal(v.valid, false);
  for (const [file, errors] of v.errors) t.ok(errors.length > 0, `${file} rejected: ${errors[0] ?? 'no error'}`);
  t.equal(v.errors.size, bad.length);
});

t.test('counts, classnames and outcomes follow the stored results', async (t) => {
  const run = interrupted();
  const xml = renderJunit(run);
  const suites = [...xml.matchAll(/<testsuite name="([^"]*)" tests="(\d+)" failures="(\d+)" errors="(\d+)" skipped="(\d+)" time="([0-9.]+)"/g)];
  t.same(suites.map((m) => m[1]), ['slot 1 c8:47:8c:00:01:01', 'slot 2 c8:47:8c:00:01:01', 'slot 3 c8:47:8c:00:01:01']);
  // slot 1 passes: n steps + the verdict case, nothing failed
  t.same(suites[0]!.slice(2, 6), [String(run.units[0]!.steps.length + 1), '0', '0', '0']);
  // slot 2 never finished: the verdict case is an error
  t.same(suites[1]!.slice(2, 6), ['3', '0', '1', '0']);
  // slot 3: a step that threw (error), a skipped one, and the failed verdict (failure)
  t.same(suites[2]!.slice(2, 6), ['4', '1', '1', '1']);
  const top = /<testsuites name="[^"]*" tests="(\d+)" failures="(\d+)" errors="(\d+)"/.exec(xml)!;
  t.same(top.slice(1), [String(run.units[0]!.steps.length + 1 + 3 + 4), '1', '2']);
  t.match(xml, /<testcase name="flash OpenBK7231N_QIO_1\.18\.42\.bin \(synthetic\)" classname="virtual-1slot\.slot1" time="\d+\.\d{3}">/);
  t.match(xml, /<error type="TIMEOUT" message="boom">boom<\/error>/);
  t.match(xml, /<skipped message="critical step 'x' failed"\/>/);
  t.match(xml, /<error type="incomplete" message="the unit never finished \(run interrupted\)"\/>/);
  const fx = renderJunit(failing);
  t.match(fx, /<failure type="measurement" message="voltage error vs reference: value ± U \(0\.588\) straddles a limit">/, 'a measurement failure names the measurement');
  t.match(fx, /power error vs reference = 0\.00624636 ± 0\.61 % \[-1 \.\. 1\] marginal \(reject: U 0\.610 exceeds the target 0\.4\)/, 'measurement lines in system-out');
  t.equal(renderJunit(clone(failing)), fx, 'deterministic');
});
