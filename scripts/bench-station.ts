/**
 * Station throughput on the virtual jig, from one invocation (npx tsx scripts/bench-station.ts):
 *  1. takt of the factory plan for 1 slot in REAL time with a WT310E-class reference (target <= 60 s),
 *     with the per-step breakdown next to the same slot in MODEL time (what the plan's modelled
 *     durations alone cost: a real-time run can only add CPU overhead to it);
 *  2. 8 slots with a WT310E-class meter each vs 1 slot, throughput ratio (target >= 7.2x), with
 *     CONTINUOUS FEEDING (station/unit-feed.ts): `--units N` units (default 64) in one queue, a slot
 *     takes the next as soon as its last is in its safe state, after `--handling-s S` (default 10 s)
 *     of handling per unit (the first included, 1 and 8 slots alike); throughput = units passed per
 *     hour of the whole run, with the tail (slots running dry once the queue is empty) printed. The
 *     1-slot reference is the same units, each on the slot it took in the 8-slot run (same wiring,
 *     meter, unit seed), one at a time. On an isolated feed per slot (fixtures/jigs/virtual-8slot.json)
 *     and with all 8 slots on one feed (IEC 60725 reference impedance). `--batch` adds the earlier
 *     figure: one unit per slot, the batch ending with its slowest unit, against those 8 units alone;
 *  3. 8 slots sharing one WT310E-class meter through select relays vs the bound that meter's busy
 *     time sets (target >= 0.85).
 * 2 and 3 run in MODEL time (VirtualClock): 8 virtual plugs with their byte-level UARTs do not keep
 * up with wall time on a 2-core machine. The factory plan needs a WT310E-class reference (its V limit
 * is +-0.5 %), so every part uses one. `--quick` skips the real-time takt; `--takt-only` runs part 1 alone;
 * `--seeds N` adds the model takt of seeds 1..N; `--own-only` stops after part 2; `--feeds one|isolated`
 * runs part 2 on that feed layout only.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealClock, VirtualClock, type Clock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { parseJig, type JigSpec } from '../rig/jig/jig-config.ts';
import { classifyImage } from '../firmware/image.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { runStationDetailed } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import type { ResultEvent } from '../suites/model/events.ts';
import { simPlugAddress, startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../sim/jig/virtual-jig.ts';
import { loadDeviceTemplate } from '../rig/dut/device-template.ts';
import { UnitQueue, type UnitFeed } from '../station/unit-feed.ts';
import type { StationSlotResult } from '../station/run-station.ts';
import type { VirtualJig } from '../sim/jig/virtual-jig.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const PLANS = join(ROOT, 'fixtures/plans');
const EIGHT_SLOT = JSON.parse(readFileSync(join(ROOT, 'fixtures/jigs/virtual-8slot.json'), 'utf8')) as Record<string, unknown> & { slots: Array<Record<string, unknown>> };
const WT = { kind: 'scpi', model: 'WT310E', address: 'sim:wt0', serial: 'C2QD00001', calibrationDate: '2026-06-01' };

/**
 * Slots `ids` of fixtures/jigs/virtual-8slot.json (1-4 on io0, 5-8 on io1 with the same pins): a
 * WT310E each, or one shared WT310E through select relays. Slot k is wired (and its unit seeded) the
 * same whichever others are in the jig. `feeds`: 'one' puts every slot on one mains feed (IEC 60725's
 * reference impedance: the jig file default when it states no feeds); 'isolated' keeps the file's
 * feed of its own per slot (the same impedance).
 */
function jig(ids: readonly number[], meters: 'wt-each' | 'wt-shared', feeds: 'one' | 'isolated' = 'one'): JigSpec {
  const raw = structuredClone(EIGHT_SLOT) as typeof EIGHT_SLOT & { meters: Record<string, unknown>; mains: Record<string, unknown> & { feeds?: Record<string, { slots: number[] }> } };
  raw.name = `bench-${ids.length}slot-${meters}${feeds === 'isolated' ? '-isolated-feeds' : ''}`;
  raw.slots = raw.slots.filter((s) => ids.includes(s.id as number));
  if (feeds === 'one') delete raw.mains.feeds;
  else raw.mains.feeds = Object.fromEntries(Object.entries(raw.mains.feeds ?? {}).filter(([, f]) => f.slots.every((id) => ids.includes(id))));
  if (meters === 'wt-each') raw.meters = Object.fromEntries(Object.entries(raw.meters).filter(([name]) => ids.some((id) => name === `wt${id}`)));
  else {
    raw.meters = { wt: WT };
    // Pins no slot of the file uses (its loads take 41-49, its LED sensors A0-A3 = 54-57).
    for (const s of raw.slots) s.meter = { ref: 'wt', channel: 1, select: [53, 58, 59, 60][((s.id as number) - 1) % 4] };
  }
  return parseJig(raw, raw.name as string);
}

