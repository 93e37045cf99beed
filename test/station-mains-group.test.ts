import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { classifyImage } from '../firmware/image.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { runStation, type RunStationOptions } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { simPlugAddress, startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../sim/jig/virtual-jig.ts';
import type { PhysicalChange } from '../sim/jig/physical-state.ts';
import { loadDeviceTemplate } from '../rig/dut/device-template.ts';
import type { ResultEvent } from '../suites/model/events.ts';

/**
 * The station on fixtures/jigs/virtual-4slot-shared.json: two mains relays feeding two slots each and
 * one reference meter for all four. Judged on the simulator's physical history, not on what the host
 * believes: per group, mains reaches both plugs at the same instants (one relay, switched once per
 * transition), and never while either plug of the group has its UART or 3V3 connected.
 */

const JIG = loadJigFile(new URL('../fixtures/jigs/virtual-4slot-shared.json', import.meta.url).pathname);
const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;

function image(): { bytes: Uint8Array; offset: number; name: string } {
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 5, appBytes: 300_000 });
  const plan = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' }).bytesToWrite(false);
  return { bytes: plan.bytes, offset: plan.offset, name: im.name };
}

/** The smoke plan on the shared jig, signals left to the test: what every run here has in common. */
function smokeRun(sim: ReturnType<typeof startVirtualJig>, clock: VirtualClock): RunStationOptions {
  return {
    jig: JIG,
    jigPath: 'virtual-4slot-shared (test)',
    plan: loadPlan('smoke', PLANS),
    image: image(),
    baudRate: 2_000_000,
    outDir: mkdtempSync(join(tmpdir(), 'plugrig-mg-')),
    clock,
    log: createLogger({}, 'silent'),
    endpoints: sim.endpoints,
    signals: false,
  };
}

/** Times (model ms) the plug's mains input came on. */
function mainsOnEdges(h: readonly PhysicalChange[]): number[] {
  return h.filter((e) => e.changed.includes('mainsEnergised') && e.state.mainsEnergised).map((e) => Math.round(e.at));
}

/** Intervals where mains was live at any plug of the group while any plug of it had UART or 3V3 connected. */
function overlaps(histories: ReadonlyArray<readonly PhysicalChange[]>): string[] {
  const events = histories.flatMap((h, i) => h.map((e) => ({ i, e }))).sort((a, b) => a.e.at - b.e.at);
  const now = histories.map(() => ({ mains: false, uart: false }));
  const bad: string[] = [];
  for (const { i, e } of events) {
    now[i] = { mains: e.state.mainsEnergised, uart: e.state.uartConnected || e.state.supply3v3 };
    if (now.some((s) => s.mains) && now.some((s) => s.uart)) bad.push(`t=${e.at}: ${JSON.stringify(now)}`);
  }
  return bad;
}

t.test('smoke plan on two mains groups and one shared meter: every unit passes, each group switched as one, never against a UART', async (t) => {
  const clock = new VirtualClock();
  const sim = startVirtualJig(JIG, { clock });
  const events: ResultEvent[] = [];
  t.teardown(() => sim.vj.dispose());
  const results = await runStation({
    ...smokeRun(sim, clock),
    provisioning: { template: loadDeviceTemplate('fixtures/devices/rmc021.json'), wifi: DEFAULT_VIRTUAL_WIFI, secrets: [] },
    resolveHttp: sim.resolvePlug,
    defaultPlug: (id) => ({ url: simPlugAddress(id) }),
    sinks: [{ emit: (e) => void events.push(e) }],
  });
  for (const r of results) t.equal(r.verdict, 'pass', `slot ${r.slot}: ${r.reason ?? 'pass'}`);
  for (const [name, g] of Object.entries(JIG.mainsGroups ?? {})) {
    const hs = g.slots.map((s) => sim.vj.history(s));
    const edges = hs.map(mainsOnEdges);
    t.ok(edges[0]!.length >= 1, `group ${name}: mains came on (${edges[0]!.length} time(s))`);
    t.same(edges[1], edges[0], `group ${name}: both plugs got mains at the same instants (one relay)`);
    t.same(overlaps(hs), [], `group ${name}: never mains at a plug while a plug of the group had UART/3V3`);
    for (const s of g.slots) {
      const cleanup = results.find((r) => r.slot === s)!.steps.find((x) => x.name.startsWith(`mains group ${name}:`));
      t.equal(cleanup?.status, 'pass', `slot ${s}: the group's mains-off cleanup step ran and passed`);
    }
  }
  const waits = events.filter((e) => e.type === 'instrument' && e.kind === 'wait');
  t.ok(waits.length > 0, `slots waited for the one shared meter (${waits.length} waits)`);
});

t.test('a group member cannot be run alone: its relay also feeds the other', async (t) => {
  const clock = new VirtualClock();
  const sim = startVirtualJig(JIG, { clock });
  t.teardown(() => sim.vj.dispose());
  await t.rejects(
    runStation({ ...smokeRun(sim, clock), slots: [1, 3, 4] }),
    { code: 'E_CONFIG', message: /slots 1, 2 share mains group A \(one mains relay\): run them together \(--slot 1,2\)/ },
  );
  for (const s of [1, 2, 3, 4]) t.equal(sim.vj.physical(s).mainsEnergised, false, `slot ${s}: no mains`);
});
