import t, { type Test } from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { TransportError } from '../rig/core/errors.ts';
import { nativeEndpoints } from '../rig/endpoints/native.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { REPLUG_WAIT_MS, SlotUart } from '../station/slot-uart.ts';
import { registerVirtualBus } from '../sim/serial/bus-endpoints.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';
import { VirtualUsbUarts } from '../sim/usb/virtual-usb-uarts.ts';

/**
 * SlotUart.open after the slot's adapter went while a session had it open: it waits (bounded by
 * REPLUG_WAIT_MS, on the station's clock) for the adapter to re-enumerate at its USB path, then opens
 * it under its new tty; never back in time is the unplug's TransportError. An adapter never seen is
 * not waited for. Model time throughout (VirtualClock).
 */
function rig() {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const endpoints = nativeEndpoints();
  registerVirtualBus(endpoints, bus);
  const usb = new VirtualUsbUarts(bus);
  // As the in-process jig registers them, except that a USB path nobody plugged in is looked for here too.
  endpoints.usbUarts.register({ name: 'test adapters', matches: (r) => r.port === undefined, resolve: () => ({ scan: usb.scan, via: 'test' }) });
  usb.plugIn(new VirtualBk7231({ seed: 1 }), { usbPath: '1-1.1' });
  usb.plugIn(new VirtualBk7231({ seed: 2 }), { usbPath: '1-1.2' });
  const uart = new SlotUart({ slot: 2, ref: { usbPath: '1-1.2' }, endpoints, clock });
  return { clock, bus, usb, uart, endpoints };
}

/** Open slot 2's UART, pull its adapter, let the port notice (a failed write asks the scan). */
async function loseWhileOpen(t: Test, r: ReturnType<typeof rig>): Promise<void> {
  const port = await r.uart.open({ baudRate: 115200 });
  r.usb.unplug('1-1.2');
  await port.write(Uint8Array.of(0x01)).then(
    () => t.fail('a write on a pulled adapter succeeded'),
    (e: unknown) => t.match(e, { message: /USB-UART adapter at 1-1\.2 \(CH340 sim:ttyUSB1\) was unplugged/ }),
  );
  await port.close().catch(() => undefined);
}

t.test('replugged within the wait: the next open waits for it and opens its new tty', async (t) => {
  const r = rig();
  await loseWhileOpen(t, r);
  const t0 = r.clock.now();
  r.clock.at(t0 + 3000, () => void r.usb.replug('1-1.2'));
  const port = await r.uart.open({ baudRate: 115200 });
  const waited = r.clock.now() - t0;
  t.equal(port.path, 'sim:ttyUSB2', 'the adapter under the tty it re-enumerated with');
  t.ok(waited >= 3000 && waited <= 3000 + 500, `opened within one scan interval of the replug (${waited} ms)`);
  await port.write(Uint8Array.of(0x01));
  await port.close();
  const again = r.clock.now();
  const next = await r.uart.open({ baudRate: 115200 });
  t.equal(r.clock.now() - again, 0, 'found again: the session after that does not wait');
  await next.close();
});

t.test('never back: the open fails after REPLUG_WAIT_MS with the unplug as its typed cause', async (t) => {
  const r = rig();
  await loseWhileOpen(t, r);
  const t0 = r.clock.now();
  const e = await r.uart.open({ baudRate: 115200 }).then(() => undefined, (x: unknown) => x);
  t.type(e, TransportError);
  t.equal(r.clock.now() - t0, REPLUG_WAIT_MS, `waited exactly the stated bound (${REPLUG_WAIT_MS} ms)`);
  t.match((e as TransportError).message, /^slot 2 UART \(USB path 1-1\.2\): no USB-UART adapter with USB path 1-1\.2 \(present: 1-1\.1 CH340 sim:ttyUSB0\): the USB-UART adapter at 1-1\.2 \(CH340 sim:ttyUSB1\) was unplugged and did not come back within 15 s$/);
  t.match((e as TransportError).context, { slot: 2, usbPath: '1-1.2', tty: 'sim:ttyUSB1', replugWaitMs: REPLUG_WAIT_MS, waitedMs: REPLUG_WAIT_MS });
});

t.test('back only after the bound: that open fails, the next one finds it at once', async (t) => {
  const r = rig();
  await loseWhileOpen(t, r);
  const t0 = r.clock.now();
  r.clock.at(t0 + REPLUG_WAIT_MS + 5000, () => void r.usb.replug('1-1.2'));
  await t.rejects(r.uart.open({ baudRate: 115200 }), { message: /did not come back within 15 s/ });
  await r.clock.sleepUntil(t0 + REPLUG_WAIT_MS + 5000);
  const port = await r.uart.open({ baudRate: 115200 });
  t.equal(port.path, 'sim:ttyUSB2');
  await port.close();
});

t.test("the step's abort ends the wait at once and opens nothing", async (t) => {
  const r = rig();
  await loseWhileOpen(t, r);
  const t0 = r.clock.now();
  const ctrl = new AbortController();
  const reason = new Error('step timed out');
  r.clock.at(t0 + 2000, () => ctrl.abort(reason));
  r.clock.at(t0 + 4000, () => void r.usb.replug('1-1.2'));
  const e = await r.uart.open({ baudRate: 115200, signal: ctrl.signal }).then(() => undefined, (x: unknown) => x);
  t.equal(e, reason, "the abort's reason, not a UART fault");
  t.equal(r.clock.now() - t0, 2000, 'at the abort');
  await r.clock.sleepUntil(t0 + 4500);
  // Opening it here fails "already open" if the aborted step had opened it behind our back.
  const opened = SerialLink.open({ path: 'sim:ttyUSB2', baudRate: 115200, clock: r.clock, binding: r.bus.binding });
  await t.resolves(opened, 'the replugged tty was left closed (not opened behind the aborted step)');
  await (await opened).close();
});

t.test('an adapter this slot never had is not waited for', async (t) => {
  const r = rig();
  const other = new SlotUart({ slot: 3, ref: { usbPath: '1-1.3' }, endpoints: r.endpoints, clock: r.clock });
  const t0 = r.clock.now();
  await t.rejects(other.open({ baudRate: 115200 }), { message: /^slot 3 UART \(USB path 1-1\.3\): no USB-UART adapter with USB path 1-1\.3/ });
  t.equal(r.clock.now() - t0, 0, 'failed at once');
});
