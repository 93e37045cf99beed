import t from 'tap';
import { SerialPortStream } from '@serialport/stream';
import { VirtualClock } from '../rig/core/clock.ts';
import { InstrumentError } from '../rig/core/errors.ts';
import { Pzem004tMeter } from '../rig/meter/pzem004t.ts';
import { VirtualPzem } from '../sim/pzem/virtual-pzem.ts';
import { FaultyUart, type UartFaultOptions } from '../sim/serial/uart-faults.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';

/**
 * Reference-meter faults on the line (sim/serial/uart-faults.ts in front of the virtual PZEM-004T):
 * bit errors that break the Modbus CRC, garbage, replies that never come (meter timeouts). The
 * client's bounded retry must recover the transient ones and fail typed when the meter is gone.
 */
const MAINS = { volts: 230.1, amps: 0.109, watts: 25.1, wh: 12, hz: 50, pf: 1 };

async function meterBehind(faults: UartFaultOptions, attempts = 4) {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const pzem = new VirtualPzem({ source: () => MAINS, address: 0x01, ideal: true, updateIntervalMs: 0 });
  const line = new FaultyUart(pzem, faults);
  bus.attach('sim:pzem', line);
  const stream = new SerialPortStream({ binding: bus.binding, path: 'sim:pzem', baudRate: 9600, autoOpen: false });
  const meter = await Pzem004tMeter.open({ stream, clock, address: 1, retry: { attempts, backoffMs: 50 } });
  return { clock, line, meter };
}

t.test('Modbus CRC errors, garbage and lost replies: every read right, the faults really happened', async (t) => {
  const { line, meter } = await meterBehind({ seed: 3, byteErrorRate: 0.005, replyLossRate: 0.1, duplicateRate: 0.002, direction: 'to-host' }, 6);
  t.teardown(() => meter.close());
  for (let i = 0; i < 40; i++) {
    const r = await meter.read();
    if (Math.abs(r.volts - MAINS.volts) > 0.05 || Math.abs(r.watts - MAINS.watts) > 0.05) t.fail(`read ${i}: ${r.volts} V ${r.watts} W is not the meter's value`);
  }
  const c = line.counters;
  t.ok(c.flipped > 2 && c.repliesLost > 2, `faults injected: ${JSON.stringify(c)}`);
  t.pass('40 reads, each one the meter\'s value (no corrupted frame accepted)');
});

t.test('a meter that stops answering: InstrumentError after the bounded attempts, not a hang', async (t) => {
  const { clock, meter } = await meterBehind({ replyLossRate: 1 }, 3);
  t.teardown(() => meter.close());
  const t0 = clock.now();
  const e = await meter.read().catch((x: unknown) => x);
  t.type(e, InstrumentError);
  t.match((e as InstrumentError).context, { attempts: 3 }, 'says how often it tried');
  t.ok(clock.now() - t0 < 10_000, `gave up after ${clock.now() - t0} ms of model time`);
});

t.test('a meter answering only garbage: InstrumentError, never a reading', async (t) => {
  const { meter } = await meterBehind({ seed: 9, byteErrorRate: 1, direction: 'to-host' }, 3);
  t.teardown(() => meter.close());
  await t.rejects(meter.read(), InstrumentError);
});
