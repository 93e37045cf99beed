import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseJig } from '../rig/jig/jig-config.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { openStation } from '../station/open-station.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import { TransportError } from '../rig/core/errors.ts';
import { createLogger } from '../rig/core/log.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { Bk7231Flasher } from '../rig/bk7231/flasher.ts';
import { ModemLineReset } from '../rig/bk7231/reset.ts';
import { AdapterWatch, resolveUartRef } from '../rig/usb/usb-uart.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';
import { VirtualUsbUarts } from '../sim/usb/virtual-usb-uarts.ts';

/**
 * A slot's USB-UART disappears mid-flash (port closed under us) and comes back under another tty
 * name (same USB path and serial): the adapter watch fails only that slot's operation, naming the
 * adapter; a slot bound by USB path finds it again for the next unit, one bound by tty name does not.
 * Rig code (flasher, AdapterWatch, resolveUartRef) against the virtual adapters; checked on the chip.
 */
const log = createLogger({}, 'silent');
const OFFSET = 0x11000;
const image = (seed: number): Uint8Array => Uint8Array.from({ length: 0x20000 }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff);

t.test('the virtual adapters on their own: unplug closes the port, replug gives the next tty, same USB identity', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const usb = new VirtualUsbUarts(bus);
  const chip = new VirtualBk7231({});
  t.equal(usb.plugIn(chip, { usbPath: '1-1.3', serialNumber: 'A1' }), 'sim:ttyUSB0');
  const link = await SerialLink.open({ path: 'sim:ttyUSB0', baudRate: 115200, clock, binding: bus.binding });
  usb.unplug('1-1.3');
  await t.rejects(link.write(Uint8Array.of(1)), TransportError, 'the open port fails');
  t.same(await usb.scan(), [], 'gone from the scan');
  t.equal(usb.replug('1-1.3'), 'sim:ttyUSB1', 'back under the next name');
  t.same(await usb.scan(), [{ chip: 'CH340', vid: 0x1a86, pid: 0x7523, usbPath: '1-1.3', serialNumber: 'A1', devPath: 'sim:ttyUSB1' }]);
  await t.rejects(SerialLink.open({ path: 'sim:ttyUSB0', baudRate: 115200, clock, binding: bus.binding }), /ENOENT|No such file/, 'the old name is gone');
});

t.test('adapter unplugged mid-flash: that slot fails with the cause, the other flashes on; bound by USB path it is found again', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const usb = new VirtualUsbUarts(bus);
  const chips = [new VirtualBk7231({ seed: 1 }), new VirtualBk7231({ seed: 2 })];
  usb.plugIn(chips[0]!, { usbPath: '1-1.3', serialNumber: 'SLOT1' });
  usb.plugIn(chips[1]!, { usbPath: '1-1.4', serialNumber: 'SLOT2' });
  for (const c of chips) c.powerOn();
  const watch = new AdapterWatch({ clock, intervalMs: 250, scan: usb.scan });
  await watch.start();
  t.teardown(() => watch.stop());

  /** One unit on a slot, the way a station step runs it: resolve, open, flash under the adapter's signal. */
  const flashUnit = async (ref: { usbPath?: string; port?: string }, usbPath: string, data: Uint8Array): Promise<string> => {
    const path = await resolveUartRef(ref, { scan: usb.scan });
    const link = await SerialLink.open({ path, baudRate: 115200, clock, binding: bus.binding });
    const signal = watch.signalFor(usbPath);
    const onAbort = (): void => void link.close().catch(() => undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const flasher = new Bk7231Flasher({ port: link, reset: ModemLineReset.bk7231tools(), log, guardOutsideImage: true });
      await flasher.connect();
      await flasher.write(data, OFFSET);
      return path;
    } catch (e) {
      // The watch's reason names the adapter; the flasher only saw its port go.
      throw signal.aborted ? signal.reason : e;
    } finally {
      signal.removeEventListener('abort', onAbort);
      await link.close().catch(() => undefined);
    }
  };

  const slot1 = flashUnit({ usbPath: '1-1.3' }, '1-1.3', image(1));
  const slot2 = flashUnit({ usbPath: '1-1.4' }, '1-1.4', image(2));
  slot1.catch(() => undefined);
  await clock.sleep(1500); // mid-write at 2 Mbaud
  usb.unplug('1-1.3');
  const e = await slot1.then(() => undefined, (x: unknown) => x);
  t.type(e, TransportError, 'slot 1 failed with a TransportError');
  t.match((e as Error).message, /USB-UART adapter at 1-1\.3 \(CH340 sim:ttyUSB0\) was unplugged/, 'naming the adapter');
  const left = chips[0]!.flash.read(OFFSET, 0x20000);
  t.not(Buffer.compare(left, image(1)), 0, 'slot 1 unit left incomplete (the adapter went mid-flash)');
  t.equal(await slot2, 'sim:ttyUSB1', 'slot 2 finished its unit meanwhile');
  t.equal(Buffer.compare(chips[1]!.flash.read(OFFSET, 0x20000), image(2)), 0, "slot 2's chip holds its image");

  t.equal(usb.replug('1-1.3'), 'sim:ttyUSB2', 'slot 1 adapter back, under another name');
  await clock.sleep(300); // the watch sees it again
  t.equal(watch.signalFor('1-1.3').aborted, false, 'a fresh signal for the next unit');
  t.equal(await flashUnit({ usbPath: '1-1.3' }, '1-1.3', image(3)), 'sim:ttyUSB2', 'bound by USB path: the next unit finds it and flashes');
  t.equal(Buffer.compare(chips[0]!.flash.read(OFFSET, 0x20000), image(3)), 0, "slot 1's chip holds the next unit's image");
  await t.rejects(flashUnit({ port: 'sim:ttyUSB0' }, '1-1.3', image(4)), /ENOENT|No such file/, 'bound by the old tty name: not found');
});