const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 1 });
const info = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' });
const toWrite = info.bytesToWrite(false);

interface Outcome {
  makespanMs: number;
  passed: number;
  slots: number;
  /** Per step: its time over all its attempts (from its first start to its end) and how many attempts. */
  steps: Array<{ name: string; suite?: string; ms: number; attempts: number }>;
  /** Clock time outside every step: before the first (opening the station), between steps (the listeners' writes), after the last. */
  outside: { beforeMs: number; betweenMs: number; afterMs: number };
  /** Per unit: its time in the slot and the step attempts it took (retests included). */
  units: Array<{ slot: number; ms: number; attempts: number; verdict: string }>;
  /** Per slot: every step (name, ms of its last attempt, attempt). */
  slotSteps: Array<{ slot: number; steps: Array<{ name: string; ms: number; attempt: number }> }>;
  /** Per slot: what the shared mains feed cost it. */
  supply: Map<number, { waitedMs: number; droppedWindows: number }>;
  /** Per unit: clock time the meter was first taken, held in total, and the slot's end. */
  meter: Array<{ slot: number; firstAt: number; heldMs: number; waitedMs: number; startT: number; endT: number }>;
  /** Every unit's result (several per slot when units were fed). */
  results: StationSlotResult[];
}

async function run(spec: JigSpec, clock: Clock, o: { stockLibrary?: string; seed?: number; feed?: (vj: VirtualJig) => UnitFeed } = {}): Promise<Outcome> {
  const sim = startVirtualJig(spec, { clock, ...(o.seed !== undefined ? { seed: o.seed } : {}) });
  const events: ResultEvent[] = [];
  // Slot 1's step starts, in clock time (a step's result carries only its last attempt's start).
  const firstStart = new Map<number, number>();
  try {
    const t0 = clock.now();
    const r = await runStationDetailed({
      jig: spec,
      jigPath: spec.name,
      plan: loadPlan('factory', PLANS),
      image: { bytes: toWrite.bytes, offset: toWrite.offset, name: im.name, sha256: info.sha256 },
      baudRate: 2_000_000,
      outDir: mkdtempSync(join(tmpdir(), 'plugrig-bench-station-')),
      clock,
      log: createLogger({}, 'silent'),
      endpoints: sim.endpoints,
      signals: false,
      ...(o.stockLibrary ? { stockLibrary: o.stockLibrary } : {}),
      ...(o.feed ? { feed: o.feed(sim.vj) } : {}),
      sinks: [
        {
          emit: (e) => {
            events.push(e);
            if (e.type === 'step-started' && e.slot === 1) {
              if (!firstStart.has(e.index)) firstStart.set(e.index, clock.now());
            }
          },
        },
      ],
      provisioning: { template: loadDeviceTemplate(join(ROOT, 'fixtures/devices/rmc021.json')), wifi: DEFAULT_VIRTUAL_WIFI, secrets: [] },
      resolveHttp: sim.resolvePlug,
      defaultPlug: (id) => ({ url: simPlugAddress(id) }),
    });
    const makespanMs = clock.now() - t0;
    const meter = r.slots.map((s) => {
      const mine = events.filter((e): e is Extract<ResultEvent, { type: 'instrument' }> => e.type === 'instrument' && e.slot === s.slot);
      const acq = mine.filter((e) => e.kind === 'acquired');
      return {
        slot: s.slot,
        firstAt: acq[0]?.t ?? NaN,
        heldMs: mine.filter((e) => e.kind === 'released').reduce((a, e) => a + (e.heldMs ?? 0), 0),
        waitedMs: acq.reduce((a, e) => a + (e.waitedMs ?? 0), 0),
        startT: s.steps[0]?.startedT ?? t0,
        endT: s.steps.at(-1)?.finishedT ?? clock.now(),
      };
    });
    const bad = r.slots.filter((s) => s.verdict !== 'pass');
    for (const s of bad) process.stderr.write(`  slot ${s.slot}${s.fed ? ` ${s.fed.label}` : ''} FAILED: ${s.reason ?? '?'}\n`);
    const units = r.slots.map((x) => ({ slot: x.slot, ms: x.ms, attempts: x.steps.reduce((a, st) => a + st.attempt, 0), verdict: x.verdict }));
    const st1 = r.slots[0]!.steps;
    const steps = st1.map((x, i) => ({ name: x.name, ...(x.suite ? { suite: x.suite } : {}), ms: x.finishedT - (firstStart.get(i) ?? x.startedT), attempts: x.attempt }));
    const inSteps = steps.reduce((a, x) => a + x.ms, 0);
    const beforeMs = (st1[0]?.startedT ?? t0) - t0;
    const afterMs = t0 + makespanMs - (st1.at(-1)?.finishedT ?? t0);
    const outside = { beforeMs, betweenMs: makespanMs - beforeMs - afterMs - inSteps, afterMs };
    const slotSteps = r.slots.map((x) => ({ slot: x.slot, steps: x.steps.map((st) => ({ name: st.name, ms: st.ms, attempt: st.attempt })) }));
    const supply = new Map([...(r.supply ?? new Map())].map(([k, v]) => [k, { ...v }]));
    return { makespanMs, passed: r.slots.length - bad.length, slots: r.slots.length, steps, outside, meter, units, slotSteps, supply, results: r.slots };
  } finally {
    await sim.vj.dispose();
  }
}

