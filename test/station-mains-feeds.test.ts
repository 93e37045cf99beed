import t from 'tap';
import { readFileSync } from 'node:fs';
import { VirtualClock } from '../rig/core/clock.ts';
import { parseJig, type JigSpec } from '../rig/jig/jig-config.ts';
import { IEC_60725_REFERENCE, mainsFeeds } from '../rig/jig/mains-feeds.ts';
import type { InterlockOutputs } from '../rig/jig/mains-interlock.ts';
import { VirtualJig } from '../sim/jig/virtual-jig.ts';
import { SupplyActivity } from '../station/supply-activity.ts';

/**
 * The jig file's mains feeds (`mains.feeds`), read on both sides: the virtual jig's physics (one
 * mains network per feed) and the station's supply log (a switch drops windows of its own feed's
 * slots only). virtual-4slot: slot 2's R2000 on pin 44, every slot's mains relay its pins.mains.
 */
const FOUR = JSON.parse(readFileSync(new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const withFeeds = (mains: Record<string, unknown>): unknown => ({ ...FOUR, mains: { volts: 230, hz: 50, ...mains } });
const problems = (raw: unknown): string[] => {
  try {
    parseJig(raw, 'feeds.json');
    return [];
  } catch (e) {
    return ((e as { context?: { problems?: string[] } }).context?.problems ?? [String(e)]);
  }
};

t.test('jig file: feeds default to one for all slots with the IEC reference impedance; stated feeds are checked', async (t) => {
  const plain = parseJig(FOUR, 'four');
  t.same(mainsFeeds(plain), [{ name: 'mains', slots: [1, 2, 3, 4], impedance: IEC_60725_REFERENCE }]);
  const two = parseJig(withFeeds({ impedance: { ohms: 0.2, xOhms: 0.1 }, feeds: { a: { slots: [1, 2] }, b: { slots: [3, 4], impedance: { ohms: 0.6, xOhms: 0.3 } } } }), 'two');
  t.same(mainsFeeds(two), [
    { name: 'a', slots: [1, 2], impedance: { ohms: 0.2, xOhms: 0.1 } },
    { name: 'b', slots: [3, 4], impedance: { ohms: 0.6, xOhms: 0.3 } },
  ]);
  t.match(problems(withFeeds({ feeds: { a: { slots: [1, 2, 9] }, b: { slots: [2] } } })), [/mains\.feeds\.a\.slots\.2: mains feed a: no slot 9/, /mains\.feeds\.b\.slots\.0: slot 2 is on mains feeds a and b/, /mains\.feeds: slot 3, 4 on no mains feed/]);
  t.match(problems(withFeeds({ impedance: { ohms: -1, xOhms: 0 } })), [/mains\.impedance\.ohms/]);
  const grouped = { ...(withFeeds({ feeds: { a: { slots: [1, 3] }, b: { slots: [2, 4] } } }) as Record<string, unknown>) };
  const slots = structuredClone(FOUR.slots) as Array<{ pins: { mains: number } }>;
  slots[1]!.pins.mains = 5;
  grouped.slots = slots;
  grouped.mainsGroups = { A: { pin: 5, slots: [1, 2] } };
  t.match(problems(grouped), [/mainsGroups\.A\.slots: mains group A: one relay feeds its slots, but the jig file puts them on mains feeds a, b/]);
});

/** Slot `id`'s plug input voltage after slot 2 switched its 2 kW load on behind a live plug relay. */
function stepSeen(spec: JigSpec, id: number): number {
  const clock = new VirtualClock();
  const vj = VirtualJig.fromSpec(spec, { clock, seed: 3, http: false, mains: { drift: false } });
  try {
    for (const s of [1, 2]) vj.slot(s).branch.setMainsRelay(true);
    const before = vj.slot(id).branch.measure('input').volts;
    const b2 = vj.slot(2).branch;
    b2.setPlugRelay(true);
    b2.setLoadRelay('R2000', true);
    return 100 * (vj.slot(id).branch.measure('input').volts / before - 1);
  } finally {
    void vj.dispose();
  }
}

t.test('virtual jig: a 2 kW switch steps the voltage of its own feed only, through the feed the file states', async (t) => {
  const one = parseJig(FOUR, 'one');
  const isolated = parseJig(withFeeds({ feeds: { a: { slots: [1, 3] }, b: { slots: [2, 4] } } }), 'isolated');
  const stiff = parseJig(withFeeds({ feeds: { a: { slots: [1, 2] }, b: { slots: [3, 4] } }, impedance: { ohms: 0.1, xOhms: 0.05 } }), 'stiff');
  const same = stepSeen(one, 1);
  t.ok(same < -1.4 && same > -1.6, `slot 1 on slot 2's feed (IEC 0.4 Ω): ${same.toFixed(3)} %`);
  t.equal(stepSeen(isolated, 1), 0, 'slot 1 on another feed: no step');
  t.ok(stepSeen(isolated, 2) < -1.4, 'slot 2 itself still sags on its own feed');
  const low = stepSeen(stiff, 1);
  t.ok(low < -0.3 && low > -0.45, `a stiffer feed (0.1 Ω) the file states: ${low.toFixed(3)} %`);
});

/** Board outputs that confirm each write 20 ms after it was issued. */
const board = (clock: VirtualClock): InterlockOutputs => ({ write: async () => clock.sleep(20) });
const LOADS = [{ name: 'R2000', pin: 9, watts: 2000, pf: 1 }];

t.test('station: a switch drops windows of slots on its own feed only, estimated with that feed impedance', async (t) => {
  const clock = new VirtualClock();
  const feeds = mainsFeeds(parseJig(withFeeds({ feeds: { a: { slots: [1, 2] }, b: { slots: [3, 4], impedance: { ohms: 0.04, xOhms: 0.025 } } } }), 'feeds'));
  const supply = new SupplyActivity({ clock, mainsVolts: 230, feeds });
  t.ok(Math.abs(supply.stepPct({ watts: 2000, pf: 1 }, 1) - 1.512) < 0.01, 'feed a: the IEC reference impedance');
  t.ok(Math.abs(supply.stepPct({ watts: 2000, pf: 1 }, 3) - 0.1512) < 0.001, 'feed b: a tenth of it');
  await supply.observe(2, LOADS, board(clock)).write('load:R2000', true);
  t.equal(supply.watch(1).disturbedBetween(0, 100), true, 'slot 1 (same feed) sees slot 2 switch');
  t.equal(supply.watch(3).disturbedBetween(0, 100), false, 'slot 3 (another feed) does not');
  t.equal(supply.stats().get(1)?.droppedWindows, 1, 'counted as a window slot 1 dropped for a neighbour');
  // Slot 3's own 2 kW on the stiff feed steps it 0.15 %: slot 4 (its feed) drops, slot 1 does not.
  await clock.sleep(1000);
  const from = clock.now();
  await supply.observe(3, LOADS, board(clock)).write('load:R2000', true);
  t.equal(supply.watch(4).disturbedBetween(from, clock.now()), true);
  t.equal(supply.watch(1).disturbedBetween(from, clock.now()), false);
  // A big switch waits for a run about to end on its own feed, not on another.
  supply.watch(4).measuring!(clock.now() + 600);
  let t0 = clock.now();
  await supply.watch(1).beforeSwitch!({ watts: 2000, pf: 1 });
  t.equal(clock.now() - t0, 0, 'slot 1 does not wait for slot 4 (another feed)');
  t0 = clock.now();
  await supply.watch(3).beforeSwitch!({ watts: 2000, pf: 1 });
  t.ok(clock.now() - t0 >= 600, `slot 3 waits for slot 4's run (same feed): ${clock.now() - t0} ms`);
});
