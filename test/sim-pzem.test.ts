import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { hex } from '../rig/core/hex.ts';
import type { Measurement } from '../rig/meter/reference-meter.ts';
import { crc16Modbus, crcOk, withCrc } from '../sim/pzem/modbus-crc.ts';
import { VirtualPzem, type VirtualPzemOptions } from '../sim/pzem/virtual-pzem.ts';
import * as T from './fixtures/meter-traces.ts';

const ESPHOME: Measurement = { volts: 225.7, amps: 0.108, watts: 24.4, wh: 38, hz: 50, pf: 1 };

function rig(opts: Partial<VirtualPzemOptions> = {}) {
  const clock = new VirtualClock();
  let m: Measurement = { ...ESPHOME };
  const sent: { t: number; bytes: string }[] = [];
  const dev = new VirtualPzem({ source: () => m, ...opts });
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
