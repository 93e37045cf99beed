import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { hex } from '../rig/core/hex.ts';
import type { Measurement } from '../rig/meter/reference-meter.ts';
import { crc16Modbus, crcOk, withCrc } from '../sim/pzem/modbus-crc.ts';
import { VirtualPzem, type VirtualPzemOptions } from '../sim/pzem/virtual-pzem.ts';
import * as T from './fixtures/meter-traces.ts';

const ESPHOME: Measurement = { volts: 225.7, amps: 0.108, watts: 24.4, wh: 38, hz: 50, pf: 1 };

/** The wire protocol against the reference's literal frames: an ideal instrument (errors: see below). */
function rig(opts: Partial<VirtualPzemOptions> = {}) {
  const clock = new VirtualClock();
  let m: Measurement = { ...ESPHOME };
  const sent: { t: number; bytes: string }[] = [];
  const dev = new VirtualPzem({ source: () => m, ideal: true, ...opts });
  dev.connect({ send: (b) => sent.push({ t: clock.now(), bytes: hex(b) }) }, clock);
  return {
    clock,
    dev,
    sent,
    set: (next: Partial<Measurement>) => (m = { ...m, ...next }),
    /** Feed bytes (all at once, or one per `gapMs`) and let the device answer. */
    async feed(bytes: Uint8Array, gapMs?: number): Promise<string[]> {
      const before = sent.length;
      if (gapMs === undefined) dev.receive(bytes);
      else
        for (const b of bytes) {
          dev.receive(Uint8Array.of(b));
          await clock.sleep(gapMs);
        }
      await clock.sleep(100);
      return sent.slice(before).map((s) => s.bytes);
    },
  };
}

t.test('CRC-16/MODBUS vectors', async (t) => {
  t.equal(crc16Modbus(new TextEncoder().encode('123456789')), 0x4b37, 'catalogue check value');
  t.equal(hex(withCrc([0xf8, 0x04, 0x00, 0x00, 0x00, 0x0a])), hex(T.PZEM_READ_INPUT_REQ_F8));
  t.equal(hex(withCrc([0xf8, 0x42])), hex(T.PZEM_RESET_ENERGY_F8));
  t.ok(crcOk(T.PZEM_READ_INPUT_RESP_ESPHOME), 'ESPHome example frame has a valid CRC');
  const bad = T.PZEM_READ_INPUT_RESP_ESPHOME.slice();
  bad[5]! ^= 0x01;
  t.notOk(crcOk(bad));
});

t.test('answers the ESPHome example byte-exact, in one chunk and one byte at a time', async (t) => {
  const r = rig();
  t.same(await r.feed(T.PZEM_READ_INPUT_REQ_01), [hex(T.PZEM_READ_INPUT_RESP_ESPHOME)]);
  // 1 ms between bytes is well under the 3.65 ms silence that ends a frame.
  t.same(await r.feed(T.PZEM_READ_INPUT_REQ_01, 1), [hex(T.PZEM_READ_INPUT_RESP_ESPHOME)]);
  t.same(await r.feed(T.PZEM_READ_VOLTAGE_REQ, 1), [hex(T.PZEM_READ_VOLTAGE_RESP)]);
});

t.test('replies only after the turnaround', async (t) => {
  const r = rig({ turnaroundMs: 30 });
  const t0 = r.clock.now();
  await r.feed(T.PZEM_READ_INPUT_REQ_01);
  t.equal(r.sent[0]!.t - t0, 30);
});

t.test('general address 0xF8 is answered; other addresses and broadcasts are not', async (t) => {
  const r = rig();
  const reply = await r.feed(T.PZEM_READ_INPUT_REQ_F8);
  t.equal(reply.length, 1);
  t.equal(reply[0]!.slice(0, 2), 'f8', 'default echoes the general address');
  const own = rig({ generalReplyAddress: 'own', address: 0x01 });
  t.equal((await own.feed(T.PZEM_READ_INPUT_REQ_F8))[0]!.slice(0, 2), '01');
  const other = rig({ address: 0x02 });
  t.same(await other.feed(T.PZEM_READ_INPUT_REQ_01), [], 'request for slave 0x01 ignored by 0x02');
  t.same(await r.feed(T.PZEM_SET_THRESHOLD_100_BROADCAST), [], 'broadcast never answered');
  t.equal(r.dev.alarmThresholdW, 100, 'broadcast write executed');
});

