import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RealClock, VirtualClock } from '../rig/core/clock.ts';
import { LinkError } from '../rig/core/errors.ts';
import { createLogger } from '../rig/core/log.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { Bk7231Flasher } from '../rig/bk7231/flasher.ts';
import { AutoReset } from '../rig/bk7231/reset.ts';
import { CommandChannel } from '../rig/bk7231/command-channel.ts';
import { getBus } from '../rig/bk7231/link.ts';
import { openTarget } from '../cli/target.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { PtyBridge } from '../sim/serial/pty-bridge.ts';
import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';

/**
 * The default reset works on every port: DTR/RTS where the port has them; on a port without
 * (a pty, some adapters) one notice, then LinkCheck polling while someone else resets the chip,
 * and a timeout that names the three ways to do it.
 */

const log = createLogger({}, 'silent');

async function rig(modemLines: boolean) {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const chip = new VirtualBk7231({ seed: 3 });
  // modemLines false: the binding's modem-line ioctl fails, as on a pty.
  bus.attach('dut', chip, { modemLines });
  chip.powerOn();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  if (modemLines) await link.setModemLines({ dtr: false, rts: false });
  await clock.sleep(1000); // the link window has passed: the chip runs its application
  const notices: string[] = [];
  const reset = new AutoReset({ notice: (m) => notices.push(m) });
  const flasher = new Bk7231Flasher({ port: link, reset, log });
  return { clock, chip, link, reset, notices, flasher };
}

t.test('port with DTR/RTS: the automatic reset pulses them and links, silently', async (t) => {
  const r = await rig(true);
  t.teardown(() => r.link.close());
  t.equal(r.chip.state, 'app');
  const info = await r.flasher.connect();
  t.equal(info.chipName, 'BK7231N');
  t.same(r.notices, []);
  t.equal(r.reset.manual, false);
  t.match(r.reset.name, /bk7231tools/);
});

t.test('port without modem lines: one notice, polling continues while the operator power-cycles', async (t) => {
  const r = await rig(false);
  t.teardown(() => r.link.close());
  const resetAt = r.clock.now() + 4000;
  r.clock.at(resetAt, () => {
    r.chip.powerOff();
    r.chip.powerOn();
  });
  const info = await r.flasher.connect();
  t.equal(info.chipName, 'BK7231N', 'linked after the power cycle');
  t.ok(r.clock.now() >= resetAt, 'not before it');
  t.equal(r.notices.length, 1, 'said once');
  t.match(r.notices[0], /no DTR\/RTS/);
  t.equal(r.reset.manual, true);
  t.equal(r.chip.counters.links, 1);

  // A second session on the same port: no second notice, a reset by the jig's CEN line links.
  await r.flasher.reboot();
  await r.clock.sleep(1000);
  r.clock.at(r.clock.now() + 1500, () => {
    r.chip.setCen(false);
    r.clock.at(r.clock.now() + 50, () => r.chip.setCen(true));
  });
  await r.flasher.connect();
  t.equal(r.notices.length, 1, 'still one notice');
});

t.test('port without modem lines, chip already in its ROM: links at once, no prompt', async (t) => {
  const r = await rig(false);
  t.teardown(() => r.link.close());
  r.chip.powerOff();
  r.chip.powerOn(); // the ROM listens for 300 ms from now
  const info = await r.flasher.connect();
  t.equal(info.chipName, 'BK7231N');
  t.same(r.notices, [], 'nothing to ask the operator');
  t.equal(r.reset.manual, true);
});

t.test('port without modem lines and nobody resets: a timeout naming the three ways to reset', async (t) => {
  const r = await rig(false);
  t.teardown(() => r.link.close());
  const t0 = r.clock.now();
  const err = await r.flasher.connect().catch((e: unknown) => e);
  t.type(err, LinkError);
  const msg = (err as LinkError).message;
  t.match(msg, /CEN/, 'jig CEN line');
  t.match(msg, /DTR\/RTS/, 'DTR/RTS wiring');
  t.match(msg, /power-cycle/, 'power cycle');
  t.notMatch(msg, /cannot drive DTR\/RTS on/, 'not the raw modem-line error');
  t.ok(r.clock.now() - t0 >= 15000, 'polled for the whole link timeout, not three short windows');
  t.ok(((err as LinkError).context.linkChecks as number) > 1000, 'kept polling');
  t.equal(r.notices.length, 1);
});

t.test('CLI target on a pty: the default reset links with a virtual chip behind plugrig sim --pty', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-reset-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new RealClock();
  const chip = new VirtualBk7231({ seed: 4, linkWindowMs: Infinity });
  const linkPath = join(dir, 'bk');
  const bridge = await PtyBridge.start({ device: chip, link: linkPath, clock });
  t.teardown(() => bridge.close());
  chip.powerOn();
  const target = await openTarget({ port: linkPath });
  t.teardown(() => target.close());
  t.type(target.reset, AutoReset, 'auto is the default');
  // Only the link is under test here: identify at wall-clock pace over a pty is the CLI tests' job.
  const result = await getBus(new CommandChannel(target.link, log), { reset: target.reset, log });
  t.ok(result.linkChecks >= 1, 'linked: no "cannot drive DTR/RTS" failure');
  t.equal((target.reset as AutoReset).manual, true, 'the pty had no modem lines');
  t.equal(target.reset.name, 'auto: no modem lines, waiting for a manual reset');
});
