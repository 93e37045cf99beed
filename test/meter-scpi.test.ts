import t from 'tap';
import { RealClock, VirtualClock } from '../rig/core/clock.ts';
import { ConfigError, InstrumentError, ProtocolError } from '../rig/core/errors.ts';
import { openMeter, parseScpiAddress } from '../rig/meter/open-meter.ts';
import type { Measurement } from '../rig/meter/reference-meter.ts';
import { encodeDefiniteLengthBlock, parseDefiniteLengthBlock, responseMessageLength } from '../rig/meter/scpi/ieee-block.ts';
import { parseIdn, parseScpiError, ScpiClient } from '../rig/meter/scpi/scpi-client.ts';
import { connectTcpScpi, StreamScpiTransport } from '../rig/meter/scpi/stream-transport.ts';
import { Wt310eMeter } from '../rig/meter/scpi/wt310e-meter.ts';
import { serveScpiTcp } from '../sim/scpi/scpi-tcp-server.ts';
import { VirtualWt310e } from '../sim/scpi/virtual-wt310e.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { SerialPortStream } from '@serialport/stream';
import type { UartTx, VirtualUartDevice } from '../sim/serial/uart-device.ts';
import { busEndpoints } from '../sim/serial/bus-endpoints.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
// The client's decoding is checked against exact values: the twins run `ideal` here (their in-class
// errors are tested in sim-scpi.test.ts).
const M: Measurement = { volts: 230.1, amps: 0.4348, watts: 95.0, pf: 0.95, hz: 50.01, wh: 1000 };

t.test('IEEE 488.2 definite-length blocks (pure)', async (t) => {
  const r = parseDefiniteLengthBlock(enc('#15hello,rest'));
  t.same(r && Array.from(r.data), Array.from(enc('hello')));
  t.equal(r?.end, 8);
  t.equal(parseDefiniteLengthBlock(enc('xx#210abc'), 2), undefined, 'incomplete: undefined');
  t.same(Array.from(parseDefiniteLengthBlock(enc('#210abcdefghij'))!.data), Array.from(enc('abcdefghij')));
  t.throws(() => parseDefiniteLengthBlock(enc('#0abc\n')), ProtocolError, 'indefinite length is refused');
  t.throws(() => parseDefiniteLengthBlock(enc('#2x1abc')), ProtocolError);
  t.throws(() => parseDefiniteLengthBlock(enc('abc')), ProtocolError);
  const data = Uint8Array.of(0x0a, 0x00, 0x23, 0x0a);
  const block = encodeDefiniteLengthBlock(data);
  t.same(Array.from(block), [...enc('#14'), ...data]);
  // A terminator inside block data does not end the message; fed one byte at a time.
  const msg = Uint8Array.from([...enc('1.0,'), ...block, ...enc(';2\n'), ...enc('next\n')]);
  const lengths: (number | undefined)[] = [];
  for (let i = 1; i <= msg.length; i++) lengths.push(responseMessageLength(msg.subarray(0, i)));
  const first = lengths.findIndex((l) => l !== undefined);
  t.equal(first + 1, 4 + block.length + 3, 'complete exactly at the first real LF');
  t.equal(lengths[first], 4 + block.length + 3);
  t.equal(responseMessageLength(enc('a#b\n')), 4, "'#' inside a word is not a block");
  t.same(parseScpiError('-113,"Undefined header"'), { code: -113, message: 'Undefined header' });
  t.same(parseIdn('YOKOGAWA,WT310E,C2QD12345,F1.03'), { manufacturer: 'YOKOGAWA', model: 'WT310E', serial: 'C2QD12345', firmware: 'F1.03' });
  t.same(parseScpiAddress('tcp://10.0.0.5:5025'), { kind: 'tcp', host: '10.0.0.5', port: 5025 });
  t.same(parseScpiAddress('usbtmc:0b21:0025:C2QD1'), { kind: 'usbtmc', vendorId: 0x0b21, productId: 0x25, serial: 'C2QD1' });
  t.same(parseScpiAddress('/dev/ttyUSB3@19200'), { kind: 'serial', path: '/dev/ttyUSB3', baudRate: 19200 });
  t.throws(() => parseScpiAddress('usbtmc:b21:25'), ConfigError);
});

