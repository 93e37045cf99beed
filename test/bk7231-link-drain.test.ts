import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { CommandChannel } from '../rig/bk7231/command-channel.ts';
import { getBus } from '../rig/bk7231/link.ts';
import { NoReset } from '../rig/bk7231/reset.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';

/**
 * After the link, stale LinkCheck replies are drained only while one can still be on its way: the
 * ROM answers every LinkCheck, so when as many replies came as LinkChecks went out and nothing else
 * is buffered, the 10 ms quiet wait is skipped; when a poll timed out, its late reply is drained.
 */

const log = createLogger({}, 'silent');

async function rig(turnaroundMs?: number) {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  // Stays in its ROM, as behind `plugrig sim --pty` (a chip strapped into download mode).
  const chip = new VirtualBk7231({ seed: 5, linkWindowMs: Infinity, ...(turnaroundMs !== undefined ? { timing: { turnaroundMs } } : {}) });
  bus.attach('dut', chip, { modemLines: false });
  chip.powerOn();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  const channel = new CommandChannel(link, log);
  await clock.sleep(5); // the ROM listens 1 ms after power-on
  return { clock, chip, link, channel };
}

t.test('every LinkCheck answered: no quiet wait after the link', async (t) => {
  const r = await rig();
  t.teardown(() => r.link.close());
  const result = await getBus(r.channel, { reset: new NoReset(), log });
  t.equal(result.linkChecks, r.chip.counters.commands.LinkCheck, 'the chip got every LinkCheck');
  t.equal(result.drainedBytes, 0);
  // Two LinkCheck round trips at 115200 (13 bytes each, ~1.2 ms); the drain would add 10 ms of quiet.
  t.ok(result.elapsedMs < 5, `linked in ${result.elapsedMs.toFixed(2)} ms, no 10 ms drain`);
});

t.test('a poll that timed out: its late reply is drained, nothing stale is left for the next command', async (t) => {
  // A 5 ms turnaround: each reply arrives after the link loop's 4 ms poll gave up on it.
  const r = await rig(5);
  t.teardown(() => r.link.close());
  const result = await getBus(r.channel, { reset: new NoReset(), log });
  t.ok(result.linkChecks > 1, 'at least one poll timed out');
  t.equal(result.drainedBytes % 8, 0, 'whole LinkCheck replies drained');
  t.ok(result.drainedBytes >= 8, `the late reply was drained (${result.drainedBytes} bytes)`);
  await r.clock.sleep(50);
  t.ok(r.channel.inputEmpty, 'no stale reply arrived after the link');
});
