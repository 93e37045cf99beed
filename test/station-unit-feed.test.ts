import t from 'tap';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { mainsFeeds } from '../rig/jig/mains-feeds.ts';
import { VirtualJig } from '../sim/jig/virtual-jig.ts';
import { runStation } from '../station/run-station.ts';
import { UnitQueue } from '../station/unit-feed.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import type { UnitRecord } from '../reports/unit-record.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { syntheticStationImage, virtualStationWiring } from './fixtures/virtual-station.ts';

/**
 * Continuous feeding (station/unit-feed.ts): each slot takes the queue's next unit as soon as its own
 * unit is in its safe state, after the stated handling time, without waiting for the other slots; each
 * unit is a part of its own (the virtual jig's loadUnit: its own seed and MAC) with its own record.
 */
const FOUR = new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url).pathname;
const EIGHT = new URL('../fixtures/jigs/virtual-8slot.json', import.meta.url).pathname;
const SHARED = new URL('../fixtures/jigs/virtual-4slot-shared.json', import.meta.url).pathname;
const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;
const HANDLING_MS = 3000;

t.test('2 slots fed 5 units from one queue: a free slot takes the next unit after the handling time; every unit has its own record', async (t) => {
  const jig = loadJigFile(FOUR);
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock });
  t.teardown(() => sim.vj.dispose());
  const outDir = mkdtempSync(join(tmpdir(), 'plugrig-feed-'));
  const seated: Array<{ slot: number; unit: number; t: number }> = [];
  const queue = new UnitQueue({
    clock,
    units: [0, 1, 2, 3, 4],
    handlingMs: HANDLING_MS,
    seat: async (slot, unit) => {
      seated.push({ slot, unit, t: clock.now() });
      await sim.vj.loadUnit(slot, unit);
    },
  });
  const results = await runStation({
    jig,
    jigPath: FOUR,
    plan: loadPlan('smoke', PLANS),
    image: syntheticStationImage({ seed: 3, appBytes: 200_000 }),
    baudRate: 2_000_000,
    outDir,
    clock,
    log: createLogger({}, 'silent'),
    slots: [1, 2],
    feed: queue,
    ...virtualStationWiring(sim),
  });

  t.equal(results.length, 5, 'one result per fed unit');
  t.same(results.map((r) => r.verdict), ['pass', 'pass', 'pass', 'pass', 'pass'], results.map((r) => r.reason ?? '').join('; '));
  t.same([...new Set(results.map((r) => r.fed?.index))].sort(), [0, 1, 2, 3, 4], 'each unit tested once');
  // Each unit is its own part: the MAC the ROM gave is the fed unit's (seed 1: c8:47:8c:81:00:<unit>).
  for (const r of results) t.equal(r.unit.mac, `c8:47:8c:81:00:0${r.fed!.index}`, `unit ${r.fed!.index + 1}: its own MAC`);
  t.equal(queue.placed.size, 5);

  // Continuous, not batched: a slot's next unit starts one handling time after its last ended.
  for (const slot of [1, 2]) {
    const mine = results.filter((r) => r.slot === slot);
    t.ok(mine.length >= 2, `slot ${slot} tested ${mine.length} units`);
    for (let i = 1; i < mine.length; i++) {
      const gap = mine[i]!.steps[0]!.startedT - mine[i - 1]!.steps.at(-1)!.finishedT;
      t.ok(gap >= HANDLING_MS && gap < HANDLING_MS + 1000, `slot ${slot}: ${gap} ms between its units (handling ${HANDLING_MS} ms)`);
    }
  }
  // The third unit went to whichever slot freed first, while the other was still testing.
  const third = seated[2]!;
  const other = results.find((r) => r.slot !== third.slot && r.fed!.index < 2)!;
  t.ok(third.t - HANDLING_MS < other.steps.at(-1)!.finishedT, `unit 3 was taken by slot ${third.slot} before slot ${other.slot}'s first unit ended`);

  // Every unit's record and TAP file kept under its own name, complete, with its own MAC; none overwritten.
  for (const r of results) {
    const k = r.fed!.index + 1;
    t.equal(r.record, join(outDir, `slot-${r.slot}.unit-${k}.json`));
    t.equal(r.tap, join(outDir, `slot-${r.slot}.unit-${k}.tap`));
    const rec = JSON.parse(readFileSync(r.record, 'utf8')) as UnitRecord;
    t.match(rec, { complete: true, verdict: 'pass', slot: r.slot, unit: { mac: r.unit.mac } });
    t.match(readFileSync(r.tap, 'utf8'), /slot \d: PASS/);
  }
  t.notOk(existsSync(join(outDir, 'slot-1.json')) || existsSync(join(outDir, 'slot-2.json')), 'no record left under the slot-only name');
  // Between units the slot is in its safe state: the handler never reaches into a live slot.
  for (const s of seated) {
    const p = sim.vj.slot(s.slot).history.entries().filter((e) => e.at <= s.t).at(-1)!.state;
    t.match(p, { mainsEnergised: false, uartConnected: false, loadsOn: [] }, `slot ${s.slot} safe when unit ${s.unit + 1} was seated`);
  }
});

t.test('feeding refuses a jig with shared mains relays (a partner would be live while the handler reaches in)', async (t) => {
  const jig = loadJigFile(SHARED);
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock });
  t.teardown(() => sim.vj.dispose());
  await t.rejects(
    runStation({
      jig,
      jigPath: SHARED,
      plan: loadPlan('smoke', PLANS),
      image: syntheticStationImage({ seed: 3, appBytes: 200_000 }),
      baudRate: 2_000_000,
      outDir: mkdtempSync(join(tmpdir(), 'plugrig-feed-')),
      clock,
      log: createLogger({}, 'silent'),
      feed: new UnitQueue({ clock, units: [0], handlingMs: 0, seat: (slot, unit) => sim.vj.loadUnit(slot, unit) }),
      ...virtualStationWiring(sim),
    }),
    { code: 'E_CONFIG', message: /continuous feeding needs each slot's mains on a relay of its own/ },
  );
});

t.test('virtual-8slot (the continuous-feeding bench jig): 8 slots, a feed each, so a 2 kW switch steps no other slot', async (t) => {
  const jig = loadJigFile(EIGHT);
  t.same(mainsFeeds(jig).map((f) => f.slots), [[1], [2], [3], [4], [5], [6], [7], [8]]);
  t.same(Object.keys(jig.mainsGroups ?? {}), [], 'no shared mains relay (feeding refuses those)');
  const clock = new VirtualClock();
  const vj = VirtualJig.fromSpec(jig, { clock, http: false, mains: { drift: false } });
  t.teardown(() => vj.dispose());
  for (const id of [1, 2, 5]) vj.slot(id).branch.setMainsRelay(true);
  const before = [2, 5].map((id) => vj.slot(id).branch.measure('input').volts);
  const own = vj.slot(1).branch.measure('input').volts;
  vj.slot(1).branch.setPlugRelay(true);
  vj.slot(1).branch.setLoadRelay('R2000', true);
  t.same([2, 5].map((id) => vj.slot(id).branch.measure('input').volts), before, 'slots 2 and 5 see no step');
  t.ok(vj.slot(1).branch.measure('input').volts < own * 0.99, 'slot 1 sags on its own feed');
});
