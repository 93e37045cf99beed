import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser } from 'tap-parser';
import { openStoreForReading } from '../rig/store/open-store.ts';
import { reportRunFromStore } from '../reports/report-run-from-store.ts';
import { readReportRun } from '../reports/store-reports.ts';
import { REPORT_FILES, REPORT_FORMATS, renderReport } from '../reports/write-reports.ts';
import type { ResultEvent } from '../suites/model/events.ts';
import { fixtureRecords, fixtureRun } from './fixtures/reports/load.ts';
import { replayIntoStore } from './fixtures/reports/replay.ts';
import { plugrigInProcess } from './fixtures/cli-in-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'plugrig-report-store-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const storePath = join(dir, 'store.sqlite');
// Slot 2 waited 2.5 s for the shared meter before its calibration step (as station/instrument-lease reports it).
const calRecords = fixtureRecords('calibrate-4slot');
const calStep = calRecords[1]!.steps[2]!;
const meterWait: ResultEvent[] = [
  { type: 'instrument', slot: 2, step: calStep.name, instrument: 'meter', kind: 'wait', t: calStep.startedT - 2500, at: calStep.startedAt },
  { type: 'instrument', slot: 2, step: calStep.name, instrument: 'meter', kind: 'acquired', t: calStep.startedT, at: calStep.startedAt, waitedMs: 2500 },
];
const calRun = await replayIntoStore(storePath, calRecords, { events: meterWait });
const facRun = await replayIntoStore(storePath, fixtureRecords('factory-1slot'));

t.test('a run read back from the store carries every step, measurement and factor the reports show', async (t) => {
  const store = await openStoreForReading(storePath);
  t.teardown(() => store.close());
  for (const [id, name] of [[calRun, 'calibrate-4slot'], [facRun, 'factory-1slot']] as const) {
    const fromStore = await readReportRun(store.reader, id, store.where);
    const fromRecords = fixtureRun(name);
    t.equal(fromStore.units.length, fromRecords.units.length);
    for (const [i, u] of fromStore.units.entries()) {
      const r = fromRecords.units[i]!;
      t.same([u.slot, u.mac, u.verdict, u.flagged, u.reason], [r.slot, r.mac, r.verdict, r.flagged, r.reason], `slot ${u.slot}: identity and verdict`);
      t.same(u.calibration, r.calibration, `slot ${u.slot}: calibration factors`);
      t.same(u.steps, r.steps, `slot ${u.slot}: steps, attempts, measurements (value, U, k, limits, verdict), checks, timing`);
    }
    // Everything but the run header (the store adds the station and instruments) renders the same.
    const body = (s: string): string => s.slice(s.indexOf('# Subtest:'));
    t.equal(body(await renderReport(fromStore, 'tap')), body(await renderReport({ ...fromRecords, station: fromStore.station! }, 'tap')), `${name}: the TAP of the stored run is the TAP of the run`);
  }
  const cal = await readReportRun(store.reader, calRun, store.where);
  t.same(cal.units.map((u) => u.waits), [[], [{ instrument: 'meter', step: calStep.name, fromT: calStep.startedT - 2500, toT: calStep.startedT, timedOut: false }], [], []], 'instrument waits come from the stored unit timeline');
  t.match(await renderReport(cal, 'html'), `<title>slot 2, ${calStep.name}: waited 2.5 s for meter</title>`, 'and are drawn on the slot timeline');
  const run = (await store.reader.readRun(facRun))!;
  t.equal(run.status, 'finished');
  t.equal(reportRunFromStore(run).station, 'test-station');
});

t.test('same store, same bytes (every format, two reads)', async (t) => {
  const texts = async (): Promise<string[]> => {
    const store = await openStoreForReading(storePath);
    try {
      const run = await readReportRun(store.reader, calRun, store.where);
      return Promise.all(REPORT_FORMATS.map((f) => renderReport(run, f)));
    } finally {
      await store.close();
    }
  };
  t.same(await texts(), await texts());
});

/** `plugrig report` in-process (runCli with captured stdout/stderr). */
const plugrig = (...args: string[]) => plugrigInProcess(args, { env: { PLUGRIG_LOG: 'silent' } });

t.test('plugrig report <run-id> re-renders from the store', async (t) => {
  const out = join(dir, 'out');
  const [r, last] = await Promise.all([plugrig('report', calRun, '--store', storePath, '--out', out), plugrig('report', 'last', '--store', storePath, '--format', 'json,junit', '--out', join(dir, 'last'), '--json')]);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, new RegExp(`run ${calRun}, plan calibrate: 0 of 4 unit\\(s\\) passed`));
  for (const f of REPORT_FORMATS) t.ok(existsSync(join(out, REPORT_FILES[f])), `${REPORT_FILES[f]} written`);
  const parsed = await new Promise<{ ok: boolean; count: number }>((res) => new Parser((f) => res(f as never)).end(readFileSync(join(out, 'report.tap'), 'utf8')));
  t.same([parsed.ok, parsed.count], [false, 4], 'the TAP grades the 4 stored units');
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { runId: string; counts: { failed: number } };
  t.same([summary.runId, summary.counts.failed], [calRun, 4]);

  t.equal(last.exitCode, 0, last.stderr);
  t.same(Object.keys((JSON.parse(last.stdout) as { files: Record<string, string> }).files), ['json', 'junit'], 'only the formats asked for');
  t.match(readFileSync(join(dir, 'last', 'summary.json'), 'utf8'), new RegExp(`"runId": "${facRun}"`), 'last = the newest run');
});

t.test('plugrig report: bad input is one clear error, exit 2, nothing written', async (t) => {
  const [unknown, format, noStore] = await Promise.all([
    plugrig('report', 'no-such-run', '--store', storePath, '--out', join(dir, 'x1')),
    plugrig('report', calRun, '--store', storePath, '--format', 'pdf', '--out', join(dir, 'x2')),
    plugrig('report', calRun, '--store', join(dir, 'missing.sqlite'), '--out', join(dir, 'x3')),
  ]);
  t.equal(unknown.exitCode, 2);
  t.match(unknown.stderr, new RegExp(`no run no-such-run in ${storePath.replace(/[.]/g, '\\.')}; newest: ${facRun}`));
  t.equal(format.exitCode, 2);
  t.match(format.stderr, /--format pdf: use all or one or more of tap, tap13, junit, html, json/);
  t.equal(noStore.exitCode, 2);
  t.match(noStore.stderr, /no store there/);
  t.notOk(existsSync(join(dir, 'missing.sqlite')), 'reading never creates a store');
  for (const d of ['x1', 'x2', 'x3']) t.notOk(existsSync(join(dir, d)), `no ${d} directory`);
});