const s = (ms: number): string => (ms / 1000).toFixed(2);
// An unknown argument is refused before anything runs (a typo must not start a many-minute bench).
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  if (['--feeds', '--seeds', '--units', '--handling-s'].includes(a)) i++;
  else if (!['--quick', '--takt-only', '--own-only', '--batch'].includes(a)) {
    process.stderr.write(`bench-station: unknown argument ${a} (see the header of scripts/bench-station.ts)\n`);
    process.exit(2);
  }
}
const quick = process.argv.includes('--quick');
/** Only part 1 (the takt, model and real time): for running it when the machine is quieter. */
const taktOnly = process.argv.includes('--takt-only');
/** Parts 1 and 2 only: the own-meter throughput without the shared-meter run. */
const ownOnly = process.argv.includes('--own-only');
/** Part 2 on one feed layout only (`--feeds one` or `--feeds isolated`); default both. */
const feedsArg = process.argv.includes('--feeds') ? process.argv[process.argv.indexOf('--feeds') + 1] : undefined;
if (feedsArg !== undefined && feedsArg !== 'one' && feedsArg !== 'isolated') {
  process.stderr.write(`bench-station: --feeds takes one or isolated, not ${String(feedsArg)}\n`);
  process.exit(2);
}

/** The earlier part-2 figure as well: one unit per slot, the batch ending with its slowest unit. */
const batchToo = process.argv.includes('--batch');
const numberArg = (name: string, dflt: number, ok: (n: number) => boolean, what: string): number => {
  const i = process.argv.indexOf(name);
  if (i < 0) return dflt;
  const n = Number(process.argv[i + 1]);
  if (!ok(n)) {
    process.stderr.write(`bench-station: ${name} takes ${what}, not ${String(process.argv[i + 1])}\n`);
    process.exit(2);
  }
  return n;
};
/** Part 2's continuous feeding: units in the queue, and the handling time per unit. */
const unitsArg = numberArg('--units', 64, (n) => Number.isInteger(n) && n >= 8, 'a whole number >= 8');
const handlingMs = 1000 * numberArg('--handling-s', 10, (n) => Number.isFinite(n) && n >= 0, 'seconds >= 0');

