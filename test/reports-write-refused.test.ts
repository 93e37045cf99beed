import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failureClassOf } from '../cli/failure.ts';
import { runCli } from '../cli/main.ts';
import type { ReportRun } from '../reports/report-run.ts';
import { TapListener } from '../reports/tap-listener.ts';
import { openTapReport } from '../reports/tap-writer.ts';
import { REPORT_FILES, writeReports } from '../reports/write-reports.ts';
import { onVirtualJigStarted, type InProcessJig } from '../sim/jig/in-process-jig.ts';

/**
 * A report the file system refuses (disk full, a directory in the way) is a typed store failure naming
 * the file, its run and slot and the errno, exit class `store` (11, README), never an untyped Error,
 * an unhandled stream 'error' (which killed the process) or a close() that never settles; the run
 * reports (TAP, JUnit, HTML, JSON) replace files atomically, so a refused one leaves no part and no
 * temporary under the run directory, and the older file under that name stays whole.
 */
const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-report-refused-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
process.env.PLUGRIG_LOG = 'silent';

const buffer = (): { write(s: string): boolean; text(): string } => {
  const chunks: string[] = [];
  return { write: (s: string) => chunks.push(String(s)) > 0, text: () => chunks.join('') };
};
/** /dev/full's device node at `path` (every write: ENOSPC); false where mknod is not allowed. */
const fullDisk = (path: string): boolean => spawnSync('mknod', [path, 'c', '1', '7']).status === 0;