t.test('through the station: the virtual 4-slot jig binds by USB path, the fault knob pulls slot 2 mid-flash, the next session finds it again', async (t) => {
  const raw = JSON.parse(readFileSync(new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url), 'utf8')) as { slots: Array<Record<string, unknown>> };
  t.same(raw.slots.map((s) => s.uart), [1, 2, 3, 4].map((n) => ({ usbPath: `1-1.${n}` })), 'the shipped virtual jig binds every slot UART by USB path');
  raw.slots[1]!.faults = { adapter: { unplugAtCommand: { command: 'FlashWrite4K', nth: 3 }, replugAfterMs: 1000 } };
  const jig = parseJig(raw, 'virtual-4slot (slot 2 adapter fault)');
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock, http: false });
  t.teardown(() => sim.vj.dispose());
  const station = await openStation(jig, { clock, log, endpoints: sim.endpoints, slots: [1, 2] });
  t.teardown(() => station.close());
  const chip = sim.vj.slot(2).chip;
  const slot2 = station.slots.get(2)!;
  await slot2.io.interlock.connectUart();
  await slot2.io.interlock.power3v3(true);

  /** One ROM session on slot 2 as the flash suite runs it: open (resolved now), link, write, close. */
  const session = async (data: Uint8Array): Promise<string> => {
    const port = await slot2.uart.open({ baudRate: 115200, log });
    try {
      const flasher = new Bk7231Flasher({ port, reset: slot2.io.resetStrategy(), baudRate: 2_000_000, log, guardOutsideImage: true });
      await flasher.connect();
      await flasher.unprotect();
      await flasher.write(data, OFFSET);
      return port.path;
    } finally {
      await port.close().catch(() => undefined);
    }
  };
  const e = await session(image(5)).then(() => undefined, (x: unknown) => x);
  const chain: Error[] = [];
  for (let x: unknown = e; x instanceof Error; x = x.cause) chain.push(x);
  t.match(chain.find((x) => x.name === 'TransportError'), { message: 'slot 2: USB-UART adapter at 1-1.2 (CH340 sim:ttyUSB1) was unplugged', context: { slot: 2, usbPath: '1-1.2', tty: 'sim:ttyUSB1' } }, 'the unit fails naming slot, USB path and tty');
  t.equal(chip.counters.commands.FlashWrite4K, 3, 'pulled at the 3rd sector write, as the jig file said');
  t.equal(sim.vj.usbUarts?.ttyOf('1-1.2'), undefined, 'still out when the next session opens');
  const t0 = clock.now();
  t.equal(await session(image(6)), 'sim:ttyUSB4', 'the next session waits for the adapter, resolves it under its new tty and flashes');
  t.equal(sim.vj.usbUarts?.ttyOf('1-1.2'), 'sim:ttyUSB4', 'back under the next tty name');
  t.ok(clock.now() - t0 >= 900, 'it waited for the replug (1 s after the pull)');
  t.equal(Buffer.compare(chip.flash.read(OFFSET, 0x20000), image(6)), 0, "slot 2's chip holds the next unit's image");
  t.equal(station.slots.get(1)!.io.interlock.state().mains, 'off', 'slot 1 untouched');
  const st = slot2.io.interlock.state();
  t.match(st, { mains: 'off' }, 'mains stayed off on slot 2 throughout (the UART side was connected)');
  t.same(sim.vj.slot(2).history.where((s) => s.mainsEnergised), [], 'never energised (physical history)');
});

t.test('the fault knob is refused where it cannot act', async (t) => {
  const raw = JSON.parse(readFileSync(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url), 'utf8')) as { slots: Array<Record<string, unknown>> };
  raw.slots[0]!.faults = { adapter: { unplugAfterMs: 100 } };
  const clock = new VirtualClock();
  t.throws(() => startVirtualJig(parseJig(raw, 'one'), { clock, http: false }), { name: 'ConfigError', message: /slot 1: faults\.adapter .* bound by tty name \(sim:uart1\); bind it by usbPath or serialNumber/ }, 'a slot bound by tty name has no USB adapter to pull');
  raw.slots[0]!.faults = { adapter: { replugAfterMs: 100 } };
  t.throws(() => parseJig(raw, 'one'), /faults\.adapter.*needs one of unplugAfterMs or unplugAtCommand/);
  raw.slots[0]!.faults = { adapter: { unplugAtCommand: { command: 'FlashWrite8K', nth: 1 } } };
  t.throws(() => parseJig(raw, 'one'), /faults\.adapter\.unplugAtCommand\.command/);
});
