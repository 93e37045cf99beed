import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { FaultyUart } from '../sim/serial/uart-faults.ts';
import type { UartTx, VirtualUartDevice } from '../sim/serial/uart-device.ts';

/** A device that only transmits when told to (the test plays its replies). */
class Talker implements VirtualUartDevice {
  tx: UartTx | undefined;
  baudRate(): number {
    return 115200;
  }
  connect(tx: UartTx): void {
    this.tx = tx;
  }
  receive(): void {}
}

t.test('delayed replies (delayRate) hold the line: later replies never overtake them', async (t) => {
  const clock = new VirtualClock();
  const dev = new Talker();
  const line = new FaultyUart(dev, { seed: 3, delayRate: 0.3, delayMs: 50 });
  const got: Array<{ n: number; at: number }> = [];
  line.connect({ send: (b) => void got.push({ n: b[0]!, at: clock.now() }) }, clock);
  for (let n = 0; n < 40; n++) {
    dev.tx!.send(Uint8Array.of(n));
    await clock.sleep(10);
  }
  await clock.sleep(1000);
  t.ok(line.counters.delayed > 3, `some replies were delayed (${line.counters.delayed})`);
  t.same(got.map((g) => g.n), [...Array(40).keys()], 'every reply arrives, in the order it was sent');
  t.ok(got.some((g, i) => g.at > i * 10), 'and the delayed ones (and those behind them) later than sent');
});
