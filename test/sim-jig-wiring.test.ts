import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { parseJig, type JigSpec } from '../rig/jig/jig-config.ts';
import { openStation } from '../station/open-station.ts';
import { runStation } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { classifyImage } from '../firmware/image.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { simPlugAddress, startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { readSlotWiring } from '../sim/jig/wiring.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../sim/jig/virtual-jig.ts';
import { loadDeviceTemplate } from '../rig/dut/device-template.ts';

const log = createLogger({}, 'silent');
const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;
const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../fixtures/jigs/${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;

/** virtual-1slot with every output that may be active-low wired that way (mains may not be). */
function activeLowJig(): Record<string, unknown> {
  const raw = fixture('virtual-1slot.json') as { slots: Array<{ pins: Record<string, unknown> }> };
  const p = raw.slots[0]!.pins;
  p.cen = { pin: 2, activeLow: true };
  p.power3v3 = { pin: 3, activeLow: true };
  p.uartIsolation = { pin: 4, activeLow: true };
  p.button = { pin: 9, activeLow: true };
  p.relaySense = { pin: 10, activeLow: true };
  p.lid = { pin: 11, activeLow: true };
  (p.loads as Array<Record<string, unknown>>)[0]!.pin = { pin: 6, activeLow: true };
  return raw;
}

/** The same file as a host would read it if its helpers ignored activeLow (the mistake to catch). */
function withoutActiveLow(raw: Record<string, unknown>): JigSpec {
  const copy = structuredClone(raw) as { slots: Array<{ pins: Record<string, unknown> }> };
  const strip = (v: unknown): unknown => (v && typeof v === 'object' && 'activeLow' in v ? (v as unknown as { pin: number }).pin : v);
  for (const s of copy.slots) {
    for (const [k, v] of Object.entries(s.pins)) if (k !== 'loads' && k !== 'ledSensor') s.pins[k] = strip(v);
    s.pins.loads = (s.pins.loads as Array<Record<string, unknown>>).map((l) => ({ ...l, pin: strip(l.pin) }));
  }
  return parseJig(copy, 'mis-read');
}

async function hostOn(hostJig: JigSpec, simJig: JigSpec) {
  const clock = new VirtualClock();
  const sim = startVirtualJig(simJig, { clock });
  const station = await openStation(hostJig, { clock, log, endpoints: sim.endpoints });
  await clock.sleep(50);
  const s = station.slots.get(1)!;
  return { clock, sim, s, close: async () => { await station.close(); await sim.vj.dispose(); } };
}

t.test('the virtual jig reads the wiring from the jig file itself', async (t) => {
  const jig = parseJig(activeLowJig(), 'active-low');
  const w = readSlotWiring(jig.slots[0]!);
  t.same(w.uartIsolation, { pin: 4, activeLow: true });
  t.same(w.mains, { pin: 5, activeLow: false });
  t.same(w.power3v3, { pin: { pin: 3, activeLow: true } });
  t.same(w.loads[0]!.pin, { pin: 6, activeLow: true });
  t.same(w.loads[1]!.pin, { pin: 7, activeLow: false }, 'a bare number is active-high');
  const usb = readSlotWiring(parseJig(fixture('example-dcttech-loads.json'), 'dcttech').slots[0]!);
  t.same(usb.power3v3, { hub: { hubUsbPath: '1-1', port: 3 } });
  t.same(usb.loads[1]!.relay, { serial: 'QAAMZ', channel: 2 });
});

t.test('host and virtual jig agree on active-low wiring: every output lands where the host means it', async (t) => {
  const jig = parseJig(activeLowJig(), 'active-low');
  const r = await hostOn(jig, jig);
  t.teardown(r.close);
  const phys = () => r.sim.vj.physical(1);
  t.match(phys(), { uartConnected: false, supply3v3: false, cenLow: false, loadsOn: [], lidClosed: true, estopPressed: false }, 'init: everything off');
  t.equal(r.s.io.components.lidClosed(), true, 'the host reads the active-low lid as closed');
  t.equal(r.s.io.components.relayOn(), false);
  const sinceInit = r.sim.vj.history(1).length;
  await r.s.io.interlock.connectUart();
  await r.s.io.interlock.power3v3(true);
  t.match(phys(), { uartConnected: true, supply3v3: true, cenLow: false });
  r.s.io.components.setCen(false);
  await r.clock.sleep(20);
  t.equal(phys().cenLow, true, 'CEN held low');
  r.s.io.components.setCen(true);
  await r.clock.sleep(20);
  t.equal(phys().cenLow, false);
  await r.s.io.interlock.dryTestLoad('R25');
  t.same(r.sim.vj.history(1).slice(sinceInit).filter((e) => e.changed.includes('loadsOn')).map((e) => e.state.loadsOn), [['R25'], []], 'R25 closed and opened once');
  await r.s.io.interlock.safeState();
  t.match(phys(), { uartConnected: false, supply3v3: false, loadsOn: [] });
});

t.test('a host that mis-reads active-low (its helpers ignoring the flag) is caught by the virtual jig', async (t) => {
  const raw = activeLowJig();
  const r = await hostOn(withoutActiveLow(raw), parseJig(raw, 'active-low'));
  t.teardown(r.close);
  // The host believes it drove the isolation relay, 3V3 and R25 off; the wires say otherwise.
  t.equal(r.s.io.interlock.state().uart, 'off', 'the host thinks the UART is isolated');
  t.match(r.sim.vj.physical(1), { uartConnected: true, cenLow: true, loadsOn: ['R25'] }, 'physically connected, held in reset, load on');
  t.equal(r.s.io.components.lidClosed(), false, 'and it reads the closed (active-low) lid as open');
});

t.test('a virtual jig with dcttech load relays and hub-port 3V3 runs the factory smoke suite', async (t) => {
  const raw = fixture('example-dcttech-loads.json') as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a fixture edited in place
  raw.ioBoards.mega = { port: 'sim:mega', baudRate: 57600, layout: 'mega2560' };
  raw.meters.pzem.port = 'sim:pzem';
  raw.slots[0].uart = { port: 'sim:uart1' };
  const jig = parseJig(raw, 'dcttech (virtual)');
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock });
  t.teardown(() => sim.vj.dispose());
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 2, appBytes: 32 * 1024 });
  const plan = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' }).bytesToWrite(false);
  const [slot] = await runStation({
    jig,
    jigPath: 'dcttech (virtual)',
    plan: loadPlan('smoke', PLANS),
    image: { bytes: plan.bytes, offset: plan.offset, name: im.name },
    baudRate: 2_000_000,
    outDir: mkdtempSync(join(tmpdir(), 'plugrig-usbjig-')),
    clock,
    log,
    endpoints: sim.endpoints,
    provisioning: { template: loadDeviceTemplate('fixtures/devices/rmc021.json'), wifi: DEFAULT_VIRTUAL_WIFI, secrets: [] },
    resolveHttp: sim.resolvePlug,
    defaultPlug: (id) => ({ url: simPlugAddress(id) }),
  });
  t.equal(slot!.verdict, 'pass', slot!.steps.map((s) => `${s.name}=${s.status}${s.error ? ` (${s.error.message})` : ''}`).join('; '));
  const watts = slot!.steps.flatMap((s) => s.measurements).find((m) => m.id === 'loadPower')?.value;
  t.ok(watts !== undefined && watts > 20 && watts < 30, `R25 switched by the dcttech channel and measured: ${watts} W`);
  const relay = sim.vj.usb.relays.get('QAAMZ')!;
  t.equal(relay.mask, 0, 'every relay channel open at the end');
  t.equal(sim.vj.usb.hubs.get('1-1')!.powered[2], false, 'hub port 3 (3V3) off at the end');
  const h = sim.vj.history(1);
  t.ok(h.some((e) => e.state.supply3v3), '3V3 reached the module through the hub port');
  t.ok(h.some((e) => e.state.loadsOn.includes('R25') && e.state.mainsEnergised), 'the load was on with mains');
  t.same(h.filter((e) => e.state.mainsEnergised && e.state.uartConnected), [], 'never mains and UART at once');
});
