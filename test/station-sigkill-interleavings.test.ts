import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { UnitRecordWriter, type UnitRecord } from '../reports/unit-record.ts';
import { SqliteStore, type RunMeta } from '../rig/store/sqlite-store.ts';
import { StoreSink } from '../rig/store/store-sink.ts';
import { closeFromRecords, findInterrupted, interruptPartialRecords, markAborted, recommitRunRecords, unfinishedSlots } from '../station/recover.ts';
import { readStationState, StationStateWriter, writeStationState } from '../station/station-state.ts';
import type { ResultEvent, ResultSink } from '../suites/model/events.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { runStation } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { syntheticStationImage } from './fixtures/virtual-station.ts';
import { fixtureRun, macOf, type UnitPlan } from './store-run-fixture.ts';

/**
 * Every way a SIGKILL can cut the station's three writes of one event — the unit record (R), the
 * station state (S), the store (D) — built on disk directly, then resumed as `plugrig run --resume`
 * does (station/recover.ts) and the resumed slots run to the end. After each: every slot recorded
 * complete once, one unit row per slot, and the steps (and measurements) in the records and in the
 * store are the same multiset: each finished step exactly once in both. The station writes R, then
 * S, then D (station/run-station.ts tees records, TAP, state, then the caller's sinks, the store
 * first); the cuts follow that order and the other order that keeps the record first (R, D, S). An
 * order with the store ahead of the record would leave a step the kept record lacks; none exists.
 */
const base = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'plugrig-interleave-'));
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const units: UnitPlan[] = [{ slot: 1, mac: macOf(1) }, { slot: 2, mac: macOf(2), firstPowerErrorPct: 1.9 }];
const meta: RunMeta = { station: { id: 'station-k', name: 'Station K' }, instruments: [{ id: 'ref0', kind: 'pzem004t', manufacturer: 'Peacefair', model: 'PZEM-004T', serial: 'PZEM-SIM-0001' }] };
const slotInstruments = new Map([[1, 'ref0'], [2, 'ref0']]);
// A pid that is gone: the killed station's.
const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;

type Writer = 'R' | 'S' | 'D';
/** Which writers write anything for an event ('end' is the state writer's run end). */
function writesFor(e: ResultEvent | 'end'): Writer[] {
  if (e === 'end') return ['S'];
  switch (e.type) {
    case 'run-started':
      return ['S', 'D']; // the record writer only remembers the run
    case 'slot-started':
    case 'unit':
    case 'step-finished':
    case 'slot-finished':
      return ['R', 'S', 'D'];
    case 'run-finished':
    case 'slot-state':
    case 'instrument':
      return ['D'];
    default:
      return [];
  }
}

interface Writers {
  R: UnitRecordWriter;
  S: StationStateWriter;
  D: StoreSink;
}

/** One recorded run of both slots, replayed into fresh writers for every cut. */
const recorded: ResultEvent[] = [];
const first = await fixtureRun({ units, seed: 29, sink: { emit: (e) => void recorded.push(e) } });
const run = first.run;
const stream: Array<ResultEvent | 'end'> = [...recorded, 'end'];

async function deliver(w: Writers, e: ResultEvent | 'end', to: readonly Writer[]): Promise<void> {
  for (const k of to) {
    if (e === 'end') await w.S.end('finished');
    else await w[k].emit(e);
  }
}

/** Build the disk a kill left: events before `cut` reached every writer, event `cut` only `partial`. */
async function killedAt(dir: string, cut: number, order: readonly Writer[], partial: readonly Writer[]): Promise<void> {
  const store = SqliteStore.open(join(dir, 'store.sqlite'));
  const w: Writers = { R: new UnitRecordWriter(dir), S: new StationStateWriter(dir, { slots: [1, 2] }), D: new StoreSink(store, { meta, slotInstruments, sessionId: 'killed' }) };
  for (let i = 0; i < cut; i++) await deliver(w, stream[i]!, order);
  await deliver(w, stream[cut]!, order.filter((k) => partial.includes(k)));
  // The station is gone: its pid is dead, in the state file and as the store's run owner.
  const st = readStationState(dir);
  if (st) await writeStationState(dir, { ...st, pid: deadPid });
  store.db.prepare('UPDATE runs SET owner_pid = ?').run(deadPid);
  store.close();
}

