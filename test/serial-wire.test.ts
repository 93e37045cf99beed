import t from 'tap';
import { SerialPortStream } from '@serialport/stream';
import { VirtualClock, type Clock } from '../rig/core/clock.ts';
import { TransportError } from '../rig/core/errors.ts';
import { ScriptedDevice } from '../sim/serial/scripted-device.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import type { UartTx, VirtualUartDevice } from '../sim/serial/uart-device.ts';
import { VirtualUartWire, garbleBytes, wireTimeMs } from '../sim/serial/virtual-uart-wire.ts';

const bytesOf = (n: number, seed = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
const idle = (clock: VirtualClock, ms = 1000): Promise<void> => clock.sleep(ms);
const close = (a: number, b: number): boolean => Math.abs(a - b) < 1e-9;

t.test('wire timing: N bytes at B baud take N*10/B s of virtual time', async (t) => {
  for (const baud of [9600, 115200, 921600]) {
    const clock = new VirtualClock();
    const dev = new ScriptedDevice(baud);
    const wire = new VirtualUartWire({ clock, device: dev });
    wire.setHostBaud(baud);
    const data = bytesOf(1000);
    const lastAt = wire.hostWrite(data);
    await idle(clock, 2000);
    t.ok(close(lastAt, (1000 * 10 * 1000) / baud), `returned arrival time at ${baud}`);
    t.same(dev.receivedBytes(), data, `all bytes delivered in order at ${baud}`);
    let count = 0;
    for (const chunk of dev.received) {
      count += chunk.bytes.length;
      // Every slice arrives exactly when its last byte's stop bit ends, on the ideal timeline.
      if (!close(chunk.t, wireTimeMs(count, baud))) t.fail(`slice ending at byte ${count} arrived at ${chunk.t}`);
    }
    const maxSlice = Math.max(...dev.received.map((c) => c.bytes.length));
    t.equal(maxSlice, Math.max(1, Math.floor(1 / wireTimeMs(1, baud))), `~1 ms slices at ${baud}`);
    t.same(wire.counters(), { hostToDevice: 1000, deviceToHost: 0, garbledToDevice: 0, garbledToHost: 0, droppedToHost: 0 });
  }
});

/** Records each delivery's modelled arrival time and the clock time its callback ran. */
class TimestampDevice implements VirtualUartDevice {
  readonly deliveries: Array<{ bytes: number; atMs: number | undefined; ranAt: number }> = [];
  #clock: Clock | undefined;
  constructor(readonly baud: number) {}
  baudRate(): number {
    return this.baud;
  }
  connect(_tx: UartTx, clock: Clock): void {
    this.#clock = clock;
  }
  receive(bytes: Uint8Array, atMs?: number): void {
    this.deliveries.push({ bytes: bytes.length, atMs, ranAt: this.#clock!.now() });
  }
}

t.test('each slice carries its modelled arrival time, even when its callback runs late', async (t) => {
  const base = new VirtualClock();
  const LAG = 3;
  // A real clock on a busy machine: every callback runs LAG ms after its time.
  const lagging: Clock = {
    kind: 'real',
    now: () => base.now(),
    at: (at, fn) => base.at(at + LAG, fn),
    sleep: (ms, signal) => base.sleep(ms, signal),
    sleepUntil: (at, signal) => base.sleepUntil(at, signal),
  };
  for (const [label, clock, lag] of [['virtual', base, 0], ['lagging', lagging, LAG]] as const) {
    const dev = new TimestampDevice(115200);
    const wire = new VirtualUartWire({ clock, device: dev });
    wire.setHostBaud(115200);
    const start = base.now();
    wire.hostWrite(bytesOf(100));
    await base.sleep(50);
    let count = 0;
    const wrong = dev.deliveries.filter((d) => {
      count += d.bytes;
      const ideal = start + wireTimeMs(count, 115200);
      return d.atMs === undefined || !close(d.atMs, ideal) || !close(d.ranAt, ideal + lag);
    });
    t.equal(count, 100, `${label}: all bytes delivered`);
    t.same(wrong, [], `${label}: atMs is the ideal arrival of each slice's last byte; callbacks ran ${lag} ms after it`);
  }
});

t.test('back-to-back writes are serialised; a write after a gap starts at once', async (t) => {
  const clock = new VirtualClock();
  const dev = new ScriptedDevice(115200);
  const wire = new VirtualUartWire({ clock, device: dev });
  wire.setHostBaud(115200);
  const a = wire.hostWrite(bytesOf(10, 1));
  const b = wire.hostWrite(bytesOf(10, 2));
  t.ok(close(a, wireTimeMs(10, 115200)));
  t.ok(close(b, wireTimeMs(20, 115200)), 'second write queued behind the first');
  t.ok(close(wire.hostTxIdleAt(), b));
  await clock.sleepUntil(100);
  const c = wire.hostWrite(bytesOf(5, 3));
  t.ok(close(c, 100 + wireTimeMs(5, 115200)), 'idle wire: starts now');
  await idle(clock);
  t.same(dev.receivedBytes(), Uint8Array.from([...bytesOf(10, 1), ...bytesOf(10, 2), ...bytesOf(5, 3)]));
  t.equal(dev.received.at(-1)!.t, c);
});

t.test('device replies are paced at the device baud and serialised too', async (t) => {
  const clock = new VirtualClock();
  const dev = new ScriptedDevice(9600);
  const wire = new VirtualUartWire({ clock, device: dev });
  const got: { t: number; bytes: Uint8Array }[] = [];
  wire.hostOpen(9600, (bytes) => got.push({ t: clock.now(), bytes }));
  dev.send(bytesOf(20));
  dev.send(bytesOf(5, 9));
  await idle(clock);
  t.same(Uint8Array.from(got.flatMap((g) => [...g.bytes])), Uint8Array.from([...bytesOf(20), ...bytesOf(5, 9)]));
  t.ok(close(got.at(-1)!.t, wireTimeMs(25, 9600)));
  t.equal(got.length, 25, 'at 9600 baud a byte takes > 1 ms, so one byte per delivery');
  t.equal(wire.counters().deviceToHost, 25);
});

t.test('baud mismatch garbles both ways; matched (within 3 %) rates do not', async (t) => {
  const clock = new VirtualClock();
  const dev = new ScriptedDevice(9600);
  const wire = new VirtualUartWire({ clock, device: dev });
  const host: Uint8Array[] = [];
  wire.hostOpen(115200, (b) => host.push(b));

  // Host at 115200 -> device at 9600: 120 bytes look like ~10 to the slow receiver.
  const sent = bytesOf(120);
  wire.hostWrite(sent);
  await idle(clock);
  const rx = dev.receivedBytes();
  t.equal(rx.length, 10, 'count scaled by 9600/115200');
  t.not(Buffer.from(rx).toString('hex'), Buffer.from(sent.subarray(0, 10)).toString('hex'));
  t.notOk(rx.includes(0x01) || rx.includes(0x04), 'never 0x01/0x04');

  // Device at 9600 -> host at 115200: each byte looks like 12.
  dev.send(Uint8Array.of(0x04, 0x0e, 0x05));
  await idle(clock);
  const hostRx = Uint8Array.from(host.flatMap((b) => [...b]));
  t.equal(hostRx.length, 36);
  t.notOk(hostRx.includes(0x01) || hostRx.includes(0x04));
  t.same(wire.counters(), { hostToDevice: 10, deviceToHost: 36, garbledToDevice: 10, garbledToHost: 36, droppedToHost: 0 });

  // Within tolerance: 115200 vs 117000 (1.6 %) is clean.
  host.length = 0;
  dev.setBaudRate(117000);
  dev.send(Uint8Array.of(0x04, 0x0e, 0x05));
  await idle(clock);
  t.same(Uint8Array.from(host.flatMap((b) => [...b])), Uint8Array.of(0x04, 0x0e, 0x05));
});

t.test('garbage is deterministic, at least one byte, and free of 0x01/0x04', async (t) => {
  const input = Uint8Array.of(0x01, 0xe0, 0xfc, 0x01, 0x00);
  const a = garbleBytes(input, 115200, 921600, 40);
  t.same(a, garbleBytes(input, 115200, 921600, 40), 'same input, same garbage');
  t.not(Buffer.from(a).toString('hex'), Buffer.from(garbleBytes(input, 115200, 460800, 40)).toString('hex'));
  const big = garbleBytes(bytesOf(256), 9600, 115200, 4096);
  t.notOk(big.includes(0x01) || big.includes(0x04));
  t.ok(new Set(big).size > 200, 'spread over the byte range');

  // One fast byte into a slow receiver still produces one (wrong) byte.
  const clock = new VirtualClock();
  const dev = new ScriptedDevice(9600);
  const wire = new VirtualUartWire({ clock, device: dev });
  wire.setHostBaud(921600);
  wire.hostWrite(Uint8Array.of(0x55));
  await idle(clock);
  t.equal(dev.receivedBytes().length, 1);
  t.equal(wire.counters().garbledToDevice, 1);
});

t.test('modem lines reach the device only on wiring that routes them', async (t) => {
  const clock = new VirtualClock();
  const routed = new ScriptedDevice(115200);
  const w1 = new VirtualUartWire({ clock, device: routed, modemLines: true });
  w1.setModemLines({ dtr: false, rts: true });
  t.same(routed.modemLineLog, [{ dtr: false, rts: true }]);

  const pty = new ScriptedDevice(115200);
  const w2 = new VirtualUartWire({ clock, device: pty });
  t.throws(() => w2.setModemLines({ dtr: true, rts: false }), TransportError);
  t.same(pty.modemLineLog, []);
});

t.test('bytes in flight to a host that closes are dropped; the device is told', async (t) => {
  const clock = new VirtualClock();
  const dev = new ScriptedDevice(115200);
  const wire = new VirtualUartWire({ clock, device: dev });
  const got: Uint8Array[] = [];
  wire.hostOpen(115200, (b) => got.push(b));
  dev.send(bytesOf(100));
  await clock.sleep(wireTimeMs(50, 115200) + 0.01);
  wire.hostClose();
  t.equal(dev.hostClosedCount, 1);
  wire.hostOpen(115200, (b) => got.push(b));
  await idle(clock);
  const n = got.reduce((s, b) => s + b.length, 0);
  t.ok(n >= 44 && n <= 55, `only the first ~half arrived (${n})`);
  t.equal(wire.counters().droppedToHost, 100 - n);
});

/** Collect a SerialPortStream's 'data' until `n` bytes arrived. */
function collect(port: SerialPortStream, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let have = 0;
    const on = (d: Buffer): void => {
      parts.push(d);
      have += d.length;
      if (have >= n) {
        port.off('data', on);
        resolve(Buffer.concat(parts));
      }
    };
    port.on('data', on);
  });
}

const openStream = (bus: VirtualSerialBus, path: string, baudRate: number): Promise<SerialPortStream> =>
  new Promise((resolve, reject) => {
    const port = new SerialPortStream({ binding: bus.binding, path, baudRate, autoOpen: false });
    port.open((err) => (err ? reject(err) : resolve(port)));
  });

const closeStream = (port: SerialPortStream): Promise<void> =>
  new Promise((resolve, reject) => port.close((err) => (err ? reject(err) : resolve())));

t.test('the real SerialPortStream runs on the virtual binding', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const dev = ScriptedDevice.echo(115200);
  const wire = bus.attach('sim:dut1', dev, { modemLines: true });
  bus.attach('meter', new ScriptedDevice(9600));

  t.same((await bus.binding.list()).map((p) => p.path), ['sim:dut1', 'sim:meter']);

  const port = await openStream(bus, 'sim:dut1', 115200);
  t.same(dev.modemLineLog, [{ dtr: true, rts: true }], 'open asserts DTR and RTS like a tty');
  const reply = collect(port, 5);
  const t0 = clock.now();
  port.write(Buffer.from('hello'));
  t.equal((await reply).toString(), 'hello');
  t.ok(close(clock.now() - t0, 2 * wireTimeMs(5, 115200)), 'there and back takes exactly the wire time');

  // Drain resolves when the last byte has left the adapter.
  const echoed = collect(port, 200);
  port.write(Buffer.from(bytesOf(200)));
  const drainStart = clock.now();
  await new Promise<void>((resolve, reject) => port.drain((err) => (err ? reject(err) : resolve())));
  t.ok(clock.now() - drainStart >= wireTimeMs(200, 115200) - 1e-9, 'drain waits for wire time');
  t.same(new Uint8Array(await echoed), bytesOf(200));

  // update(baud) changes what the host transmits at: the echo at 115200 now comes back garbled.
  await new Promise<void>((resolve, reject) => port.update({ baudRate: 460800 }, (err) => (err ? reject(err) : resolve())));
  t.equal(wire.hostBaud(), 460800);
  const garbled = collect(port, 1);
  port.write(Buffer.from('A'));
  const g = await garbled;
  t.not(g.toString(), 'A');
  t.ok(wire.counters().garbledToDevice > 0);

  await new Promise<void>((resolve, reject) => port.set({ dtr: false, rts: true }, (err) => (err ? reject(err) : resolve())));
  t.same(dev.modemLineLog.at(-1), { dtr: false, rts: true });
  const status = await new Promise<unknown>((resolve, reject) => port.get((err, s) => (err ? reject(err) : resolve(s))));
  t.same(status, { cts: false, dsr: false, dcd: false });

  await closeStream(port);
  t.same(dev.modemLineLog.at(-1), { dtr: false, rts: false }, 'hupcl drops DTR/RTS on close');
  t.equal(dev.hostClosedCount, 1);
  t.notOk(bus.isOpen('sim:dut1'));
});

