import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { checkPathText, confinedPath } from '../rig/core/confined-path.ts';
import { createLogger } from '../rig/core/log.ts';
import { TapListener } from '../reports/tap-listener.ts';
import { openTapReport } from '../reports/tap-writer.ts';
import { UnitRecordWriter } from '../reports/unit-record.ts';
import { STATION_STATE_FILE, STATION_STATE_SCHEMA, writeStationState, type StationState } from '../station/station-state.ts';
import { saveStockBackup } from '../suites/flash-backup.ts';
import { runSlot } from '../suites/runner/run-slot.ts';
import type { Step } from '../suites/runner/step.ts';

/**
 * Nothing can make the rig write outside its run directory: names are checked in one place
 * (rig/core/confined-path.ts) and every writer of the run directory — unit records, TAP reports,
 * station-state.json, stock backups (run reports and the log go through the same function) —
 * refuses a link planted under the name it writes or under its temporary name, so the file a
 * link points to stays as it was.
 */
const root = mkdtempSync(join(tmpdir(), 'plugrig-confine-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

/** A run directory next to an outside directory holding a victim file the rig must never touch. */
function setup(name: string): { run: string; outside: string; victim: string } {
  const run = join(root, name, 'run');
  const outside = join(root, name, 'outside');
  mkdirSync(run, { recursive: true });
  mkdirSync(outside, { recursive: true });
  const victim = join(outside, 'victim.txt');
  writeFileSync(victim, 'precious\n');
  return { run, outside, victim };
}

t.test('confinedPath: names that leave the directory are refused, with the reason', async (t) => {
  const { run, outside } = setup('names');
  t.equal(confinedPath(run, 'slot-1.json', 'unit record'), join(run, 'slot-1.json'), 'a plain name');
  t.equal(confinedPath(run, 'sub/../slot-1.json', 'unit record'), join(run, 'slot-1.json'), '.. that stays inside is normalised');
  t.equal(confinedPath(run, '..hidden', 'x'), join(run, '..hidden'), 'a name that only starts with two dots');
  t.throws(() => confinedPath(run, '../outside/victim.txt', 'report'), { code: 'E_CONFIG', message: /report "\.\.\/outside\/victim\.txt" leaves the run directory/ });
  t.throws(() => confinedPath(run, 'a/../../x', 'report'), { message: /leaves the run directory/ });
  t.throws(() => confinedPath(run, '..', 'report'), { message: /leaves the run directory/ });
  t.throws(() => confinedPath(run, '.', 'report'), { message: /leaves the run directory/ }, 'the directory itself is not a file');
  t.throws(() => confinedPath(run, '/etc/passwd', 'stock backup'), { message: /stock backup "\/etc\/passwd" is an absolute path; it must name a file inside the run directory/ });
  t.throws(() => confinedPath(run, '', 'x'), { message: /is empty/ });
  t.throws(() => confinedPath(run, 'slot-1\u0000.json', 'unit record'), { message: /contains a NUL byte/ });
  t.throws(() => confinedPath(run, 'slot-1\n.json', 'unit record'), { message: /contains a newline/ });
  t.throws(() => confinedPath(run, 'slot-1\r.json', 'unit record'), { message: /contains a carriage return/ });
  t.throws(() => confinedPath(run, 'slot\u001b[2J.json', 'unit record'), { message: /control character 0x1b/ });
  symlinkSync(outside, join(run, 'sub'));
  t.throws(() => confinedPath(run, 'sub/victim.txt', 'report'), { message: /sub is a symbolic link to .*outside, outside the run directory/ }, 'a directory link that points out');
  mkdirSync(join(run, 'real'));
  symlinkSync(join(run, 'real'), join(run, 'inner'));
  t.equal(confinedPath(run, 'inner/x.json', 'report'), join(run, 'inner/x.json'), 'a directory link that stays inside is fine');
  symlinkSync(join(run, 'real', 'x'), join(run, 'file-link'));
  t.throws(() => confinedPath(run, 'file-link', 'report'), { message: /file-link is a symbolic link to .*; refusing to write through it/ }, 'a file link, even one pointing inside');
  symlinkSync(join(run, 'nowhere'), join(run, 'dangling'));
  t.throws(() => confinedPath(run, 'dangling', 'report'), { message: /symbolic link/ }, 'a dangling link');
  t.doesNotThrow(() => checkPathText('runs/2026-12-01T14-07-08-571Z', '--out'));
  t.throws(() => checkPathText('runs/a\nb', '--out'), { message: /--out "runs\/a\\nb" contains a newline/ });
});

const victimIntact = (t: Test, victim: string): void => {
  t.equal(readFileSync(victim, 'utf8'), 'precious\n', 'the file outside the run directory is untouched');
};

t.test('station-state.json: a link under its name or its temporary name is not written through', async (t) => {
  const state: StationState = { schema: STATION_STATE_SCHEMA, pid: process.pid, status: 'running', history: [], slots: {}, startedAt: 'x', updatedAt: 'x' };
  const a = setup('state-final');
  symlinkSync(a.victim, join(a.run, STATION_STATE_FILE));
  await t.rejects(writeStationState(a.run, state), { code: 'E_CONFIG', message: /station state .*station-state\.json is a symbolic link/ });
  victimIntact(t, a.victim);
  const b = setup('state-tmp');
  symlinkSync(b.victim, join(b.run, `${STATION_STATE_FILE}.tmp-${process.pid}`));
  await t.rejects(writeStationState(b.run, state), { code: 'ELOOP' }, 'the temporary file is opened without following links');
  victimIntact(t, b.victim);
});

t.test('unit record: a planted slot-N.json link or temporary link leaves the outside file alone', async (t) => {
  for (const plant of ['slot-4.json', `slot-4.json.tmp-${process.pid}`]) {
    const s = setup(`record-${plant.length}`);
    symlinkSync(s.victim, join(s.run, plant));
    const writer = new UnitRecordWriter(s.run);
    const steps: Step[] = [
      { name: 'one step', run: async (ctx) => void ctx.check('ok', true) },
      { name: 'safe state', kind: 'safe-state', run: async () => undefined },
    ];
    const r = await runSlot(steps, { slot: 4, clock: new VirtualClock(), log: createLogger({}, 'silent'), sink: writer });
    t.equal(r.steps.length, 2, `${plant}: the slot ran (its record writes were refused)`);
    victimIntact(t, s.victim);
    t.notOk(writer.paths.has(4), `${plant}: no record claimed written`);
    t.same(readdirSync(s.run), [plant], `${plant}: nothing else written`);
  }
});

t.test('TAP reports: no write through a link named like the report', async (t) => {
  const s = setup('tap');
  symlinkSync(s.victim, join(s.run, 'slot-2.tap'));
  const listener = new TapListener(s.run);
  await t.rejects(Promise.resolve().then(() => listener.emit({ type: 'slot-started', slot: 2 } as never)), { message: /TAP report .*slot-2\.tap is a symbolic link/ });
  t.throws(() => openTapReport(join(s.run, 'slot-2.tap'), { title: 'x' }), { message: /cannot write TAP report .*symbolic link; refusing to write through it/ }, 'openTapReport opens without following');
  victimIntact(t, s.victim);
});

t.test('stock backup: never into a link, never out of the directory', async (t) => {
  const s = setup('backup');
  symlinkSync(s.victim, join(s.run, 'slot-1-backup-c8478c000101.bin'));
  await t.rejects(saveStockBackup(s.run, 'slot-1-backup-c8478c000101.bin', 0x11000, new Uint8Array(16)), { message: /stock backup .* is a symbolic link/ });
  await t.rejects(saveStockBackup(s.run, '../outside/victim.txt', 0x11000, new Uint8Array(16)), { message: /leaves the run directory/ });
  victimIntact(t, s.victim);
  t.same(readdirSync(s.outside), ['victim.txt'], 'nothing written next to it');
});
