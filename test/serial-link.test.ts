import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { ConfigError, TimeoutError, TransportError } from '../rig/core/errors.ts';
import { ByteQueue } from '../rig/serial/byte-queue.ts';
import { openLink } from '../rig/serial/open-link.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { ScriptedDevice } from '../sim/serial/scripted-device.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { wireTimeMs } from '../sim/serial/virtual-uart-wire.ts';
import { busEndpoints } from '../sim/serial/bus-endpoints.ts';

const close = (a: number, b: number): boolean => Math.abs(a - b) < 1e-6;

function rig(opts: { modemLines?: boolean; baud?: number; reply?: (b: Uint8Array, d: ScriptedDevice) => Uint8Array | null } = {}) {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const dev = new ScriptedDevice(opts.baud ?? 115200, opts.reply);
  const wire = bus.attach('dut', dev, { modemLines: opts.modemLines ?? false });
  return { clock, bus, dev, wire };
}

t.test('ByteQueue: append/consume/indexOf across growth and compaction', async (t) => {
  const q = new ByteQueue(16);
  const model: number[] = [];
  let x = 1;
  for (let round = 0; round < 2000; round++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const n = x % 37;
    const chunk = Uint8Array.from({ length: n }, (_, i) => (round + i) & 0xff);
    q.push(chunk);
    model.push(...chunk);
    const take = (x >>> 8) % 41;
    const got = q.consume(take);
    const want = model.splice(0, take);
    if (got.length !== want.length || got.some((b, i) => b !== want[i]) || q.length !== model.length) {
      t.fail(`round ${round}: consumed ${got.length}/${want.length}, queued ${q.length}/${model.length}`);
      break;
    }
  }
  t.same([...q.peek()], model);
  q.clear();
  q.push(Uint8Array.of(1, 2, 3, 1, 2, 4));
  t.equal(q.indexOf(Uint8Array.of(1, 2, 4)), 3);
  t.equal(q.indexOf(Uint8Array.of(1, 2), 1), 3);
  t.equal(q.indexOf(Uint8Array.of(9)), -1);
});

t.test('read: exact length, one byte at a time or in one chunk, at wire speed', async (t) => {
  const { clock, bus, dev } = rig();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  t.equal(link.baudRate(), 115200);
  const reply = Uint8Array.of(0x04, 0x0e, 0x05, 0x01, 0xe0, 0xfc, 0x01, 0x00);

  // One byte per send (the device's UART dribbling).
  for (const b of reply) dev.send(Uint8Array.of(b));
  const t0 = clock.now();
  t.same(await link.read(8, 100), reply);
  t.ok(close(clock.now() - t0, wireTimeMs(8, 115200)), 'resolved when the 8th byte landed');

  // One chunk; read less than available leaves the rest.
  dev.send(reply);
  t.same(await link.read(3, 100), reply.subarray(0, 3));
  t.equal(link.available(), 5);
  t.same(link.peek(), reply.subarray(3));
  t.same(await link.read(5, 0), reply.subarray(3), 'already buffered: no wait needed');

  // Writes reach the device.
  await link.write(Uint8Array.of(1, 2, 3));
  await clock.sleep(1);
  t.same(dev.receivedBytes(), Uint8Array.of(1, 2, 3));
  await link.close();
});

t.test('read timeout: TimeoutError on virtual time with the bytes seen; they stay buffered', async (t) => {
  const { clock, bus, dev } = rig();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  dev.send(Uint8Array.of(0xaa, 0xbb));
  const t0 = clock.now();
  const err = await link.read(4, 250).then(
    () => null,
    (e: unknown) => e,
  );
  t.type(err, TimeoutError);
  t.match((err as TimeoutError).context, { path: 'sim:dut', expected: '4 bytes' });
  t.same((err as TimeoutError).context.bytesSeen, Uint8Array.of(0xaa, 0xbb));
  t.equal(clock.now() - t0, 250, 'timeout measured on the link clock');
  t.same(link.discardInput(), Uint8Array.of(0xaa, 0xbb));
  t.equal(link.available(), 0);

  // A timed-out read does not steal later bytes; a new read gets them.
  dev.send(Uint8Array.of(0xcc));
  t.same(await link.read(1, 50), Uint8Array.of(0xcc));

  // One read at a time.
  const pending = link.read(1, 50);
  await t.rejects(link.read(1, 50), TransportError);
  await t.rejects(pending, TimeoutError);
  await link.close();
});

t.test('readUntil: up to and including the pattern, across chunk boundaries', async (t) => {
  const { clock, bus, dev } = rig();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  const text = new TextEncoder().encode('boot noise\r\nOK\r\n> rest');
  for (const b of text) dev.send(Uint8Array.of(b));
  const line1 = await link.readUntil(new TextEncoder().encode('\r\n'), 100);
  t.equal(new TextDecoder().decode(line1), 'boot noise\r\n');
  const prompt = await link.readUntil(new TextEncoder().encode('\r\n> '), 100);
  t.equal(new TextDecoder().decode(prompt), 'OK\r\n> ');
  await clock.sleep(5);
  t.equal(new TextDecoder().decode(link.peek()), 'rest');

  const err = await link.readUntil(Uint8Array.of(0x04, 0x0e), 30).catch((e: unknown) => e);
  t.type(err, TimeoutError);
  t.equal((err as TimeoutError).context.expected, '04 0e');
  t.equal(new TextDecoder().decode((err as TimeoutError).context.bytesSeen), 'rest');

  // A pattern split over two deliveries far apart in time.
  link.discardInput();
  dev.send(Uint8Array.of(0x00, 0x04));
  const until = link.readUntil(Uint8Array.of(0x04, 0x0e, 0x05), 500);
  await clock.sleep(100);
  dev.send(Uint8Array.of(0x0e, 0x05, 0x99));
  t.same(await until, Uint8Array.of(0x00, 0x04, 0x0e, 0x05));
  await link.close();
});