/** `plugrig run --resume` on the disk, with its resumed slots run to the end; false if nothing could resume (no state file). */
async function resume(dir: string, o: { recommitTwice?: boolean; bad: string[] }): Promise<boolean> {
  const st = readStationState(dir);
  if (!st) return false;
  if (st.status === 'finished') return true;
  const crashed = findInterrupted(dir);
  if (!crashed) throw new Error(`the state says ${st.status} by pid ${st.pid}, yet no interrupted run was found`);
  const state = await markAborted(crashed);
  const store = SqliteStore.open(join(dir, 'store.sqlite'));
  try {
    recommitRunRecords(store, dir, state, { required: true });
    // A resume killed right after bringing the store up, then resumed again: nothing changes twice.
    if (o.recommitTwice) recommitRunRecords(store, dir, state, { required: true });
    // Before any re-test: the store holds the factors of a calibration a record holds (the re-test may never get that far).
    for (const { file, rec } of records(dir).filter((x) => !x.file.includes('.interrupted-'))) {
      const cal = rec.unit.calibration as { ratios: Record<string, number> } | undefined;
      if (!cal || !rec.steps.some((s) => JSON.stringify(s.data?.ratios) === JSON.stringify(cal.ratios))) continue;
      const factors = store.db.prepare('SELECT quantity, factor FROM calibration_factors WHERE unit_id = ? ORDER BY quantity').all(`${run.runId}:${rec.slot}`) as Array<{ quantity: string; factor: number }>;
      if (JSON.stringify(factors) !== JSON.stringify(['current', 'power', 'voltage'].map((q) => ({ quantity: q, factor: cal.ratios[q] })))) o.bad.push(`${file}: calibration factors in the store ${JSON.stringify(factors)} after the resume brought it up, recorded ${JSON.stringify(cal.ratios)}`);
    }
    const slots = unfinishedSlots(state).map((u) => u.slot);
    if (slots.length === 0) {
      await closeFromRecords(store, dir, state);
      return true;
    }
    await interruptPartialRecords(dir, state, slots);
    const w: Writers = { R: new UnitRecordWriter(dir), S: new StationStateWriter(dir, { previous: state, slots }), D: new StoreSink(store, { meta, slotInstruments, sessionId: 'resumed' }) };
    // A later moment than the killed try's slot start (as a real resume is): the slot attempts differ.
    const later = (e: ResultEvent): ResultEvent => (e.type === 'slot-started' ? { ...e, at: new Date(Date.parse(e.at) + 3_600_000).toISOString() } : e);
    const sink: ResultSink = { emit: (e) => deliver(w, later(e), ['R', 'S', 'D']) };
    await fixtureRun({ units: units.filter((u) => slots.includes(u.slot)), seed: 30, runId: run.runId, startedAt: run.startedAt, sink });
    await w.S.end('finished');
    return true;
  } finally {
    store.close();
  }
}

function records(dir: string): Array<{ file: string; rec: UnitRecord }> {
  return readdirSync(dir)
    .filter((f) => /^slot-\d+(\.interrupted-\d+)?\.json$/.test(f))
    .sort()
    .map((file) => ({ file, rec: JSON.parse(readFileSync(join(dir, file), 'utf8')) as UnitRecord }));
}

