import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { InstrumentError } from '../rig/core/errors.ts';
import { openMeter } from '../rig/meter/open-meter.ts';
import { Wt310eMeter } from '../rig/meter/scpi/wt310e-meter.ts';
import { VirtualWt310e } from '../sim/scpi/virtual-wt310e.ts';
import { busEndpoints } from '../sim/serial/bus-endpoints.ts';
import { FaultyUart } from '../sim/serial/uart-faults.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';

/**
 * SCPI faults at the WT310E driver: an error queue that fills up (SCPI: the newest entry becomes
 * -350 "Queue overflow", instruments.md) is read and cleared, and the failure names every entry;
 * a meter answering garbage fails typed, its reply escaped (no raw control bytes in the message).
 */
const M = { volts: 230.1, amps: 0.413, watts: 95, pf: 1, hz: 50, wh: 0 };

async function wt310e(o: { garbageSeed?: number } = {}) {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const sim = new VirtualWt310e({ source: () => M, baudRate: 19200, ideal: true });
  bus.attach('sim:wt', o.garbageSeed !== undefined ? new FaultyUart(sim, { seed: o.garbageSeed, garbageRate: 1 }) : sim);
  return { sim, open: () => openMeter({ kind: 'scpi', model: 'WT310E', address: 'sim:wt@19200' }, { clock, endpoints: busEndpoints(bus) }) };
}

/** Twelve errors: the queue (10 deep) keeps nine and replaces the tenth with -350. */
function floodQueue(sim: VirtualWt310e): void {
  for (let i = 0; i < 12; i++) sim.scpi.pushError(-222, `Data out of range; flood ${i}`);
}

t.test('a full error queue during a command: the failure names the errors and -350, the queue is cleared', async (t) => {
  const { sim, open } = await wt310e();
  const meter = (await open()) as Wt310eMeter;
  t.teardown(() => meter.close());
  floodQueue(sim);
  t.equal(sim.scpi.errorCount(), 10, 'the instrument holds 10 entries, the last one the overflow');
  const e = await meter.resetEnergy().catch((x: unknown) => x);
  t.type(e, InstrumentError);
  t.match((e as InstrumentError).message, /reported (-222,"Data out of range"; ){9}-350,"Queue overflow" \(the queue filled: later errors were lost\) during wt310e-reset-energy/);
  t.match((e as InstrumentError).context, { errors: [{ code: -222 }, { code: -222 }, { code: -222 }, { code: -222 }, { code: -222 }, { code: -222 }, { code: -222 }, { code: -222 }, { code: -222 }, { code: -350, message: 'Queue overflow' }] });
  t.equal(sim.scpi.errorCount(), 0, 'read and cleared (SYST:ERR? until 0)');
  await t.resolves(meter.resetEnergy(), 'the next command succeeds: nothing stale left');
});

t.test('a read whose reply is not the item list: the error queue says why, and is cleared', async (t) => {
  const { sim, open } = await wt310e();
  const meter = (await open()) as Wt310eMeter;
  t.teardown(() => meter.close());
  await meter.scpi.write(':NUMeric:NORMal:NUMber 3'); // someone at the front panel / another controller
  await meter.scpi.write(':NUMeric:NORMal:ITEM9 U,1'); // ...who also sent a command the meter refuses
  floodQueue(sim);
  const e = await meter.read().catch((x: unknown) => x);
  t.type(e, InstrumentError);
  t.match((e as InstrumentError).message, /^expected 6 values, got 3; error queue: .*-350,"Queue overflow"/);
  t.equal(sim.scpi.errorCount(), 0, 'the queue was drained');
});

t.test('a meter answering garbage: InstrumentError naming the reply, escaped', async (t) => {
  // Seed 13: the garbage holds a newline, so a whole (garbage) response arrives, full of control bytes.
  const e = await (await wt310e({ garbageSeed: 13 })).open().catch((x: unknown) => x);
  t.type(e, InstrumentError);
  const msg = (e as InstrumentError).message;
  t.match(msg, /^\*IDN\? reply ".*" does not have 4 fields \(garbage on the line/);
  t.notMatch(msg, /[\u0000-\u001f\u007f]/, 'no raw control byte in the message');
  // Seed 5: no newline in the garbage, so no response ever completes.
  const e2 = await (await wt310e({ garbageSeed: 5 })).open().catch((x: unknown) => x);
  t.type(e2, InstrumentError);
  t.match((e2 as InstrumentError).message, /sim:wt: no complete response within 2000 ms/);
});