t.test('drainInput waits for silence (or maxMs) and returns what it dropped; onData taps', async (t) => {
  const { clock, bus, dev } = rig();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  const tapped: number[] = [];
  const untap = link.onData((b) => tapped.push(...b));

  // 30 ms of chatter, one byte every 3 ms.
  for (let i = 0; i < 10; i++) clock.at(i * 3, () => dev.send(Uint8Array.of(0x30 + i)));
  const t0 = clock.now();
  const dropped = await link.drainInput(10, 1000);
  t.same([...dropped], Array.from({ length: 10 }, (_, i) => 0x30 + i));
  const lastArrival = 27 + wireTimeMs(1, 115200);
  t.ok(close(clock.now() - t0, lastArrival + 10), `returned 10 ms after the last byte (${clock.now() - t0})`);
  t.equal(link.available(), 0);
  t.same(tapped, [...dropped]);

  // Endless chatter: maxMs caps the wait.
  let stop = false;
  const chatter = (): void => {
    if (stop) return;
    dev.send(Uint8Array.of(0x55));
    clock.at(clock.now() + 2, chatter);
  };
  chatter();
  const t1 = clock.now();
  const lots = await link.drainInput(10, 100);
  stop = true;
  t.ok(close(clock.now() - t1, 100), 'stopped at maxMs');
  t.ok(lots.length >= 45 && lots.every((b) => b === 0x55));

  untap();
  const before = tapped.length;
  dev.send(Uint8Array.of(1));
  await clock.sleep(5);
  t.equal(tapped.length, before, 'unsubscribed tap sees nothing');
  await link.close();
});

t.test('baud changes: mismatch garbles, matching again is clean', async (t) => {
  const { clock, bus, dev, wire } = rig({ reply: (b) => b });
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  await link.write(Uint8Array.of(0x10, 0x20));
  t.same(await link.read(2, 50), Uint8Array.of(0x10, 0x20));

  await link.setBaudRate(921600);
  t.equal(link.baudRate(), 921600);
  t.equal(wire.hostBaud(), 921600);
  await link.write(Uint8Array.of(0x10, 0x20));
  const junk = await link.drainInput(20, 200);
  t.ok(junk.length > 0 && !(junk[0] === 0x10 && junk[1] === 0x20), 'echo is garbage');

  dev.setBaudRate(921600);
  await link.write(Uint8Array.of(0x10, 0x20));
  t.same(await link.read(2, 50), Uint8Array.of(0x10, 0x20));
  await link.close();
});

t.test('modem lines: routed wiring sees them, unspecified line keeps its level; a pty-like port refuses', async (t) => {
  const a = rig({ modemLines: true });
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock: a.clock, binding: a.bus.binding });
  await link.setModemLines({ rts: false });
  t.same(a.dev.modemLineLog.at(-1), { dtr: true, rts: false });
  await link.setModemLines({ dtr: false });
  t.same(a.dev.modemLineLog.at(-1), { dtr: false, rts: false }, 'rts stays low');
  await link.close();

  const b = rig({ modemLines: false });
  const plain = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock: b.clock, binding: b.bus.binding });
  await t.rejects(plain.setModemLines({ dtr: true }), { name: 'TransportError', message: /cannot drive DTR\/RTS on sim:dut/ });
  await plain.close();
});

t.test('unplug fails the pending read with TransportError; later calls fail too', async (t) => {
  const { clock, bus } = rig();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  const pending = link.read(10, 5000);
  clock.at(20, () => bus.unplug('sim:dut'));
  const err = await pending.catch((e: unknown) => e);
  t.type(err, TransportError);
  t.match((err as TransportError).message, /closed unexpectedly.*unplugged/);
  t.ok(clock.now() < 5000, 'failed at once, not at the timeout');
  t.notOk(link.isOpen());
  await t.rejects(link.write(Uint8Array.of(1)), TransportError);
  await t.rejects(link.read(1, 10), TransportError);
  await link.close();
});

t.test('open errors and openLink routing', async (t) => {
  const { clock, bus, dev } = rig({ reply: (b) => b });
  await t.rejects(SerialLink.open({ path: 'sim:ghost', baudRate: 115200, clock, binding: bus.binding }), {
    name: 'TransportError',
    context: { path: 'sim:ghost' },
  });
  await t.rejects(openLink('sim:dut', { baudRate: 115200, clock }), { name: 'TransportError', message: /does not exist/ }, 'sim: path with only the native resolvers');
  await t.rejects(openLink('/dev/ttyPLUGRIG-missing', { baudRate: 115200, clock }), {
    name: 'TransportError',
    message: /does not exist/,
    context: { path: '/dev/ttyPLUGRIG-missing' },
  });

  const link = await openLink('sim:dut', { baudRate: 115200, clock, endpoints: busEndpoints(bus) });
  await t.rejects(openLink('sim:dut', { baudRate: 115200, clock, endpoints: busEndpoints(bus) }), { name: 'TransportError', message: /already open/ });
  await link.write(Uint8Array.of(0x42));
  t.same(await link.read(1, 10), Uint8Array.of(0x42));
  await link.close();
  await link.close();
  t.equal(dev.hostClosedCount, 1);

  // Many open/close cycles through SerialLink leave nothing behind.
  for (let i = 0; i < 20; i++) {
    const l = await openLink('sim:dut', { baudRate: 115200, clock, endpoints: busEndpoints(bus) });
    await l.write(Uint8Array.of(i));
    t.same(await l.read(1, 10), Uint8Array.of(i));
    await l.close();
  }
  t.equal(clock.pending(), 0);
});
