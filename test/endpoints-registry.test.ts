import t from 'tap';
import { readFileSync } from 'node:fs';
import { loadJigFile, parseJig } from '../rig/jig/jig-config.ts';
import { simPlugAddress, startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import { ConfigError, TransportError } from '../rig/core/errors.ts';
import { nativeEndpoints } from '../rig/endpoints/native.ts';
import { EndpointRegistry } from '../rig/endpoints/registry.ts';
import { openSerialPort } from '../rig/endpoints/serial-port.ts';
import { openJigBoard, type FirmataStream } from '../rig/jig/jig-board.ts';
import { openMeter } from '../rig/meter/open-meter.ts';
import { openLink } from '../rig/serial/open-link.ts';
import { VirtualFirmataBoard } from '../sim/firmata/virtual-firmata-board.ts';
import { VirtualPzem } from '../sim/pzem/virtual-pzem.ts';
import { busEndpoints } from '../sim/serial/bus-endpoints.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';

const M = { volts: 230, amps: 0.1, watts: 23, pf: 1, hz: 50, wh: 0, timestamp: 0 };

/**
 * A registry whose `dev:<name>` ports behave like native ones (a device node that can vanish while
 * the binding says nothing) but are backed by the virtual bus: `present[name]` is the node.
 */
function vanishingRig() {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const present = new Map<string, boolean>();
  const endpoints = nativeEndpoints();
  endpoints.serial.register({
    name: 'test nodes (dev:)',
    matches: (p) => p.startsWith('dev:'),
    resolve: (p) => ({ path: `sim:${p.slice(4)}`, binding: bus.binding, present: () => present.get(p.slice(4)) === true, via: 'test' }),
  });
  return { clock, bus, present, endpoints };
}

t.test('resolver lists: the latest registration is asked first; nothing claiming is a ConfigError naming the endpoint', async (t) => {
  const r = new EndpointRegistry();
  const binding = new VirtualSerialBus(new VirtualClock()).binding;
  t.throws(() => r.serial.resolve('/dev/ttyUSB0'), { name: 'ConfigError', message: /no resolver for serial port \/dev\/ttyUSB0 \(resolvers: none registered\)/ });
  r.serial.register({ name: 'all', matches: () => true, resolve: (path) => ({ path, binding, via: 'all' }) });
  const off = r.serial.register({ name: 'x only', matches: (p) => p.startsWith('x:'), resolve: (path) => ({ path, binding, via: 'x' }) });
  t.equal(r.serial.resolve('x:1').via, 'x');
  t.equal(r.serial.resolve('/dev/ttyUSB0').via, 'all');
  off();
  t.equal(r.serial.resolve('x:1').via, 'all', 'unregistered');
  t.same(r.serial.names(), ['all']);
  t.throws(() => r.http.resolve('http://10.0.0.9'), ConfigError);
  t.equal(nativeEndpoints().http.resolve('http://10.0.0.9/').baseUrl, 'http://10.0.0.9');
});

t.test('native serial: a missing device node is refused before opening, for links and streams alike', async (t) => {
  const clock = new VirtualClock();
  const endpoints = nativeEndpoints();
  await t.rejects(openSerialPort(endpoints, '/dev/ttyPLUGRIG-missing', { baudRate: 57600, clock, what: 'I/O board io0 port' }), {
    name: 'TransportError',
    message: 'I/O board io0 port /dev/ttyPLUGRIG-missing does not exist (adapter unplugged, or wrong path?)',
    context: { errno: 'ENOENT' },
  });
  await t.rejects(openLink('/dev/ttyPLUGRIG-missing', { baudRate: 115200, clock, endpoints }), { name: 'TransportError', message: /does not exist/ });
  // sim: paths are not the native resolver's business: with the virtual bus registered they open.
  const bus = new VirtualSerialBus(clock);
  bus.attach('sim:pz', new VirtualPzem({ source: () => M }));
  const s = await openSerialPort(busEndpoints(bus), 'sim:pz', { baudRate: 9600, clock });
  t.ok(s.isOpen);
  await new Promise<void>((r) => s.close(() => r()));
});

t.test('an I/O board whose device node vanishes is lost (the interlock sees it), not left spinning', async (t) => {
  const { clock, bus, present, endpoints } = vanishingRig();
  const board = new VirtualFirmataBoard({ layout: 'uno' });
  bus.attach('sim:io0', board, { modemLines: true });
  present.set('io0', true);
  const stream = await openSerialPort(endpoints, 'dev:io0', { baudRate: 57600, clock, what: 'I/O board io0 port' });
  const jb = await openJigBoard({ stream: stream as unknown as FirmataStream, clock, timeoutMs: 3000, name: 'io0' });
  const lost = new Promise<unknown>((res) => jb.once('lost', (l) => res(l)));
  await clock.sleep(1000);
  t.ok(jb.connected, 'up while the node exists');
  // The binding reports nothing (the virtual port stays open): only the presence check can tell.
  present.set('io0', false);
  const loss = (await lost) as { reason: string; error?: Error };
  t.equal(loss.reason, 'error');
  t.type(loss.error, TransportError);
  t.match(loss.error?.message, /serial port dev:io0 vanished/);
  t.notOk(jb.connected);
  board.powerOff();
});

t.test('a PZEM whose port vanishes fails its next read with the vanish as the cause', async (t) => {
  const { clock, bus, present, endpoints } = vanishingRig();
  bus.attach('sim:pz', new VirtualPzem({ source: () => M }));
  present.set('pz', true);
  const meter = await openMeter({ kind: 'pzem004t', port: 'dev:pz', address: 0xf8 }, { clock, endpoints });
  const first = await meter.read();
  t.ok(Math.abs(first.volts - 230) <= 230 * 0.005 + 0.1, `reads (${first.volts} V, within the PZEM's ±0.5 %)`);
  present.set('pz', false);
  await clock.sleep(300);
  await t.rejects(meter.read(), { name: 'TransportError', message: 'serial port dev:pz vanished (adapter unplugged or pty gone)' }, 'the vanish, not a meter timeout');
  await meter.close().catch(() => undefined);
});

t.test("the virtual jig resolves a slot's sim: plug address to where that plug serves HTTP", async (t) => {
  const raw = JSON.parse(readFileSync(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url), 'utf8')) as { slots: Array<Record<string, unknown>> };
  raw.slots[0]!.plug = { url: 'sim:plug1' };
  const sim = startVirtualJig(parseJig(raw, 'with plug'), { clock: new VirtualClock() });
  t.teardown(() => sim.vj.dispose());
  // Unpowered (mains off, no 3V3): there is no web server to point at.
  t.throws(() => sim.endpoints.http.resolve('sim:plug1'), { name: 'TransportError', message: /virtual plug sim:plug1 \(slot 1\) serves no HTTP/ });
  t.throws(() => sim.endpoints.http.resolve('sim:plug9'), { name: 'ConfigError', message: /no resolver for HTTP address sim:plug9/ }, 'an address no slot names is not claimed');
  t.equal(sim.endpoints.http.resolve('http://192.168.4.1').baseUrl, 'http://192.168.4.1', 'real addresses still resolve natively');
  // locatePlug's resolver: the same addresses, undefined (poll again) instead of an error while the plug serves nothing.
  t.equal(sim.resolvePlug('sim:plug1'), undefined, 'unpowered: nothing to point at yet');
  t.equal(sim.resolvePlug('http://192.168.4.1')?.baseUrl, 'http://192.168.4.1', 'real addresses through the registry');
  t.throws(() => sim.resolvePlug('sim:plug9'), { name: 'ConfigError' }, 'no slot 9: not a virtual plug');
});

t.test('a slot without a plug section is reached at sim:plug<N> once its plug serves HTTP', async (t) => {
  const sim = startVirtualJig(loadJigFile(new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url).pathname), { clock: new VirtualClock() });
  t.teardown(() => sim.vj.dispose());
  const slot = sim.vj.slot(3);
  let url: string | undefined = 'http://127.0.0.1:1';
  const restore = slot.plugUrl;
  slot.plugUrl = () => url;
  t.teardown(() => void (slot.plugUrl = restore));
  t.same(sim.resolvePlug(simPlugAddress(3)), { baseUrl: 'http://127.0.0.1:1', via: 'virtual plug of slot 3' });
  t.same(sim.endpoints.http.resolve('sim:plug3'), { baseUrl: 'http://127.0.0.1:1', via: 'virtual plug of slot 3' }, 'the registry claims it too');
  url = undefined;
  t.equal(sim.resolvePlug('sim:plug3'), undefined);
});