t.test('WT310E over TCP on 127.0.0.1 (client vs virtual server)', async (t) => {
  let m = { ...M };
  const sim = new VirtualWt310e({ source: () => m, serial: 'C2QD12345', ideal: true });
  const server = await serveScpiTcp(sim);
  t.teardown(() => server.close());
  t.match(server.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  const clock = new RealClock();
  const meter = await openMeter({ kind: 'scpi', model: 'WT310E', address: server.address, calibrationDate: '2026-01-15' }, { clock });
  t.teardown(() => meter.close());
  const r = await meter.read();
  t.match(r, { volts: 230.1, amps: 0.4348, watts: 95, pf: 0.95, hz: 50.01, wh: 0 });
  t.same(r.ranges, { volts: 300, amps: 0.5, watts: 150 });
  t.equal(Number(meter.uncertainty('watts', 95).toFixed(6)), 0.17, '0.1 % of 95 W + 0.05 % of the 150 W range');
  t.same(await meter.identity(), { kind: 'scpi', manufacturer: 'YOKOGAWA', model: 'WT310E', firmware: 'F1.03', serial: 'C2QD12345', calibrationDate: '2026-01-15' });
  await meter.resetEnergy();
  m = { ...m, wh: 1003.25 };
  t.equal((await meter.read()).wh, 3.25, 'integrator counts from the reset');
  await meter.resetEnergy();
  t.equal((await meter.read()).wh, 0, 'second reset stops, resets and restarts');
});

t.test('SCPI client basics and the error queue over TCP', async (t) => {
  const sim = new VirtualWt310e({ source: () => M, ideal: true });
  const server = await serveScpiTcp(sim);
  t.teardown(() => server.close());
  const clock = new RealClock();
  const scpi = new ScpiClient(await connectTcpScpi(server.host, server.port, clock), { timeoutMs: 1000 });
  t.teardown(() => scpi.close());
  await scpi.reset();
  await scpi.clearStatus();
  await scpi.operationComplete();
  t.equal((await scpi.identify()).model, 'WT310E');
  await scpi.write(':NUMeric:BOGus 1;:INPut:VOLTage:RANGe 7V');
  t.same(await scpi.errors(), [
    { code: -113, message: 'Undefined header' },
    { code: -224, message: 'Illegal parameter value' },
  ]);
  t.same(await scpi.errors(), [], 'queue drained');
  await scpi.write(':NOPE');
  await t.rejects(scpi.assertNoErrors('config'), { name: 'InstrumentError', message: /-113,"Undefined header" during config/ });
  await scpi.write(':NUM:FORM FLO;:NUM:NORM:NUM 2;:NUM:NORM:ITEM1 U,1;ITEM2 P,1');
  const block = await scpi.queryBlock(':NUM:NORM:VAL?');
  const v = new DataView(block.buffer, block.byteOffset, block.length);
  t.same([block.length, v.getFloat32(0), v.getFloat32(4)], [8, Math.fround(230.1), Math.fround(95)], 'binary floats survive the line transport');
  await t.rejects(scpi.query(':NOPE?', 200), InstrumentError, 'unanswered query times out');
});

/** A serial instrument that answers every line with a fixed text that lacks the terminator. */
class MumblingDevice implements VirtualUartDevice {
  #tx?: UartTx;
  baudRate(): number {
    return 9600;
  }
  connect(tx: UartTx): void {
    this.#tx = tx;
  }
  receive(bytes: Uint8Array): void {
    if (bytes.includes(0x0a)) this.#tx?.send(enc('1.0E+0'));
  }
}

t.test('over a serial port on the virtual bus (VirtualClock), and timeouts with bytes seen', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  bus.attach('sim:wt', new VirtualWt310e({ source: () => M, baudRate: 19200, ideal: true }));
  bus.attach('sim:mumble', new MumblingDevice());
  const meter = await openMeter({ kind: 'scpi', model: 'WT310E', address: 'sim:wt@19200' }, { clock, endpoints: busEndpoints(bus) });
  t.ok(meter instanceof Wt310eMeter);
  const r = await meter.read();
  t.match(r, { volts: 230.1, watts: 95 });
  t.ok(r.timestamp > 0 && r.timestamp <= clock.now(), 'stamped on the virtual clock when the values arrived');
  await meter.close();
  // jig check reads each meter, closes it, then opens the station on the same port: close must release it.
  const again = await openMeter({ kind: 'scpi', model: 'WT310E', address: 'sim:wt@19200' }, { clock, endpoints: busEndpoints(bus) });
  t.match(await again.read(), { volts: 230.1 }, 'the serial port is free again once close() resolved');
  await again.close();

  const stream = new SerialPortStream({ binding: bus.binding, path: 'sim:mumble', baudRate: 9600, autoOpen: false });
  await new Promise<void>((res, rej) => stream.open((e) => (e ? rej(e) : res())));
  const scpi = new ScpiClient(new StreamScpiTransport(stream, clock, 'sim:mumble'), { timeoutMs: 500 });
  const err = (await scpi.query('*OPC?').catch((e: unknown) => e)) as InstrumentError;
  t.type(err, InstrumentError);
  t.equal(new TextDecoder().decode(err.context.bytesSeen), '1.0E+0');
  t.equal(err.context.step, '*OPC?');
  await scpi.close();

  await t.rejects(openMeter({ kind: 'scpi', model: 'GPM-8213', address: 'sim:wt' }, { clock, endpoints: busEndpoints(bus) }), ConfigError);
  await t.rejects(openMeter({ kind: 'pzem004t', port: 'sim:x', address: 1 }, { clock }), { name: 'TransportError', message: /meter port sim:x does not exist/ }, 'with only the native resolvers a sim: port is a missing device');
});