t.test('bad CRC is ignored, partial frames are dropped after the 3.5-character silence', async (t) => {
  const r = rig();
  const bad = T.PZEM_READ_INPUT_REQ_01.slice();
  bad[7]! ^= 0xff;
  t.same(await r.feed(bad), []);
  // Half a request, a 10 ms pause (> 3.65 ms), then a whole request: only the whole one is answered.
  r.dev.receive(T.PZEM_READ_INPUT_REQ_01.subarray(0, 4));
  await r.clock.sleep(10);
  t.same(await r.feed(T.PZEM_READ_INPUT_REQ_01), [hex(T.PZEM_READ_INPUT_RESP_ESPHOME)]);
  // A pause in the middle of a request splits it: neither half is a valid frame.
  r.dev.receive(T.PZEM_READ_INPUT_REQ_01.subarray(0, 3));
  await r.clock.sleep(5);
  t.same(await r.feed(T.PZEM_READ_INPUT_REQ_01.subarray(3)), []);
});

t.test('exceptions', async (t) => {
  const r = rig();
  t.same(await r.feed(T.PZEM_READ_INPUT_OUT_OF_RANGE_REQ), [hex(T.PZEM_EXCEPTION_ILLEGAL_ADDRESS_RESP)]);
  t.same(await r.feed(T.PZEM_UNKNOWN_FUNCTION_REQ), [hex(T.PZEM_UNKNOWN_FUNCTION_RESP)], 'unknown function ends by silence');
  t.same(await r.feed(withCrc([0x01, 0x06, 0x00, 0x02, 0x00, 0xf8])), [hex(withCrc([0x01, 0x86, 0x03]))], 'address 0xF8 not settable');
  t.same(await r.feed(withCrc([0x01, 0x03, 0x00, 0x00, 0x00, 0x01])), [hex(withCrc([0x01, 0x83, 0x02]))], 'holding 0x0000 does not exist');
});

t.test('holding registers, set address, reset energy echo', async (t) => {
  const r = rig();
  t.same(await r.feed(T.PZEM_READ_HOLDING_REQ), [hex(T.PZEM_READ_HOLDING_RESP)]);
  t.same(await r.feed(T.PZEM_SET_ADDRESS_05_REQ), [hex(T.PZEM_SET_ADDRESS_05_REQ)], 'write echoes');
  t.equal(r.dev.address, 5);
  t.same(await r.feed(T.PZEM_READ_INPUT_REQ_01), [], 'old address no longer answered');
  r.set({ wh: 1234.9 });
  t.same(await r.feed(T.PZEM_RESET_ENERGY_F8, 1), [hex(T.PZEM_RESET_ENERGY_F8)], 'reset echo, byte-wise');
  r.set({ wh: 1240.2 });
  const reply = await r.feed(withCrc([0x05, 0x04, 0x00, 0x05, 0x00, 0x02]));
  t.same(reply, [hex(withCrc([0x05, 0x04, 0x04, 0x00, 0x05, 0x00, 0x00]))], 'energy counts from the reset (5 Wh)');
});

t.test('quantisation and error model', async (t) => {
  const r = rig({ errorModel: { volts: { gain: 0.01 }, watts: { offset: 0.5 } } });
  r.set({ volts: 230, amps: 12.34567, watts: 70000.04, pf: 0.456, hz: 49.96, wh: 70000.9 });
  const [reply] = await r.feed(T.PZEM_READ_INPUT_REQ_01);
  const b = Buffer.from(reply!.replace(/ /g, ''), 'hex');
  const w = (i: number): number => b.readUInt16BE(3 + 2 * i);
  t.equal(w(0), 2323, '230 V * 1.01 = 232.3 V');
  t.equal(w(1) + w(2) * 65536, 12346, '12.346 A, low word first');
  t.equal(w(3) + w(4) * 65536, 700005, '70000.5 W spans both words');
  t.equal(w(5) + w(6) * 65536, 70000, 'energy truncated to whole Wh');
  t.equal(w(7), 500);
  t.equal(w(8), 46);
  t.equal(w(9), 0xffff, 'above the alarm threshold');
});

