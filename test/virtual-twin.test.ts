import t from 'tap';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import { resolveUart } from '../rig/usb/usb-uart.ts';
import { virtualTwinOf } from '../cli/virtual-twin.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';

/**
 * `jig check --sim`'s twin keeps a slot UART bound by USB path (or serial) bound that way, so the
 * virtual jig puts a virtual USB-UART adapter there and the station resolves it as `run --sim` does;
 * a slot bound by tty name gets `sim:uartN`; `sim:` ports stay.
 */
const FILE = new URL('../fixtures/jigs/example-arduino-pzem-dcttech.json', import.meta.url).pathname;

t.test('a USB-path slot UART stays bound by USB path in the twin, and resolves to its virtual adapter', async (t) => {
  const file = loadJigFile(FILE);
  t.match(file.slots[0]!.uart, { usbPath: '1-1.2' }, 'the real file binds slot 1 by USB path');
  const twin = virtualTwinOf(file);
  t.same(twin.slots[0]!.uart, file.slots[0]!.uart, 'kept as the file says it (no sim: tty name)');
  t.ok(Object.values(twin.ioBoards).every((b) => b.port?.startsWith('sim:')), 'the boards are virtual');
  const sim = startVirtualJig(twin, { clock: new VirtualClock(), http: false });
  t.teardown(() => sim.vj.dispose());
  const found = await resolveUart(sim.endpoints, twin.slots[0]!.uart);
  t.match(found, { path: 'sim:ttyUSB0', adapter: { usbPath: '1-1.2', chip: 'CH340' } }, 'a virtual CH340 at that USB path');
});

t.test('tty-name slots become sim:uartN, sim: ports and serial-number bindings stay', async (t) => {
  const file = loadJigFile(FILE);
  const base = file.slots[0]!;
  // The mapping alone (three slots on the same pins would not validate as a file).
  const slots = [
    { ...base, id: 1, uart: { port: '/dev/ttyUSB7', baudRate: 115200 } },
    { ...base, id: 2, uart: { port: 'sim:uart9' } },
    { ...base, id: 3, uart: { serialNumber: 'A5069RR4' } },
  ];
  const twin = virtualTwinOf({ ...file, slots });
  t.same(twin.slots.map((s) => s.uart), [{ port: 'sim:uart1', baudRate: 115200 }, { port: 'sim:uart9' }, { serialNumber: 'A5069RR4' }]);
});
