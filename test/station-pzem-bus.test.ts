import t from 'tap';
import { SerialPortStream } from '@serialport/stream';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { loadJigFile, parseJig } from '../rig/jig/jig-config.ts';
import { PzemBus } from '../rig/meter/pzem-bus.ts';
import { Pzem004tMeter } from '../rig/meter/pzem004t.ts';
import type { Measurement } from '../rig/meter/reference-meter.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { crcOk, withCrc } from '../sim/pzem/modbus-crc.ts';
import { VirtualModbusBus } from '../sim/pzem/virtual-modbus-bus.ts';
import { VirtualPzem } from '../sim/pzem/virtual-pzem.ts';
import type { UartTx } from '../sim/serial/uart-device.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { openStation } from '../station/open-station.ts';

/**
 * Several PZEM-004T on one Modbus-RTU line (one serial port, distinct slave addresses): the virtual
 * line on its own (who answers, collisions), the host's PzemBus taking turns, and the station opening
 * one line for two slots' meters named on one port in the jig file.
 */

const A: Measurement = { volts: 231.4, amps: 0.433, watts: 100.2, wh: 12, hz: 50, pf: 1 };
const B: Measurement = { volts: 229.8, amps: 8.695, watts: 1998.1, wh: 345, hz: 49.9, pf: 1 };

function pair(clock: VirtualClock) {
  const one = new VirtualPzem({ source: () => A, ideal: true, address: 1 });
  const two = new VirtualPzem({ source: () => B, ideal: true, address: 2 });
  return { one, two, line: new VirtualModbusBus([one, two]) };
}

t.test('the virtual line: only the addressed slave answers; two answering at once garble the line', async (t) => {
  const clock = new VirtualClock();
  const { one, two, line } = pair(clock);
  const heard: number[] = [];
  const tx: UartTx = { send: (b) => void heard.push(...b) };
  line.connect(tx, clock);
  // Read 10 input registers of slave 2, fed one byte at a time.
  for (const b of withCrc([0x02, 0x04, 0x00, 0x00, 0x00, 0x0a])) line.receive(Uint8Array.of(b));
  await clock.sleep(100);
  t.equal(heard.length, 25, '25-byte reply (address, function, byte count 20, 10 registers, CRC)');
  t.equal(heard[0], 0x02, 'from slave 2');
  t.ok(crcOk(Uint8Array.from(heard)), 'CRC good');
  t.equal(((heard[3]! << 8) | heard[4]!) / 10, B.volts, 'slave 2\u2019s voltage register');
  t.same([one.requests, two.requests], [0, 1], 'slave 1 stayed silent');
  heard.length = 0;
  for (const b of withCrc([0xf8, 0x04, 0x00, 0x00, 0x00, 0x0a])) line.receive(Uint8Array.of(b));
  await clock.sleep(100);
  t.equal(line.collisions, 1, 'the general address reaches both: their replies collide');
  t.notOk(heard.length >= 4 && crcOk(Uint8Array.from(heard)), 'what the host hears fails its CRC');
});

t.test('two meters on one PzemBus, read concurrently: each gets its own slave, the line takes one transaction at a time', async (t) => {
  const clock = new VirtualClock();
  const { one, two, line } = pair(clock);
  const serial = new VirtualSerialBus(clock);
  // Every request must find the line quiet: a byte of a new request before the reply to the last one is a clash.
  let awaitingReply = false;
  let requestBytes = 0;
  let overlapped = 0;
  const connect = line.connect.bind(line);
  line.connect = (tx, c) =>
    connect(
      {
        send: (bytes) => {
          awaitingReply = false;
          tx.send(bytes);
        },
      },
      c,
    );
  const receive = line.receive.bind(line);
  line.receive = (bytes, at) => {
    if (awaitingReply) overlapped++;
    requestBytes += bytes.length;
    if (requestBytes >= 8) {
      requestBytes = 0;
      awaitingReply = true;
    }
    receive(bytes, at);
  };
  serial.attach('sim:modbus', line);
  const stream = new SerialPortStream({ binding: serial.binding, path: 'sim:modbus', baudRate: 9600, autoOpen: false });
  const bus = await PzemBus.open(stream);
  const m1 = Pzem004tMeter.onBus(bus, { clock, address: 1 });
  const m2 = Pzem004tMeter.onBus(bus, { clock, address: 2 });
  const reads = async (m: Pzem004tMeter): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < 15; i++) out.push((await m.read()).amps);
    return out;
  };
  const [a, b] = await Promise.all([reads(m1), reads(m2)]);
  t.same(a, Array(15).fill(A.amps), 'meter 1 always read slave 1');
  t.same(b, Array(15).fill(B.amps), 'meter 2 always read slave 2');
  t.same([one.requests, two.requests], [15, 15], 'each slave answered its 15');
  t.equal(line.collisions, 0, 'never two replies on the line');
  t.equal(overlapped, 0, 'no request went out while a reply was due');
  await m1.close();
  t.equal(stream.isOpen, true, 'the line stays open while a meter still uses it');
  await m2.close();
  t.equal(stream.isOpen, false, 'closed with its last meter');
});

t.test('jig file: PZEMs may share a port (one line) with distinct addresses, never with the general address', async (t) => {
  const raw = JSON.parse(JSON.stringify(loadJigFile(new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url).pathname))) as Record<string, any>;
  raw.meters = { p1: { kind: 'pzem004t', port: 'sim:modbus1', address: 1 }, p2: { kind: 'pzem004t', port: 'sim:modbus1', address: 2 }, wt: raw.meters.ref3, wt4: raw.meters.ref4 };
  raw.slots[0].meter = { ref: 'p1', channel: 1 };
  raw.slots[1].meter = { ref: 'p2', channel: 1 };
  raw.slots[2].meter = { ref: 'wt', channel: 1 };
  raw.slots[3].meter = { ref: 'wt4', channel: 1 };
  t.doesNotThrow(() => parseJig(raw), 'addresses 1 and 2 on sim:modbus1');
  const general = structuredClone(raw);
  delete general.meters.p2.address;
  t.throws(() => parseJig(general), { message: /meters\.p2\.port: meter p2 shares port sim:modbus1 with meter p1: PZEMs on one Modbus line each need their own "address"/ });
  const same = structuredClone(raw);
  same.meters.p2.address = 1;
  t.throws(() => parseJig(same), { message: /meter p2 on port sim:modbus1 has the same Modbus address 1 as meter p1/ });

  // The station opens the line once; slot 1's plug on mains, slot 2's off: each meter sees its own.
  const jig = parseJig(raw);
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock, http: false });
  t.teardown(() => sim.vj.dispose());
  const st = await openStation(jig, { clock, log: createLogger({}, 'silent'), endpoints: sim.endpoints });
  try {
    const s1 = st.slots.get(1)!;
    const s2 = st.slots.get(2)!;
    await s1.io.interlock.mainsOn();
    await clock.sleep(3000);
    const [r1, r2] = await Promise.all([s1.meter.read(), s2.meter.read()]);
    t.ok(r1.volts > 200, `slot 1's PZEM (address 1) sees its plug on mains: ${r1.volts} V`);
    t.ok(r2.volts < 1, `slot 2's PZEM (address 2) sees its plug off mains: ${r2.volts} V`);
    const p1 = sim.vj.meters.get('p1') as VirtualPzem;
    const p2 = sim.vj.meters.get('p2') as VirtualPzem;
    t.same([p1.requests, p2.requests], [1, 1], 'one request each, on the one line');
  } finally {
    await st.close();
  }
});
