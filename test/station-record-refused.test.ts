import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failureClassOf } from '../cli/failure.ts';
import { runCli } from '../cli/main.ts';
import { UnitRecordWriter, type UnitRecord } from '../reports/unit-record.ts';
import type { StationState } from '../station/station-state.ts';
import { onVirtualJigStarted, type InProcessJig } from '../sim/jig/in-process-jig.ts';
import type { StepResult } from '../suites/model/step-result.ts';

/**
 * A unit record the file system refuses (disk full, permission, a directory in the way) is a
 * persistence failure: the unit fails for it with a typed E_STORE error, the run exits with the store
 * class (11), the jig still ends safe, the record on disk stays the last whole one (never a torn or
 * temporary file), and the station state never counts more than the record holds (a resume must not
 * take the unit for finished).
 */
const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-record-refused-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function buffer(): { write(s: string): boolean; text(): string } {
  const chunks: string[] = [];
  return { write: (s: string) => chunks.push(String(s)) > 0, text: () => chunks.join('') };
}

const step = (name: string): StepResult => ({
  index: 0, name, kind: 'main', status: 'pass', flagged: false, attempt: 1, maxAttempts: 1, earlierAttempts: [], measurements: [], checks: [], startedT: 0, finishedT: 1, ms: 1, startedAt: 'a', finishedAt: 'b',
});

t.test('a full disk under the unit record: E_STORE naming the record and the cause; the previous record stays whole', async (t) => {
  const out = join(dir, 'writer');
  const w = new UnitRecordWriter(out, { wallTime: () => '2026-12-01T00:00:00.000Z' });
  await w.emit({ type: 'slot-started', slot: 1, steps: [{ name: 'one', kind: 'main' }, { name: 'two', kind: 'main' }], at: 'x' });
  await w.emit({ type: 'step-finished', slot: 1, result: step('one') });
  const before = readFileSync(join(out, 'slot-1.json'), 'utf8');
  // The temporary the writer opens next is /dev/full's device (a real ENOSPC on write); without mknod, a directory (EISDIR).
  const tmp = join(out, `slot-1.json.tmp-${process.pid}`);
  const full = spawnSync('mknod', [tmp, 'c', '1', '7']).status === 0;
  if (!full) mkdirSync(tmp);
  const refused = await w.emit({ type: 'step-finished', slot: 1, result: step('two') }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(refused, { name: 'StoreError', code: 'E_STORE', context: { slot: 1, step: 'unit-record', errno: full ? 'ENOSPC' : 'EISDIR' } }, 'typed, with the slot and the errno');
  t.match((refused as Error).message, full ? /^unit record .*slot-1\.json not written: the disk is full \(ENOSPC/ : /^unit record .*slot-1\.json not written: .*EISDIR/);
  t.equal(failureClassOf((refused as { code: string }).code).exitCode, 11, 'the store class');
  t.equal(readFileSync(join(out, 'slot-1.json'), 'utf8'), before, 'the record on disk is the last whole one');
  if (full) t.notOk(existsSync(tmp), 'the temporary is gone (the writer removed what it created)');
  rmSync(tmp, { recursive: true, force: true });
  // The disk has room again: the next write holds every step, the refused one included (nothing lost).
  await w.emit({ type: 'step-finished', slot: 1, result: step('three') });
  const after = JSON.parse(readFileSync(join(out, 'slot-1.json'), 'utf8')) as UnitRecord;
  t.same(after.steps.map((s) => s.name), ['one', 'two', 'three']);
});

t.test('plugrig run: slot 1 record refused from mains-on on: the unit fails, exit 11, the jig safe, record and state consistent', async (t) => {
  const out = join(dir, 'run');
  let planted: string | undefined;
  const jigs: InProcessJig[] = [];
  const stop = onVirtualJigStarted((j) => {
    jigs.push(j);
    // Mid-run (flash and provisioning recorded, mains just switched on): a directory where the writer's
    // temporary goes refuses every later write of slot 1's record, as a disk that stays full does.
    j.vj.slot(1).history.onChange((c) => {
      if (planted === undefined && c.state.mainsEnergised) {
        planted = join(out, `slot-1.json.tmp-${process.pid}`);
        mkdirSync(planted);
        writeFileSync(join(planted, 'in-the-way'), '');
      }
    });
  });
  t.teardown(stop);
  const stdout = buffer();
  const stderr = buffer();
  const code = await runCli(['run', '--sim', '--jig', join(ROOT, 'fixtures/jigs/virtual-1slot.json'), '--plan', 'smoke', '--out', out, '--store', join(dir, 'store.sqlite')], { stdout, stderr });
  t.ok(planted, 'the record became unwritable while the run went on');
  t.equal(code, 11, `exit 11 (store class); stderr: ${stderr.text().slice(-600)}`);
  t.match(stderr.text(), /^plugrig: unit record .*slot-1\.json not written: .*EISDIR/m, 'one message names the record and the cause');
  t.notMatch(stderr.text(), /internal error/);
  t.match(stdout.text(), /slot 1 {2}FAIL/);

  // The jig: mains never with the UART side, and everything off at the end.
  const vj = jigs[0]!.vj;
  t.same(vj.history(1).filter((e) => e.state.mainsEnergised && (e.state.uartConnected || e.state.supply3v3)), [], 'never mains with UART or 3V3');
  t.match(vj.history(1).at(-1)!.state, { mainsEnergised: false, uartConnected: false, supply3v3: false, loadsOn: [] }, 'the jig ended safe');

  // On disk: the last whole record, no stray temporary of ours, and a state file not ahead of it.
  const rec = JSON.parse(readFileSync(join(out, 'slot-1.json'), 'utf8')) as UnitRecord;
  t.equal(rec.complete, false, 'the record was never completed (its writes were refused)');
  t.ok(rec.steps.length >= 2, `the record holds the steps before the refusal (${rec.steps.map((s) => s.name).join(', ')})`);
  t.same(readdirSync(out).filter((f) => f.includes('.tmp-') && join(out, f) !== planted), [], 'no temporary file left');
  const st = JSON.parse(readFileSync(join(out, 'station-state.json'), 'utf8')) as StationState;
  t.equal(st.slots['1']!.complete, false, 'the state does not call a unit complete whose record is not');
  t.ok(st.slots['1']!.finishedSteps <= rec.steps.length, `the state counts no step the record lacks (${st.slots['1']!.finishedSteps} <= ${rec.steps.length})`);
  // Nothing lost: the store (and the reports rendered from it) has the unit, failed, with every step.
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { units: Array<{ outcome: string; reason?: string }>; steps: Array<{ name: string }> };
  t.not(summary.units[0]?.outcome, 'pass', `the store has the unit, not passed (${summary.units[0]?.outcome})`);
  t.match(summary.units[0]?.reason, /unit record .*not written/, 'with the refused record as its reason');
  t.ok(summary.steps.length > rec.steps.length, `the store kept the steps the record could not (${summary.steps.length} > ${rec.steps.length})`);
});
