import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { interruptPartialRecords } from '../station/recover.ts';
import { readStationState, STATION_STATE_SCHEMA, type StationState } from '../station/station-state.ts';

// The resume's renames when a start was killed between renaming a record and the state write that
// lists it: the kept file must not be overwritten by the next resume's rename.
const dir = mkdtempSync(join(tmpdir(), 'plugrig-recover-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const standing = (interrupted: string[]): StationState['slots'][string] => ({ phase: 'flash', finishedSteps: 2, plannedSteps: 9, unit: {}, complete: false, interrupted, updatedAt: 'x' });
const state = (): StationState => ({ schema: STATION_STATE_SCHEMA, pid: 1, status: 'aborted', history: [], slots: { '1': standing(['slot-1.interrupted-1.json']), '2': standing([]) }, startedAt: 'x', updatedAt: 'x' });

t.test('a kept record the state does not list yet is listed, and the next kept one takes the next number', async (t) => {
  // Slot 1: try 1 kept and listed; try 2 kept (renamed) but the start died before listing it; try 3's record.
  writeFileSync(join(dir, 'slot-1.interrupted-1.json'), 'try 1');
  writeFileSync(join(dir, 'slot-1.interrupted-2.json'), 'try 2');
  writeFileSync(join(dir, 'slot-1.json'), 'try 3');
  writeFileSync(join(dir, 'slot-2.json'), 'slot 2 try 1');
  await interruptPartialRecords(dir, state(), [1, 2]);
  const files = readdirSync(dir).sort();
  t.same(files.filter((f) => f.startsWith('slot-')), ['slot-1.interrupted-1.json', 'slot-1.interrupted-2.json', 'slot-1.interrupted-3.json', 'slot-2.interrupted-1.json']);
  t.equal(readFileSync(join(dir, 'slot-1.interrupted-2.json'), 'utf8'), 'try 2', 'the unlisted kept try is not overwritten');
  t.equal(readFileSync(join(dir, 'slot-1.interrupted-3.json'), 'utf8'), 'try 3');
  const st = readStationState(dir)!;
  t.same(st.slots['1']!.interrupted, ['slot-1.interrupted-1.json', 'slot-1.interrupted-2.json', 'slot-1.interrupted-3.json'], 'every kept try is listed, in order');
  t.same(st.slots['2']!.interrupted, ['slot-2.interrupted-1.json']);
});
