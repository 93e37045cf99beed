import t from 'tap';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { SerialPortStream } from '@serialport/stream';
import { autoDetect } from '@serialport/bindings-cpp';
import { RealClock, VirtualClock, type Clock } from '../rig/core/clock.ts';
import { InstrumentError } from '../rig/core/errors.ts';
import { hex } from '../rig/core/hex.ts';
import { Pzem004tMeter } from '../rig/meter/pzem004t.ts';
import type { Measurement } from '../rig/meter/reference-meter.ts';
import { backoffBefore, withRetry } from '../rig/meter/retry.ts';
import { VirtualPzem } from '../sim/pzem/virtual-pzem.ts';
import type { UartTx, VirtualUartDevice } from '../sim/serial/uart-device.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import * as T from './fixtures/meter-traces.ts';

// The client's decoding is checked against exact values: the twins run `ideal` here (their in-class
// errors are tested in sim-pzem.test.ts).
const ESPHOME: Measurement = { volts: 225.7, amps: 0.108, watts: 24.4, wh: 38, hz: 50, pf: 1 };

/** A device that answers the n-th complete request (by length) with replies[n] (raw bytes, may be empty). */
class ScriptedModbusDevice implements VirtualUartDevice {
  requests: string[] = [];
  #rx: number[] = [];
  #tx?: UartTx;
  #clock?: Clock;
  constructor(readonly requestLength: number, readonly replies: Uint8Array[]) {}
  baudRate(): number {
    return 9600;
  }
  connect(tx: UartTx, clock: Clock): void {
    this.#tx = tx;
    this.#clock = clock;
  }
  receive(bytes: Uint8Array): void {
    this.#rx.push(...bytes);
    while (this.#rx.length >= this.requestLength) {
      const req = this.#rx.splice(0, this.requestLength);
      this.requests.push(hex(Uint8Array.from(req)));
      const reply = this.replies[this.requests.length - 1];
      const clock = this.#clock!;
      if (reply?.length) clock.at(clock.now() + 10, () => this.#tx!.send(reply));
    }
  }
}

async function openOnBus(device: VirtualUartDevice, address: number) {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  bus.attach('sim:pzem', device);
  const stream = new SerialPortStream({ binding: bus.binding, path: 'sim:pzem', baudRate: 9600, autoOpen: false });
  const meter = await Pzem004tMeter.open({ stream, clock, address, retry: { attempts: 3, backoffMs: 50 } });
  return { clock, meter };
}

t.test('reads, scales and configures a virtual PZEM over the virtual serial bus', async (t) => {
  let m = { ...ESPHOME };
  const dev = new VirtualPzem({ source: () => m, address: 0x01, ideal: true });
  const { meter, clock } = await openOnBus(dev, 0xf8);
  t.teardown(() => meter.close());
  const r = await meter.read();
  t.match(r, { volts: 225.7, amps: 0.108, watts: 24.4, wh: 38, hz: 50, pf: 1 });
  t.equal(r.timestamp, clock.now());
  t.same(await meter.readRegisters(), { ...T.PZEM_ESPHOME_VALUES }, 'alarm flag decoded too');

  await meter.setAlarmThreshold(20);
  t.equal(dev.alarmThresholdW, 20);
  t.equal(await meter.readAlarmThreshold(), 20);
  t.equal((await meter.readRegisters()).alarm, true, '24.4 W is above 20 W');

  await meter.setAddress(0x07);
  t.equal(dev.address, 7);
  t.equal(meter.address, 7);
  t.equal(await meter.readAddress(), 7, 'reads back through the new address');

  m = { ...m, wh: 100.4 };
  await meter.resetEnergy();
  m = { ...m, wh: 112.7 };
  t.equal((await meter.read()).wh, 12, 'energy counted from the reset');

  await t.rejects(meter.setAddress(0xf8), InstrumentError, '0xF8 is not a storable address');
  t.equal(meter.uncertainty('watts', 100), 0.55, '0.5 % of 100 W plus half of 0.1 W');
  t.equal(meter.uncertainty('pf', 0.5), 0.01);
  t.match(await meter.identity(), { kind: 'pzem004t', model: 'PZEM-004T v3.0' });
});

t.test('timeouts, CRC errors and garbage become InstrumentErrors with the bytes seen; retries recover', async (t) => {
  await t.test('silence: retried, then a timeout error', async (t) => {
    const dev = new VirtualPzem({ source: () => ESPHOME, address: 0x02, ideal: true });
    const { meter } = await openOnBus(dev, 0x01);
    const err = await meter.read().catch((e: unknown) => e);
    t.type(err, InstrumentError);
    t.match((err as InstrumentError).message, /did not answer/);
    t.equal((err as InstrumentError).context.attempts, 3);
    t.same((err as InstrumentError).context.bytesSeen, new Uint8Array());
    await meter.close();
  });

  await t.test('bad CRC then good frame: second attempt succeeds', async (t) => {
    const bad = T.PZEM_READ_INPUT_RESP_ESPHOME.slice();
    bad[24]! ^= 0xff;
    const dev = new ScriptedModbusDevice(8, [bad, T.PZEM_READ_INPUT_RESP_ESPHOME]);
    const { meter } = await openOnBus(dev, 0x01);
    t.match(await meter.read(), { volts: 225.7 });
    t.same(dev.requests, [hex(T.PZEM_READ_INPUT_REQ_01), hex(T.PZEM_READ_INPUT_REQ_01)], 'byte-exact request, sent twice');
    await meter.close();
  });

  await t.test('persistent bad CRC: error carries the frame', async (t) => {
    const bad = T.PZEM_READ_INPUT_RESP_ESPHOME.slice();
    bad[24]! ^= 0xff;
    const dev = new ScriptedModbusDevice(8, [bad, bad, bad]);
    const { meter } = await openOnBus(dev, 0x01);
    const err = (await meter.read().catch((e: unknown) => e)) as InstrumentError;
    t.type(err, InstrumentError);
    t.match(err.message, /CRC/);
    t.equal(hex(err.context.bytesSeen!), hex(bad));
    await meter.close();
  });

  await t.test('leading garbage is skipped; garbage alone times out with it in context', async (t) => {
    const noise = Uint8Array.of(0x00, 0xff, 0x13);
    const dev = new ScriptedModbusDevice(8, [Uint8Array.from([...noise, ...T.PZEM_READ_INPUT_RESP_ESPHOME]), noise, noise, noise]);
    const { meter } = await openOnBus(dev, 0x01);
    t.match(await meter.read(), { watts: 24.4 });
    const err = (await meter.read().catch((e: unknown) => e)) as InstrumentError;
    t.type(err, InstrumentError);
    t.equal(hex(err.context.bytesSeen!), hex(noise));
    await meter.close();
  });

  await t.test('reset energy: 4-byte echo is success, 5-byte error reply is refusal (not retried)', async (t) => {
    const dev = new ScriptedModbusDevice(4, [T.PZEM_RESET_ENERGY_01, T.PZEM_RESET_ENERGY_ERROR_RESP]);
    const { meter } = await openOnBus(dev, 0x01);
    await meter.resetEnergy();
    const err = (await meter.resetEnergy().catch((e: unknown) => e)) as InstrumentError;
    t.type(err, InstrumentError);
    t.equal(err.context.modbusCode, 3);
    t.same(dev.requests, [hex(T.PZEM_RESET_ENERGY_01), hex(T.PZEM_RESET_ENERGY_01)], 'exactly two requests');
    await meter.close();
  });

  await t.test('exception reply to a read', async (t) => {
    const dev = new ScriptedModbusDevice(8, [T.PZEM_EXCEPTION_ILLEGAL_ADDRESS_RESP]);
    const { meter } = await openOnBus(dev, 0x01);
    const err = (await meter.read().catch((e: unknown) => e)) as InstrumentError;
    t.equal(err.context.modbusCode, 2);
    t.equal(hex(err.context.bytesSeen!), hex(T.PZEM_EXCEPTION_ILLEGAL_ADDRESS_RESP));
    await meter.close();
  });
});

t.test('retry policy', async (t) => {
  t.same([1, 2, 3, 4, 5].map((a) => backoffBefore({ attempts: 5, backoffMs: 10, factor: 3, maxBackoffMs: 100 }, a)), [0, 10, 30, 90, 100]);
  const clock = new VirtualClock();
  const calls: number[] = [];
  const v = await withRetry(clock, { attempts: 3, backoffMs: 10 }, async (a) => {
    calls.push(clock.now());
    if (a < 3) throw new InstrumentError('flaky');
    return 'ok';
  });
  t.equal(v, 'ok');
  t.same(calls, [0, 10, 30], 'waits 10 then 20 ms of clock time');
  await t.rejects(withRetry(clock, { attempts: 5, backoffMs: 1 }, async () => { calls.push(-1); throw new TypeError('bug'); }), TypeError);
  t.equal(calls.filter((c) => c === -1).length, 1, 'non-instrument errors are not retried');
});

t.test('runs over a real serial path (socat pty pair, native binding, real clock)', async (t) => {
  const dir = t.testdir({});
  const [hostPath, devPath] = [`${dir}/host`, `${dir}/dev`];
  const socat = execa('socat', [`pty,raw,echo=0,link=${hostPath}`, `pty,raw,echo=0,link=${devPath}`], { reject: false });
  t.teardown(() => { socat.kill(); });
  const clock = new RealClock();
  for (let i = 0; i < 100 && !(existsSync(hostPath) && existsSync(devPath)); i++) await clock.sleep(20);
  const binding = autoDetect();
  // Device end: the virtual PZEM, bridged to the pty.
  const devPort = new SerialPortStream({ binding, path: devPath, baudRate: 9600, autoOpen: false });
  await new Promise<void>((res, rej) => devPort.open((e) => (e ? rej(e) : res())));
  const dev = new VirtualPzem({ source: () => ESPHOME, address: 0x01, ideal: true });
  dev.connect({ send: (b) => devPort.write(Buffer.from(b)) }, clock);
  devPort.on('data', (b: Buffer) => dev.receive(b));
  t.teardown(() => new Promise<void>((res) => devPort.close(() => res())));

  const stream = new SerialPortStream({ binding, path: hostPath, baudRate: 9600, autoOpen: false });
  const meter = await Pzem004tMeter.open({ stream, clock, address: 0x01, timeoutMs: 1000 });
  t.match(await meter.read(), { volts: 225.7, amps: 0.108, watts: 24.4, wh: 38, hz: 50, pf: 1 });
  await meter.resetEnergy();
  await meter.close();
});