/** What must hold after any kill and its resume; one line per thing that does not (empty: all hold). */
function findings(dir: string): string[] {
  const out: string[] = [];
  const recs = records(dir);
  const state = readStationState(dir)!;
  if (state.status !== 'finished') out.push(`state says ${state.status}`);
  const listed = new Set(Object.values(state.slots).flatMap((s) => s.interrupted));
  for (const { file } of recs) if (file.includes('.interrupted-') && !listed.has(file)) out.push(`${file} kept but not listed`);
  const store = SqliteStore.open(join(dir, 'store.sqlite'));
  try {
    const runRow = store.db.prepare('SELECT status FROM runs WHERE run_id = ?').get(run.runId) as { status: string } | undefined;
    if (runRow?.status !== 'finished') out.push(`store says the run is ${runRow?.status}`);
    const rows = store.db.prepare('SELECT slot, complete, verdict FROM units WHERE run_id = ? ORDER BY slot').all(run.runId) as Array<{ slot: number; complete: number; verdict: string | null }>;
    for (const slot of [1, 2]) {
      const complete = recs.filter((x) => x.rec.slot === slot && x.rec.complete);
      if (complete.length !== 1) out.push(`slot ${slot} recorded complete ${complete.length} times (${complete.map((x) => x.file).join(', ')})`);
      const current = recs.find((x) => x.file === `slot-${slot}.json`);
      if (!current?.rec.complete) out.push(`slot-${slot}.json is not complete`);
      if (!state.slots[String(slot)]?.complete) out.push(`the state does not say slot ${slot} complete`);
      const unit = rows.filter((r) => r.slot === slot);
      if (unit.length !== 1) out.push(`the store holds slot ${slot} ${unit.length} times`);
      else if (!unit[0]!.complete || unit[0]!.verdict !== current?.rec.verdict) out.push(`the store's slot ${slot} is complete=${unit[0]!.complete} verdict ${unit[0]!.verdict}, its record ${current?.rec.verdict}`);
      const cal = current?.rec.unit.calibration as { ratios: Record<string, number> } | undefined;
      const factors = store.db.prepare('SELECT quantity, factor FROM calibration_factors WHERE unit_id = ? ORDER BY quantity').all(`${run.runId}:${slot}`) as Array<{ quantity: string; factor: number }>;
      if (cal && JSON.stringify(factors) !== JSON.stringify(['current', 'power', 'voltage'].map((q) => ({ quantity: q, factor: cal.ratios[q] })))) out.push(`slot ${slot} calibration factors in the store ${JSON.stringify(factors)}, recorded ${JSON.stringify(cal.ratios)}`);
    }
    // Steps and measurements: the records' and the store's, as multisets, keyed by the slot attempt's start.
    const stored = (store.db.prepare('SELECT u.slot, a.started_at AS at, s.step_index AS i, s.name, s.attempt, s.status FROM steps s JOIN units u ON u.unit_id = s.unit_id JOIN slot_attempts a ON a.unit_id = s.unit_id AND a.attempt = s.slot_attempt WHERE u.run_id = ?').all(run.runId) as Array<Record<string, unknown>>).map((r) => `${r.slot}|${r.at}|${r.i}|${r.name}|${r.attempt}|${r.status}`).sort();
    const inRecords = recs.flatMap(({ rec }) => rec.steps.map((s) => `${rec.slot}|${rec.startedAt}|${s.index}|${s.name}|${s.attempt}|${s.status}`)).sort();
    if (JSON.stringify(stored) !== JSON.stringify(inRecords)) out.push(`steps differ: only in the store ${JSON.stringify(stored.filter((x) => !inRecords.includes(x)))}, only in records ${JSON.stringify(inRecords.filter((x) => !stored.includes(x)))}, ${stored.length} stored vs ${inRecords.length} recorded`);
    const storedM = (store.db.prepare('SELECT u.slot, a.started_at AS at, m.step_index AS i, m.step_attempt AS sa, m.seq, m.measurement_id AS id, m.value FROM measurements m JOIN units u ON u.unit_id = m.unit_id JOIN slot_attempts a ON a.unit_id = m.unit_id AND a.attempt = m.slot_attempt WHERE u.run_id = ?').all(run.runId) as Array<Record<string, unknown>>).map((r) => `${r.slot}|${r.at}|${r.i}|${r.sa}|${r.seq}|${r.id}|${r.value}`).sort();
    const recordedM = recs.flatMap(({ rec }) => rec.steps.flatMap((s) => [...s.earlierAttempts.map((a) => ({ attempt: a.attempt, ms: a.measurements })), { attempt: s.attempt, ms: s.measurements }].flatMap((a) => a.ms.map((m, seq) => `${rec.slot}|${rec.startedAt}|${s.index}|${a.attempt}|${seq}|${m.id}|${m.value}`)))).sort();
    if (JSON.stringify(storedM) !== JSON.stringify(recordedM)) out.push(`measurements differ: ${storedM.length} stored vs ${recordedM.length} recorded`);
  } finally {
    store.close();
  }
  return out;
}

// The cuts: every event at least one writer writes, every prefix of the two record-first orders.
const cuts: Array<{ cut: number; order: Writer[]; partial: Writer[]; name: string }> = [];
const seen = new Set<string>();
stream.forEach((e, cut) => {
  const writes = writesFor(e);
  if (!writes.length || (e !== 'end' && (e.type === 'slot-state' || e.type === 'instrument'))) return;
  for (const order of [['R', 'S', 'D'], ['R', 'D', 'S']] as Writer[][]) {
    for (let k = 0; k < 3; k++) {
      const partial = order.slice(0, k).filter((w) => writes.includes(w));
      // What is on disk depends only on which writers got the cut event, not on their order.
      const key = `${cut}|${[...partial].sort().join('')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const what = e === 'end' ? 'the state end' : `${e.type}${'slot' in e ? ` slot ${e.slot}` : ''}${e.type === 'step-finished' ? ` '${e.result.name}'` : ''}`;
      cuts.push({ cut, order, partial, name: `#${cut} ${what}: ${partial.length ? `${partial.join(', ')} written` : 'none written'} (order ${order.join('')})` });
    }
  }
});

