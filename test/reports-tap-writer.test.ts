import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser, type Result } from 'tap-parser';
import { FlashError } from '../rig/core/errors.ts';
import { openTapReport, withTapReport, type TapReport, type TapVersion } from '../reports/tap-writer.ts';
import type { MeasurementResult } from '../suites/model/measurement.ts';
import type { Decision, Verdict } from '../suites/model/verdict.ts';

const dir = mkdtempSync(join(tmpdir(), 'plugrig-tap-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Parsed {
  /** tap-parser's final result for the whole file. */
  final: { ok: boolean; count: number; pass: number; fail: number; skip: number; plan: { start: number; end: number } };
  /** Top-level test points in order. */
  points: Result[];
  comments: string[];
}

function parse(text: string): Promise<Parsed> {
  return new Promise((resolve) => {
    const points: Result[] = [];
    const comments: string[] = [];
    const parser = new Parser((final) => resolve({ final: final as Parsed['final'], points, comments }));
    parser.on('assert', (point: Result) => points.push(point));
    parser.on('comment', (c: string) => comments.push(c.trim()));
    parser.end(text);
  });
}

/** A measurement as the model hands it over (judged already). */
function judged(name: string, value: number, unit: string, limits: MeasurementResult['limits'], verdict: Verdict, decision: Decision, U = 0): MeasurementResult {
  return { id: name, name, unit, taken: true, value, u: U / 2, k: 2, U, contributions: [], ...(limits ? { limits } : {}), guardBand: 'uncertainty', verdict, decision, reason: verdict === 'pass' ? 'within limits' : 'given', attempt: 1 };
}

/** A station-like run covering every kind of point; the same body for both versions. */
async function sampleRun(report: TapReport): Promise<void> {
  report.ok('link established', { baud: 921600, attempts: 2 });
  const flashed = await report.step('flash app', async () => {
    throw new FlashError('write failed', { address: 0x11000, bytesSeen: Uint8Array.of(0x04, 0x0e, 0x05), step: 'write' });
  });
  report.comment(`flash outcome ${flashed.ok}`);
  const mac = await report.step('read MAC', () => 'c8:47:8c:00:11:22');
  if (mac.ok) report.comment(`mac ${mac.value}`);
  report.step('relay clicks', { ok: true, diag: { clicks: 1 } });
  report.step('led blinks', false);
  report.measurement(judged('mains voltage', 229.5, 'V', { low: 207, high: 253 }, 'pass', 'accept', 1.2));
  report.measurement(judged('load current', 9.8, 'A', { low: 0, high: 10 }, 'marginal', 'accept-flagged'));
  report.measurement(judged('standby power', 1.4, 'W', { high: 1 }, 'fail', 'reject'));
  report.skip('button press', 'no actuator on this jig');
  report.fail('console log', {
    expected: 'boot banner',
    log: 'Info:MAIN:Time 1, idle 0/s, free 80000, MQTT 0(0), bWifi 0, secondsWithNoPing -1, socks 2/38 \n\n  second line\n',
    lines: ['boot', 'w '.repeat(45).trim()],
  });
  await report.subtest('energy calibration', async (sub) => {
    sub.measurement(judged('power error', 0.8, '%', { low: -2, high: 2 }, 'pass', 'accept'));
    sub.skip('reactive power', 'not metered');
  });
  await report.subtest('wifi', async (sub) => {
    sub.ok('scan');
    throw new Error('AP vanished\nmid-test');
  });
}

async function writeSample(version: TapVersion) {
  const path = join(dir, `sample-v${version}.tap`);
  const report = openTapReport(path, {
    title: 'slot 1: CB2S unit 0001',
    meta: { station: 'st-1', image: { sha256: 'ab'.repeat(8), kind: 'qio' } },
    version,
  });
  await sampleRun(report);
  const summary = await report.close();
  return { text: readFileSync(path, 'utf8'), summary, report };
}

const EXPECTED_POINTS: Array<[string, boolean]> = [
  ['link established', true],
  ['flash app', false],
  ['read MAC', true],
  ['relay clicks', true],
  ['led blinks', false],
  ['mains voltage', true],
  ['load current', true],
  ['standby power', false],
  ['button press', true],
  ['console log', false],
  ['energy calibration', true],
  ['wifi', false],
];

for (const version of [14, 13] as const) {
  t.test(`TAP ${version}: round trip through tap-parser`, async (t) => {
    const { text, summary, report } = await writeSample(version);
    t.equal(text.split('\n')[0], `TAP version ${version}`, 'version line first');
    t.match(text, /\n1\.\.12\n$/, 'ends with the plan: the file is complete');
    const { final, points, comments } = await parse(text);

    t.same(
      points.map((p) => [p.name, p.ok]),
      EXPECTED_POINTS,
      'names and results in order',
    );
    t.match(final, { ok: false, count: 12, pass: 7, fail: 5, skip: 1, plan: { start: 1, end: 12 } });
    t.same(
      { total: summary.total, pass: summary.pass, fail: summary.fail, skip: summary.skip },
      { total: final.count, pass: final.pass - final.skip, fail: final.fail, skip: final.skip },
      'close() counts agree with the parser',
    );
    t.same(summary.leaves, { total: 14, pass: 7, fail: 5, skip: 2 }, 'leaf counts include subtest points');
    t.same(await report.close(), summary, 'close is idempotent');

    t.ok(comments.includes('# slot 1: CB2S unit 0001'), 'title comment');
    t.ok(comments.includes('# station: st-1'), 'meta comment');
    t.ok(comments.includes('# mac c8:47:8c:00:11:22'), 'step value returned to the caller');

    const byName = new Map(points.map((p) => [p.name, p]));
    t.same(byName.get('link established')?.diag, { baud: 921600, attempts: 2 }, 'pass diag');
    t.same(byName.get('relay clicks')?.diag, { clicks: 1 });
    t.match(byName.get('flash app')?.diag, {
      error: { name: 'FlashError', code: 'E_FLASH', message: 'write failed', context: { address: '0x11000', bytesSeen: '040e05', step: 'write' } },
    }, 'a thrown typed error becomes YAML with its context');
    t.same(byName.get('mains voltage')?.diag, { value: 229.5, unit: 'V', U: 1.2, k: 2, limits: { low: 207, high: 253 }, verdict: 'pass', decision: 'accept', reason: 'within limits' });
    t.match(byName.get('load current')?.diag, { verdict: 'marginal', decision: 'accept-flagged' }, 'a flagged marginal renders as ok with its verdict');
    t.match(byName.get('standby power')?.diag, { value: 1.4, limits: { high: 1 }, verdict: 'fail', decision: 'reject' });
    t.equal(byName.get('button press')?.skip, 'no actuator on this jig');
    for (const p of points) {
      t.notOk(p.diag && ('at' in p.diag || 'source' in p.diag || 'stack' in p.diag), `${p.name}: no tap source/stack noise`);
    }
    const log = byName.get('console log')?.diag?.log;
    const lines = byName.get('console log')?.diag?.lines;
    if (version === 14) {
      t.same(lines, ['boot', 'w '.repeat(45).trim()]);
      t.equal(log, 'Info:MAIN:Time 1, idle 0/s, free 80000, MQTT 0(0), bWifi 0, secondsWithNoPing -1, socks 2/38 \n\n  second line\n', 'v14 keeps strings exact');
    } else {
      t.ok(Array.isArray(lines) && lines.length === 3 && lines[0] === 'boot', 'a long list item is split into items, not a nested list');
      t.ok(Array.isArray(log) && log.join(' ').replace(/\s+/g, ' ') ===
        'Info:MAIN:Time 1, idle 0/s, free 80000, MQTT 0(0), bWifi 0, secondsWithNoPing -1, socks 2/38 second line',
        'v13 keeps the words as a list of short lines');
    }
  });
}

t.test('TAP 13 output is prove-friendly: no blank lines, block scalars or folded lines in YAML', async (t) => {
  const { text } = await writeSample(13);
  const lines = text.split('\n');
  let inYaml = false;
  let yamlLines = 0;
  const problems: string[] = [];
  for (const [i, line] of lines.entries()) {
    if (/^\s+---$/.test(line)) {
      inYaml = true;
      continue;
    }
    if (/^\s+\.\.\.$/.test(line)) {
      inYaml = false;
      continue;
    }
    if (!inYaml) continue;
    yamlLines++;
    if (line.trim() === '') problems.push(`${i + 1}: blank line`);
    if (/:\s*[|>][-+]?$/.test(line)) problems.push(`${i + 1}: block scalar: ${line}`);
    if (/^\s+- - /.test(line)) problems.push(`${i + 1}: nested list: ${line}`);
    // Every YAML line is a key, a list item, or closes nothing: a bare continuation means a folded scalar.
    if (!/^\s+(- |[\w.]+:( |$))/.test(line)) problems.push(`${i + 1}: continuation line: ${line}`);
  }
  t.ok(yamlLines > 20, 'the sample has YAML to check');
  t.same(problems, [], 'no YAML line Perl YAMLish would reject');
  t.notOk(text.includes('TAP version 14'));

  // The same body at v14 does produce a block scalar: the v13 rule is doing work.
  const v14 = await writeSample(14);
  t.match(v14.text, /log: [|>][-+]?\n/, 'v14 keeps tap\'s block scalar for multi-line strings');
});

t.test('a throwing body still leaves a complete, parseable file', async (t) => {
  const path = join(dir, 'aborted.tap');
  await t.rejects(
    withTapReport(path, { title: 'aborted run' }, async (report) => {
      report.ok('power on');
      throw new Error('jig lid opened');
    }),
    { message: 'jig lid opened' },
  );
  const text = readFileSync(path, 'utf8');
  const { final, points } = await parse(text);
  t.match(final, { ok: false, count: 2, pass: 1, fail: 1, plan: { start: 1, end: 2 } });
  t.equal(points[1].name, 'report aborted by an uncaught error');
  t.match(points[1].diag, { error: { name: 'Error', message: 'jig lid opened' } });

  const ok = await withTapReport(join(dir, 'ok.tap'), { title: 'ok run', version: 13 }, async (report) => {
    report.ok('power on');
    return 42;
  });
  t.same(ok, { value: 42, summary: { total: 1, pass: 1, fail: 0, skip: 0, leaves: { total: 1, pass: 1, fail: 0, skip: 0 } } });
  const okParsed = await parse(readFileSync(join(dir, 'ok.tap'), 'utf8'));
  t.match(okParsed.final, { ok: true, count: 1, pass: 1 });
});

t.test('measurements render the decision they are given, never their own judgement; reserved diag keys', async (t) => {
  const path = join(dir, 'edge.tap');
  const report = openTapReport(path, { title: 'edge' });
  t.equal(report.measurement(judged('outside but accepted', 99, 'V', { low: 0, high: 1 }, 'pass', 'accept')), true, 'out of the limits, yet given accept: ok');
  t.equal(report.measurement(judged('inside but rejected', 0.5, 'V', { low: 0, high: 1 }, 'fail', 'reject')), false, 'inside, yet given reject: not ok');
  t.equal(report.measurement(judged('retest', 0.5, 'V', { low: 0, high: 1 }, 'marginal', 'retest')), false, 'a retest is not a pass');
  t.equal(report.measurement({ ...judged('never taken', 0, 'V', undefined, 'fail', 'reject'), taken: false }), false);
  report.ok('reserved keys', { skip: 'not a skip', todo: 'not a todo', name: 'x' });
  await report.close();
  const { points, final } = await parse(readFileSync(path, 'utf8'));
  t.match(final, { count: 5, pass: 2, fail: 3, skip: 0, todo: 0 }, 'user keys named skip/todo do not change the result');
  t.match(points[3].diag, { value: null, verdict: 'fail' });
  t.same(points[4].diag, { skip_: 'not a skip', todo_: 'not a todo', name_: 'x' });
});