// The takt is a unit of a batch whose stock firmware this station has stored already (its library,
// suites/stock-library.ts): a first unit of a new stock image reads it (shown on its own line).
const library = mkdtempSync(join(tmpdir(), 'plugrig-bench-stock-'));
const firstOfImage = await run(jig([1], 'wt-each'), new VirtualClock(), { stockLibrary: library });
const steady = await run(jig([1], 'wt-each'), new VirtualClock(), { stockLibrary: library });
process.stdout.write(`1. factory plan (${steady.steps.length} steps), 1 slot, WT310E-class reference: takt per unit (a unit whose stock image the station has stored)\n`);
let real: Outcome | undefined;
let realWall = 0;
let load: number[] = [];
if (!quick) {
  load = loadavg();
  const w = performance.now();
  real = await run(jig([1], 'wt-each'), new RealClock(), { stockLibrary: library });
  realWall = performance.now() - w;
}
const tries = (n: number): string => (n > 1 ? `${n}x` : '  ');
process.stdout.write(`   ${'MODEL'.padStart(8)}    ${real ? `${'REAL'.padStart(8)}    REAL-MODEL` : ''}  step (Nx: attempts, time over all of them)\n`);
steady.steps.forEach((st, i) => {
  const r = real?.steps[i];
  process.stdout.write(`   ${s(st.ms).padStart(7)}s ${tries(st.attempts)} ${r ? `${s(r.ms).padStart(7)}s ${tries(r.attempts)} ${(r.ms - st.ms >= 0 ? '+' : '') + s(r.ms - st.ms)}s`.padEnd(25) : ''}  ${st.name}\n`);
});
const outside = (o: Outcome): string => `${s(o.outside.beforeMs)} before the first step, ${s(o.outside.betweenMs)} between steps, ${s(o.outside.afterMs)} after the last`;
process.stdout.write(`   outside the steps: model ${outside(steady)}${real ? `; real ${outside(real)}` : ''} s\n`);
// Per suite: where the takt goes (steps of no suite: the jig-ready and safe-state checks).
const bySuite = (o: Outcome): Map<string, number> => o.steps.reduce((m, st) => m.set(st.suite ?? 'jig', (m.get(st.suite ?? 'jig') ?? 0) + st.ms), new Map<string, number>());
const suitesModel = bySuite(steady);
const suitesReal = real ? bySuite(real) : undefined;
process.stdout.write(`   per suite: ${[...suitesModel].map(([k, v]) => `${k} ${s(v)}${suitesReal ? `/${s(suitesReal.get(k) ?? 0)}` : ''}`).join(', ')} s${suitesReal ? ' (model/real)' : ''}\n`);
const flashOf = (o: Outcome): number => o.steps.find((x) => x.name.startsWith('flash '))?.ms ?? NaN;
process.stdout.write(`   first unit of a stock image the station has not stored (reads it over the ROM): ${s(firstOfImage.makespanMs)} s model, flash step ${s(flashOf(firstOfImage))} s (vs ${s(flashOf(steady))} s matched by CRC), ${firstOfImage.passed}/${firstOfImage.slots} passed\n`);
process.stdout.write(`   takt in MODEL time: ${s(steady.makespanMs)} s per unit, ${steady.passed}/${steady.slots} passed (the plan's modelled durations alone)\n`);
// The model takt moves with the retests a unit's readings need (the mains drift, the meter's noise,
// the unit's parts): `--seeds N` shows it over N virtual jigs (seed 1 is the run above).
const seedsArg = process.argv.indexOf('--seeds');
const seeds = seedsArg > 0 ? Number(process.argv[seedsArg + 1]) : 1;
if (!Number.isInteger(seeds) || seeds < 1) {
  process.stderr.write(`bench-station: --seeds takes a whole number >= 1, not ${String(process.argv[seedsArg + 1])}\n`);
  process.exit(2);
}
if (seeds > 1) {
  const takts = [steady];
  for (let seed = 2; seed <= seeds; seed++) takts.push(await run(jig([1], 'wt-each'), new VirtualClock(), { stockLibrary: library, seed }));
  const sorted = takts.map((x) => x.makespanMs).sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  process.stdout.write(`   takt in MODEL time over seeds 1-${seeds}: ${takts.map((x, i) => `${i + 1}:${s(x.makespanMs)}${x.passed === x.slots ? '' : ' FAIL'}`).join(' ')} s; median ${s(median)} s, ${s(sorted[0]!)}-${s(sorted.at(-1)!)} s\n`);
}
if (real) {
  process.stdout.write(`   takt in REAL time:  ${s(real.makespanMs)} s per unit (wall ${s(realWall)} s, load average ${load.map((x) => x.toFixed(1)).join(' ')} at start), ${real.passed}/${real.slots} passed; target <= 60 s: ${real.makespanMs <= 60_000 && real.passed === real.slots ? 'met' : `NOT met (${s(real.makespanMs - 60_000)} s over)`}\n`);
}
if (real) process.stdout.write(`   load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
process.stdout.write('\n');
if (taktOnly) process.exit(0);
// Part 3 (and --batch) compare with one slot's unit as it was measured before the stock library (every unit read).
let model1: Outcome | undefined;
const slot1Alone = async (): Promise<Outcome> => (model1 ??= await run(jig([1], 'wt-each'), new VirtualClock()));
const EIGHT = [1, 2, 3, 4, 5, 6, 7, 8];
const layouts = [
  { feeds: 'one' as const, what: 'all 8 slots on one mains feed (the jig file default, IEC 60725 reference impedance)' },
  { feeds: 'isolated' as const, what: 'an isolated mains feed per slot (a transformer each, the same impedance: fixtures/jigs/virtual-8slot.json)' },
];
const chosen = layouts.filter((l) => feedsArg === undefined || l.feeds === feedsArg);
const fed = Array.from({ length: unitsArg }, (_, i) => i);
process.stdout.write(`2. 8 slots with a WT310E-class meter each vs 1 slot, CONTINUOUS FEEDING (MODEL time, seed 1): ${unitsArg} units from one queue, a free slot takes the next one;\n`);
process.stdout.write(`   handling ${s(handlingMs)} s per unit (unload the last, seat the next, lid closed), charged before every unit, the first included, for 1 and 8 slots alike; a handler per slot\n`);
process.stdout.write(`   throughput = units passed per hour of the whole run (first handling to the last unit's end); the 1-slot reference runs the same units, each on the slot (wiring, meter) it took in the 8-slot run, one at a time\n`);
process.stdout.write(`   the stock library: the 8-slot run starts with an empty one (its first 8 units each read their stock app), the 1-slot reference with one of its own (its first unit reads)\n`);
for (const layout of chosen) {
  let queue8: UnitQueue | undefined;
  const clock8 = new VirtualClock();
  const eight = await run(jig(EIGHT, 'wt-each', layout.feeds), clock8, {
    stockLibrary: mkdtempSync(join(tmpdir(), 'plugrig-bench-stock-')),
    feed: (vj) => (queue8 = new UnitQueue({ clock: clock8, units: fed, handlingMs, seat: (slot, u) => vj.loadUnit(slot, u) })),
  });
  const placed = [...queue8!.placed];
  const lib1 = mkdtempSync(join(tmpdir(), 'plugrig-bench-stock-'));
  const ref: Outcome[] = [];
  for (const id of EIGHT) {
    const mine = placed.filter(([, slot]) => slot === id).map(([u]) => u);
    if (mine.length === 0) continue;
    const c = new VirtualClock();
    ref.push(await run(jig([id], 'wt-each', layout.feeds), c, { stockLibrary: lib1, feed: (vj) => new UnitQueue({ clock: c, units: mine, handlingMs, seat: (slot, u) => vj.loadUnit(slot, u) }) }));
  }
  const t1 = ref.reduce((a, o) => a + o.makespanMs, 0);
  const passed1 = ref.reduce((a, o) => a + o.passed, 0);
  const t8 = eight.makespanMs;
  const perHour = (n: number, ms: number): string => ((n / ms) * 3_600_000).toFixed(1);
  process.stdout.write(`   8 slots, ${layout.what}:\n`);
  process.stdout.write(`     ${s(t8)} s for ${eight.passed}/${eight.slots} passed = ${perHour(eight.passed, t8)} units/h\n`);
  process.stdout.write(`     1 slot, the same ${fed.length} units one at a time: ${s(t1)} s for ${passed1}/${fed.length} passed = ${perHour(passed1, t1)} units/h\n`);
  // The tail: from the moment the queue gave out its last unit to the end; slots run dry in it.
  const tail = t8 - (queue8!.emptiedAt ?? t8);
  const lastEnd = new Map<number, number>();
  for (const r of eight.results) lastEnd.set(r.slot, Math.max(lastEnd.get(r.slot) ?? 0, r.steps.at(-1)?.finishedT ?? 0));
  const idle = EIGHT.reduce((a, id) => a + (t8 - (lastEnd.get(id) ?? 0)), 0);
  process.stdout.write(`     tail (from the queue's last unit taken to the run's end): ${s(tail)} s = ${((100 * tail) / t8).toFixed(1)} % of the run; capacity it lost (slot time idle, no unit left) ${((100 * idle) / (8 * t8)).toFixed(1)} % of 8 slots x the run\n`);
  process.stdout.write(`     per slot (units / idle at the end): ${EIGHT.map((id) => `${id}:${eight.results.filter((r) => r.slot === id).length}/${s(t8 - (lastEnd.get(id) ?? 0))}s`).join(' ')}\n`);
  // What each unit cost in the 8-slot run against the same unit alone on the same slot's wiring.
  const aloneOf = new Map(ref.flatMap((o) => o.results).map((r) => [r.fed!.index, r]));
  const attemptsOf = (r: StationSlotResult): number => r.steps.reduce((a, st) => a + st.attempt, 0);
  let dSum = 0;
  let more = 0;
  let fewer = 0;
  let worst = { d: -Infinity, label: '' };
  for (const r of eight.results) {
    const a = aloneOf.get(r.fed!.index);
    if (!a) continue;
    const d = r.ms - a.ms;
    dSum += d;
    const da = attemptsOf(r) - attemptsOf(a);
    if (da > 0) more++;
    if (da < 0) fewer++;
    if (d > worst.d) {
      const solo = new Map(a.steps.map((x) => [x.name, x]));
      const most = r.steps
        .map((x) => ({ x, d: x.ms - (solo.get(x.name)?.ms ?? 0) }))
        .filter((w) => Math.abs(w.d) >= 1000)
        .sort((p, q) => q.d - p.d)
        .slice(0, 3)
        .map((w) => `${w.x.name.replace(/ \(.*$/, '')} ${w.d >= 0 ? '+' : ''}${s(w.d)} (attempt ${w.x.attempt} vs ${solo.get(w.x.name)?.attempt ?? '-'})`)
        .join('; ');
      worst = { d, label: `${r.fed!.label} in slot ${r.slot}: ${s(r.ms)} s vs ${s(a.ms)} s alone, ${attemptsOf(r)} vs ${attemptsOf(a)} step attempts${most ? `; most: ${most}` : ''}` };
    }
  }
  const sup = [...eight.supply.values()].reduce((a, v) => ({ waitedMs: a.waitedMs + v.waitedMs, droppedWindows: a.droppedWindows + v.droppedWindows }), { waitedMs: 0, droppedWindows: 0 });
  const lease = eight.meter.reduce((a, m) => a + m.waitedMs, 0);
  process.stdout.write(`     per unit vs the same unit alone: ${dSum >= 0 ? '+' : ''}${s(dSum / eight.results.length)} s on average (sum ${s(dSum)} s); ${more} units took more step attempts, ${fewer} fewer; switch waits ${s(sup.waitedMs)} s, windows dropped for neighbours ${sup.droppedWindows}, lease waits ${s(lease)} s in all\n`);
  process.stdout.write(`     slowest against alone: ${worst.label}\n`);
  const ratio = (eight.passed / t8) / (passed1 / t1);
  const tested = (eight.slots / t8) / (fed.length / t1);
  process.stdout.write(`     throughput (passed units per hour) 8 vs 1: ${ratio.toFixed(2)}x (units tested: ${tested.toFixed(2)}x); target >= 7.2x: ${ratio >= 7.2 ? 'met' : 'NOT met'}\n`);
}
process.stdout.write('\n');
if (batchToo) {
  // The 1-slot station's batch: the same 8 units (slot k's wiring, meter and seed) one after another.
  const model1 = await slot1Alone();
  const alone: Outcome[] = [model1];
  for (const id of EIGHT.slice(1)) alone.push(await run(jig([id], 'wt-each'), new VirtualClock()));
  const aloneMs = alone.reduce((a, o) => a + o.makespanMs, 0);
  const alonePassed = alone.reduce((a, o) => a + o.passed, 0);
  const perUnit = (o: Outcome): string => o.units.map((u) => `${u.slot}:${s(u.ms)}s/${u.attempts}${u.verdict === 'pass' ? '' : ' FAIL'}`).join(' ');
  process.stdout.write(`   batch of one unit per slot (the earlier figure: the batch ends when its slowest unit does; units seeded 1001-1008 by slot)\n   1 slot, the 8 units one at a time: ${s(aloneMs)} s for ${alonePassed}/8 passed (${alone.map((o) => perUnit(o)).join(' ')})\n`);
  for (const layout of chosen) {
    const eight = await run(jig(EIGHT, 'wt-each', layout.feeds), new VirtualClock());
    process.stdout.write(`   8 slots, ${layout.what}: ${s(eight.makespanMs)} s for ${eight.passed}/${eight.slots} passed\n`);
    process.stdout.write(`     per unit (slot:time/step attempts): ${perUnit(eight)}\n`);
    // Where the batch loses time against the same unit alone: the unit's own time in the slot (waits
    // before its big switches, windows dropped for neighbours' switches, lease waits, extra attempts),
    // and the end of the batch (every slot waits for the slowest).
    for (const u of eight.units) {
      const a = alone[u.slot - 1]!.units[0]!;
      const sup = eight.supply.get(u.slot) ?? { waitedMs: 0, droppedWindows: 0 };
      const lease = eight.meter.find((m) => m.slot === u.slot)?.waitedMs ?? 0;
      const mine = eight.slotSteps.find((x) => x.slot === u.slot)!.steps;
      const solo = new Map(alone[u.slot - 1]!.slotSteps[0]!.steps.map((x) => [x.name, x]));
      const worst = mine.map((x) => ({ x, d: x.ms - (solo.get(x.name)?.ms ?? 0) })).filter((w) => w.d >= 1000).sort((p, q) => q.d - p.d).slice(0, 3);
      const most = worst.map((w) => `${w.x.name.replace(/ \(.*$/, '')} +${s(w.d)}${w.x.attempt !== (solo.get(w.x.name)?.attempt ?? 1) ? ` (attempt ${w.x.attempt} vs ${solo.get(w.x.name)?.attempt ?? '-'})` : ''}`).join('; ');
      process.stdout.write(`     slot ${u.slot}: ${s(u.ms)} s vs ${s(a.ms)} s alone (${u.ms >= a.ms ? '+' : ''}${s(u.ms - a.ms)}); switch waits ${s(sup.waitedMs)} s, windows dropped for neighbours ${sup.droppedWindows}, lease waits ${s(lease)} s, step attempts ${u.attempts} vs ${a.attempts}; waits ${s(eight.makespanMs - u.ms)} s for the batch's end${most ? `\n       most: ${most}` : ''}\n`);
    }
    const ratio = (eight.passed / eight.makespanMs) / (alonePassed / aloneMs);
    const tested = (eight.slots / eight.makespanMs) / (8 / aloneMs);
    const slot1 = (eight.passed / eight.makespanMs) / (model1.passed / model1.makespanMs);
    const bound = aloneMs / Math.max(...alone.map((o) => o.makespanMs));
    process.stdout.write(`     throughput (passed units per hour of the batch) 8 vs 1: ${ratio.toFixed(2)}x (units tested: ${tested.toFixed(2)}x; against slot 1's unit alone, the earlier figure: ${slot1.toFixed(2)}x; the slowest unit alone bounds it at ${bound.toFixed(2)}x); target >= 7.2x: ${ratio >= 7.2 ? 'met' : 'NOT met'}\n`);
  }
}
if (ownOnly) process.exit(0);

process.stdout.write('3. 8 slots sharing ONE WT310E-class meter through select relays (MODEL time)\n');
// The bound is set from slot 1's unit alone, as before (the meter's busy time is the 8 units').
const base1 = await slot1Alone();
const shared = await run(jig(EIGHT, 'wt-shared'), new VirtualClock());
// The bound: the meter serves the 8 units back to back from the earliest moment a unit can need it
// (one slot's lead-in before its first meter step), and the last unit then needs its lead-out.
const b = base1.meter[0]!;
const leadIn = b.firstAt - b.startT;
const leadOut = b.endT - (b.firstAt + b.heldMs);
const busy = shared.meter.reduce((a, m) => a + m.heldMs, 0);
const boundMs = Math.max(base1.makespanMs, leadIn + busy + leadOut);
const achieved = shared.passed / shared.makespanMs;
const bound = shared.slots / boundMs;
process.stdout.write(`   meter busy ${s(busy)} s for 8 units (${s(busy / 8)} s per unit); lead-in ${s(leadIn)} s, lead-out ${s(leadOut)} s of one slot\n`);
process.stdout.write(`   waits for the meter per slot: ${shared.meter.map((m) => `${m.slot}:${s(m.waitedMs)}`).join(' ')} s\n`);
process.stdout.write(`   bound: ${s(boundMs)} s for 8 units = ${(bound * 3_600_000).toFixed(0)} units/h; achieved ${s(shared.makespanMs)} s, ${shared.passed}/${shared.slots} passed = ${(achieved * 3_600_000).toFixed(0)} units/h\n`);
process.stdout.write(`   achieved / bound = ${(achieved / bound).toFixed(3)}; target >= 0.85: ${achieved / bound >= 0.85 ? 'met' : 'NOT met'}\n`);