t.test('a TAP report whose writes the disk refuses: close() rejects with E_STORE naming the file; no unhandled error', async (t) => {
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => void uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  t.teardown(() => process.off('uncaughtException', onUncaught));
  // /dev/full takes the open and refuses every write, as a full disk does.
  const report = openTapReport('/dev/full', { title: 'refused', where: { run: 'run-1', slot: 3 } });
  report.ok('one point');
  const refused = await report.close().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(refused, { name: 'StoreError', code: 'E_STORE', context: { path: '/dev/full', errno: 'ENOSPC', run: 'run-1', slot: 3, step: 'report' } });
  t.match((refused as Error).message, /^TAP report \/dev\/full not written: the disk is full \(ENOSPC/);
  t.equal(failureClassOf((refused as { code: string }).code).exitCode, 11, 'the store class');
  t.same(uncaught, [], 'no uncaught exception (the stream error is the report\'s)');
  t.equal(report.failure, refused, 'the failure stays readable on the report');
});

t.test('the live slot listener: a refused slot-N.tap is thrown typed with the slot and run, at open or at the next step', async (t) => {
  const out = join(dir, 'listener');
  mkdirSync(out);
  const path = join(out, 'slot-2.tap');
  const full = fullDisk(path);
  if (!full) mkdirSync(path); // no mknod here: a directory in the way (EISDIR at open)
  const l = new TapListener(out);
  await l.emit({ type: 'run-started', run: { runId: 'run-7', plan: { name: 'p', sha256: 'x', source: 'p.json' }, jig: { name: 'j', source: 'j.json' }, startedAt: 'a' } } as never);
  const step = { index: 0, name: 'one', kind: 'main', status: 'pass', flagged: false, attempt: 1, maxAttempts: 1, earlierAttempts: [], measurements: [], checks: [], startedT: 0, finishedT: 1, ms: 1, startedAt: 'a', finishedAt: 'b' };
  const events = [
    { type: 'slot-started', slot: 2, steps: [{ name: 'one', kind: 'main' }], at: 'a' },
    { type: 'step-finished', slot: 2, result: step },
    { type: 'step-finished', slot: 2, result: { ...step, index: 1, name: 'two' } },
    { type: 'slot-finished', slot: 2, result: { verdict: 'pass', flagged: false } },
  ];
  let refused: unknown;
  for (const e of events) {
    refused = await l.emit(e as never).then(
      () => undefined,
      (err: unknown) => err,
    );
    if (refused) break;
    await new Promise((r) => setTimeout(r, 20)); // the stream's write fails asynchronously
  }
  t.match(refused, { name: 'StoreError', code: 'E_STORE', context: { slot: 2, run: 'run-7', path, errno: full ? 'ENOSPC' : 'EISDIR' } }, `typed (${full ? 'ENOSPC' : 'EISDIR'})`);
  t.match((refused as Error).message, new RegExp(`^TAP report .*slot-2\\.tap not written: ${full ? 'the disk is full' : '.*EISDIR'}`));
  await l.close(); // settles, whatever is still open
});

const run: ReportRun = { runId: 'run-r', plan: { name: 'smoke', sha256: 'ab' }, jig: { name: 'virtual' }, instruments: [], startedAt: '2026-12-01T00:00:00.000Z', aborted: false, units: [] };

t.test('run reports: a refused one is E_STORE naming the file and the run; no part and no temporary left, the older file whole', async (t) => {
  const out = join(dir, 'reports');
  mkdirSync(out);
  writeFileSync(join(out, REPORT_FILES.junit), 'older junit, whole\n');
  mkdirSync(join(out, REPORT_FILES.html)); // in the way of report.html
  const refused = await writeReports(run, out).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(refused, { name: 'StoreError', code: 'E_STORE', context: { run: 'run-r', format: 'html', errno: 'EISDIR', path: join(out, REPORT_FILES.html) } });
  t.match((refused as Error).message, /^html report .*report\.html not written: /);
  t.same(readdirSync(out).filter((f) => f.includes('.tmp-')), [], 'no temporary left');
  t.match(readFileSync(join(out, REPORT_FILES.junit), 'utf8'), /^<\?xml/, 'junit (written before html) is whole, the new one');
  t.notOk(existsSync(join(out, REPORT_FILES.json)), 'the formats after the refused one were not started');
  const ro = await writeReports(run, join(out, REPORT_FILES.junit, 'sub')).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(ro, { name: 'StoreError', code: 'E_STORE', context: { run: 'run-r', errno: 'ENOTDIR' } }, 'a directory that cannot be made (a file in its way): typed as well');
});

t.test('run reports aimed under /proc: one typed refusal that settles (Node\'s recursive mkdir never returns there)', { timeout: 20_000 }, async (t) => {
  const at = '/proc/plugrig-no-such/reports';
  const e = await writeReports(run, at).then(
    () => undefined,
    (x: unknown) => x,
  );
  t.match(e, { name: 'StoreError', code: 'E_STORE', context: { run: 'run-r', errno: 'ENOENT', path: at } });
  t.match((e as Error).message, /^report directory \/proc\/plugrig-no-such\/reports not written: ENOENT/);
});

t.test('plugrig run: slot 1\'s TAP report refused at the start: the unit fails, exit 11, one message, the jig safe', async (t) => {
  const out = join(dir, 'run-tap');
  const jigs: InProcessJig[] = [];
  const stop = onVirtualJigStarted((j) => {
    jigs.push(j);
    // The run directory exists (and was empty) before the virtual jig starts: slot-1.tap is taken now.
    if (!fullDisk(join(out, 'slot-1.tap'))) mkdirSync(join(out, 'slot-1.tap'));
  });
  t.teardown(stop);
  const stdout = buffer();
  const stderr = buffer();
  const code = await runCli(['run', '--sim', '--jig', join(ROOT, 'fixtures/jigs/virtual-1slot.json'), '--plan', 'flash-only', '--out', out, '--store', join(dir, 'tap.sqlite')], { stdout, stderr });
  t.equal(code, 11, `exit 11 (store class); stderr: ${stderr.text().slice(-500)}`);
  t.match(stderr.text(), /^plugrig: TAP report .*slot-1\.tap not written: /m, 'one message naming the report');
  t.notMatch(stderr.text(), /internal error/);
  t.match(stdout.text(), /slot 1 {2}FAIL/);
  t.match(jigs[0]!.vj.history(1).at(-1)!.state, { mainsEnergised: false, uartConnected: false, supply3v3: false, loadsOn: [] }, 'the jig ended safe');
});

t.test('plugrig run: the run reports refused at the end: exit 11 (the store class), not the undocumented 1', async (t) => {
  const out = join(dir, 'run-reports');
  const stop = onVirtualJigStarted(() => mkdirSync(join(out, REPORT_FILES.html)));
  t.teardown(stop);
  const stdout = buffer();
  const stderr = buffer();
  const code = await runCli(['run', '--sim', '--jig', join(ROOT, 'fixtures/jigs/virtual-1slot.json'), '--plan', 'flash-only', '--out', out, '--store', join(dir, 'reports.sqlite')], { stdout, stderr });
  t.match(stdout.text(), /slot 1 {2}PASS/, 'the unit passed');
  t.equal(code, 11, `exit 11; stderr: ${stderr.text().slice(-500)}`);
  t.match(stderr.text(), /^plugrig: run reports not written: html report .*report\.html not written: .*EISDIR/m);
  t.same(readdirSync(out).filter((f) => f.includes('.tmp-')), [], 'no temporary left');
});
