import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { Bk7231Flasher } from '../rig/bk7231/flasher.ts';
import { ModemLineReset } from '../rig/bk7231/reset.ts';
import { openLink } from '../rig/serial/open-link.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';
import { busEndpoints } from '../sim/serial/bus-endpoints.ts';

/**
 * A production batch on virtual time: 200 units, each a fresh protected chip with its own MAC,
 * linked by an RTS reset, unprotected, flashed (32 KiB) and verified by the chip's CRC. Every unit
 * must come out right; the wall-clock figure is printed, not asserted (benchmarks measure speed).
 */
t.test('200 virtual units flashed in one batch, each verified', async (t) => {
  const log = createLogger({}, 'silent');
  const image = new Uint8Array(32 * 1024).map((_, i) => (i * 31 + (i >> 8)) & 0xff);
  const macs = new Set<string>();
  const bad: number[] = [];
  let modelMs = 0;
  const wall0 = performance.now();
  for (let unit = 1; unit <= 200; unit++) {
    const clock = new VirtualClock();
    const bus = new VirtualSerialBus(clock);
    const chip = new VirtualBk7231({ seed: unit, initialSr: 0x4004 });
    bus.attach('sim:dut', chip, { modemLines: true });
    chip.powerOn();
    const link = await openLink('sim:dut', { baudRate: 115200, clock, endpoints: busEndpoints(bus) });
    const flasher = new Bk7231Flasher({ port: link, reset: ModemLineReset.bk7231tools(), log });
    const info = await flasher.connect();
    await flasher.unprotect();
    const r = await flasher.write(image, 0x11000);
    await link.close();
    macs.add(info.mac ?? '');
    modelMs += clock.now();
    if (r.sectorsWritten !== 8 || Buffer.compare(chip.flash.read(0x11000, image.length), image) !== 0) bad.push(unit);
  }
  t.same(bad, [], 'every unit holds exactly the image');
  t.equal(macs.size, 200, 'every unit reported its own MAC');
  t.comment(`200 units: ${(modelMs / 1000).toFixed(1)} s of modelled time in ${((performance.now() - wall0) / 1000).toFixed(1)} s wall`);
});