t.test(`${cuts.length} cuts of the record / state / store writes, each resumed`, async (t) => {
  let resumed = 0;
  let broughtForward = 0;
  const bad: string[] = [];
  for (const [n, c] of cuts.entries()) {
    const dir = join(base, `cut-${n}`);
    await killedAt(dir, c.cut, c.order, c.partial);
    const before = readStationState(dir);
    const completeBefore = records(dir).filter((x) => x.rec.complete).map((x) => x.rec.slot);
    const mid: string[] = [];
    const didResume = await resume(dir, { recommitTwice: n % 2 === 0, bad: mid });
    for (const f of mid) bad.push(`${c.name}: ${f}`);
    if (!didResume) {
      // No state file: the kill came before the run's first state write; nothing was recorded yet.
      if (records(dir).length) bad.push(`${c.name}: records but no state file`);
      continue;
    }
    resumed++;
    if (before && completeBefore.some((slot) => !before.slots[String(slot)]?.complete)) broughtForward++;
    for (const f of findings(dir)) bad.push(`${c.name}: ${f}`);
    rmSync(dir, { recursive: true, force: true });
  }
  t.same(bad, [], 'after every cut and its resume: each unit recorded complete once, each finished step once in the records and once in the store');
  // Only a cut of run-started before its state write leaves no state file (the store's row alone, or nothing).
  const noState = cuts.filter((c) => c.cut === 0 && !c.partial.includes('S')).length;
  t.equal(resumed, cuts.length - noState, `${resumed} of ${cuts.length} cuts resumed, ${noState} left no state file`);
  t.ok(broughtForward >= 2, `${broughtForward} cuts left a unit record complete that its state did not say (a resume that tests it again records it twice)`);
});

t.test('a resume of a run whose records are all complete tests nothing and closes the run', async (t) => {
  const i = stream.findIndex((e) => e !== 'end' && e.type === 'run-finished');
  const dir = join(base, 'all-complete');
  // Killed after slot 2's record said complete, before its state and store did.
  const lastFinish = stream.findLastIndex((e) => e !== 'end' && e.type === 'slot-finished');
  t.ok(lastFinish < i);
  await killedAt(dir, lastFinish, ['R', 'S', 'D'], ['R']);
  const st = readStationState(dir)!;
  t.equal(unfinishedSlots(st).length, 1, 'the state says one slot unfinished');
  const crashed = findInterrupted(dir)!;
  t.same(crashed.unfinished, [], 'found interrupted, nothing left to test');
  t.match(crashed.state.history.at(-1)!.event, /slot \d: its unit record says complete/);
  const state = await markAborted(crashed);
  const store = SqliteStore.open(join(dir, 'store.sqlite'));
  try {
    const r = recommitRunRecords(store, dir, state, { required: true });
    t.same(r, { steps: 0, units: 1 }, 'the store lacked that unit\'s completion, no step');
    t.same(recommitRunRecords(store, dir, state, { required: true }), { steps: 0, units: 0 }, 'again: nothing more');
    await closeFromRecords(store, dir, state);
  } finally {
    store.close();
  }
  t.same(findings(dir), []);
  t.equal(readStationState(dir)!.status, 'finished');
});

t.test('the station writes each event to the unit record, then the state file, then the store (the order the cuts assume)', async (t) => {
  const jigPath = new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname;
  const jig = loadJigFile(jigPath);
  const clock = new VirtualClock();
  const { vj, endpoints } = startVirtualJig(jig, { clock });
  t.teardown(() => vj.dispose());
  const outDir = join(base, 'order');
  const seen: string[] = [];
  // Where the store sits: among the caller's sinks, which run after the records and the state file.
  const store: ResultSink = {
    emit(e) {
      if (e.type !== 'step-finished' && e.type !== 'slot-finished') return;
      const rec = JSON.parse(readFileSync(join(outDir, `slot-${e.slot}.json`), 'utf8')) as UnitRecord;
      const st = readStationState(outDir)!.slots[String(e.slot)]!;
      if (e.type === 'step-finished') {
        if (!rec.steps.some((s) => s.index === e.result.index)) seen.push(`step ${e.result.index}: not in the record yet`);
        if (st.finishedSteps < rec.steps.length) seen.push(`step ${e.result.index}: the state counts ${st.finishedSteps} of the record's ${rec.steps.length}`);
      } else {
        if (!rec.complete) seen.push('slot finished: the record is not complete yet');
        if (!st.complete) seen.push('slot finished: the state does not say complete yet');
      }
      seen.push('checked');
    },
  };
  const im = syntheticStationImage({ seed: 5, appBytes: 32 * 1024 });
  const [r] = await runStation({ jig, jigPath, plan: loadPlan('flash-only', new URL('../fixtures/plans', import.meta.url).pathname), image: im, baudRate: 2_000_000, outDir, clock, log: createLogger({}, 'silent'), endpoints, sinks: [store] });
  t.equal(r!.verdict, 'pass', r!.reason ?? 'flash-only passes');
  t.same(seen.filter((x) => x !== 'checked'), [], 'every step and the slot end were in the record and the state before the store heard of them');
  t.equal(seen.length, r!.steps.length + 1, `${seen.length} events checked`);
});