t.test('open errors: unknown path, already open; reopening 50 times works', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const dev = ScriptedDevice.echo(115200);
  bus.attach('dut', dev);

  await t.rejects(openStream(bus, 'sim:nope', 115200), { message: /No such file or directory, cannot open sim:nope/ });
  const first = await openStream(bus, 'sim:dut', 115200);
  await t.rejects(openStream(bus, 'sim:dut', 115200), { message: /already open/ });
  await t.rejects(
    new Promise<void>((resolve, reject) => first.set({ dtr: true }, (err) => (err ? reject(err) : resolve()))),
    { message: /Inappropriate ioctl/ },
    'no modem lines on this wiring',
  );
  await closeStream(first);

  for (let i = 0; i < 50; i++) {
    const port = await openStream(bus, 'sim:dut', 115200);
    const reply = collect(port, 3);
    port.write(Buffer.from([i, 0x55, 0xaa]));
    t.same([...(await reply)], [i, 0x55, 0xaa]);
    await closeStream(port);
  }
  t.equal(dev.hostClosedCount, 51);
  t.equal(clock.pending(), 0, 'no timers leak');
});

t.test('unplug: the open stream disconnects, reopen fails until replug', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const dev = ScriptedDevice.echo(115200);
  bus.attach('dut', dev);
  const port = await openStream(bus, 'sim:dut', 115200);
  port.on('data', () => undefined);
  const closed = new Promise<Error | null>((resolve) => port.once('close', resolve));
  bus.unplug('sim:dut');
  const err = await closed;
  t.match(err, { disconnected: true, message: /unplugged/ });
  t.notOk(port.isOpen);
  t.same(await bus.binding.list(), []);
  await t.rejects(openStream(bus, 'sim:dut', 115200), { message: /No such file/ });
  bus.replug('sim:dut');
  const again = await openStream(bus, 'sim:dut', 115200);
  const reply = collect(again, 2);
  again.write(Buffer.from('ok'));
  t.equal((await reply).toString(), 'ok');
  await closeStream(again);

  // detach of an open port behaves like an unplug, then the path is gone for good.
  const third = await openStream(bus, 'sim:dut', 115200);
  third.on('data', () => undefined);
  const gone = new Promise<Error | null>((resolve) => third.once('close', resolve));
  bus.detach('dut');
  t.match(await gone, { disconnected: true });
  t.same(bus.paths(), []);
});