t.test('imperfect reference: a per-unit error drawn within ±0.5 % (PF ±1 %) from its serial, plus reading noise', async (t) => {
  const clock = new VirtualClock();
  const truth: Measurement = { volts: 231.2, amps: 4.3, watts: 990, pf: 0.996, hz: 50, wh: 0 };
  const gains: number[] = [];
  for (let i = 0; i < 60; i++) {
    const dev = new VirtualPzem({ source: () => truth, serial: `PZ${i}` });
    dev.connect({ send: () => {} }, clock);
    const e = dev.truth().errors;
    for (const q of ['volts', 'amps', 'watts', 'hz'] as const) t.ok(Math.abs(e[q]!.gain) <= 0.005, `PZ${i} ${q} gain within class`, { diagnostic: false });
    t.ok(Math.abs(e.pf!.gain) <= 0.01, `PZ${i} pf gain within ±1 %`, { diagnostic: false });
    gains.push(e.watts!.gain);
    for (let k = 0; k < 5; k++) {
      await clock.sleep(1000);
      const r = dev.reading();
      for (const q of ['volts', 'amps', 'watts'] as const) {
        t.ok(Math.abs(r[q] - truth[q]) <= 0.005 * truth[q] + 1e-12, `PZ${i} ${q} ${r[q]} within ±0.5 % of ${truth[q]}`, { diagnostic: false });
      }
    }
  }
  t.ok(Math.max(...gains.map(Math.abs)) > 0.003, 'errors use the class (not all tiny)');
  t.ok(new Set(gains).size === 60, 'every unit has its own error');
  const again = new VirtualPzem({ source: () => truth, serial: 'PZ7' });
  t.same(again.truth().errors, new VirtualPzem({ source: () => truth, serial: 'PZ7' }).truth().errors, 'same serial, same instrument');
  // Noise: successive updates differ; their mean converges on the systematic error.
  const dev = new VirtualPzem({ source: () => truth, serial: 'PZ7' });
  dev.connect({ send: () => {} }, clock);
  const seen = new Set<number>();
  let sum = 0;
  for (let k = 0; k < 400; k++) {
    await clock.sleep(1000);
    const w = dev.reading().watts;
    seen.add(w);
    sum += w;
  }
  t.ok(seen.size > 300, 'reading noise: a new value at every update');
  t.ok(Math.abs(sum / 400 - truth.watts - dev.truth().systematic('watts', truth.watts)) < 0.0005 * truth.watts, 'mean reading = truth + the systematic error');
});

t.test('registers refresh once per update interval with the mean over it (a change shows up late and blended)', async (t) => {
  const clock = new VirtualClock();
  let stepAt = Infinity;
  const before: Measurement = { volts: 230, amps: 0, watts: 0, pf: 0, hz: 50, wh: 0 };
  const after: Measurement = { volts: 228, amps: 4.4, watts: 1000, pf: 1, hz: 50, wh: 0 };
  const source = (at?: number): Measurement => ((at ?? clock.now()) >= stepAt ? after : before);
  const dev = new VirtualPzem({ source, serial: 'PZ-step', ideal: true, updateIntervalMs: 1000 });
  dev.connect({ send: () => {} }, clock);
  const { updateIntervalMs, phaseMs } = dev.truth();
  t.equal(updateIntervalMs, 1000);
  // Go to just after an update boundary, then switch the load on in the middle of the next interval.
  const boundary = (k: number): number => phaseMs + k * 1000;
  await clock.sleep(boundary(3) + 1 - clock.now());
  stepAt = boundary(3) + 500;
  await clock.sleep(700);
  t.equal(dev.reading().watts, 0, 'load on 200 ms ago: still the previous update');
  await clock.sleep(400); // past boundary 4: the interval [3, 4] was half off, half on
  const half = dev.reading();
  t.ok(Math.abs(half.watts - 500) < 1e-9, `the update blends the interval: ${half.watts} W`);
  t.ok(Math.abs(half.amps - 2.2) < 1e-9 && Math.abs(half.volts - 229) < 1e-9, 'V and I too');
  await clock.sleep(1000);
  t.ok(Math.abs(dev.reading().watts - 1000) < 1e-6, 'a whole interval on: 1000 W');
  t.equal(dev.reading().watts, dev.reading().watts, 'held between updates');
});
