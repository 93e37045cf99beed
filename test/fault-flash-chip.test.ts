import t from 'tap';
import { FlashError, LinkError } from '../rig/core/errors.ts';
import { OFFSET, assertFlashed, pattern, rig, flipWriteAddress } from './fixtures/fault-flash-rig.ts';

/** Flash faults of the chip itself (dead sector, locked SR, unknown flash ID) and a flipped address bit; checked against the simulated flash. */
t.test('a sector that fails to program: transient repaired, permanent fails the write', async (t) => {
  const image = pattern(0x10000, 3);
  const once = await rig({ faults: { failPrograms: { [OFFSET + 0x5000]: 1 } } });
  await once.flasher.connect();
  const res = await once.flasher.write(image, OFFSET);
  t.equal(res.sectorsRepaired, 1);
  assertFlashed(t, once, image, 'transient program failure');
  await once.link.close();

  const dead = await rig({ faults: { failPrograms: { [OFFSET + 0x5000]: Infinity } } });
  t.teardown(() => dead.link.close());
  await dead.flasher.connect();
  await t.rejects(dead.flasher.write(image, OFFSET), { code: 'E_FLASH', message: /verify failed at 0x16000/ });
});

t.test('flash that stays protected and an unknown flash ID fail before any byte is written', async (t) => {
  const locked = await rig({ faults: { statusRegisterLocked: true } });
  await locked.flasher.connect();
  await t.rejects(locked.flasher.write(pattern(0x10000, 4), OFFSET), { code: 'E_FLASH', message: /status register still protects the flash/ });
  t.notOk(locked.chip.counters.commands['FlashErase'] || locked.chip.counters.commands['FlashWrite4K'], 'no erase, no write sent');
  await locked.link.close();

  const unknown = await rig({ flashId: [0x5e, 0x77, 0x15] });
  t.teardown(() => unknown.link.close());
  const info = await unknown.flasher.connect();
  t.equal(info.flashPart, null);
  await t.rejects(unknown.flasher.write(pattern(0x10000, 4), OFFSET), FlashError);
  t.notOk(unknown.chip.counters.commands['FlashErase'], 'no erase sent');
  t.equal(Buffer.compare(unknown.chip.flash.read(0, unknown.chip.flash.size), unknown.before), 0, 'flash untouched');
});

t.test('a flipped address bit: a stray write into the RF/MAC sector is restored, into the bootloader it fails the unit', async (t) => {
  // An image at 0x1C0000 (just below the RF sector): 0x1C0000 with bit 16 flipped is 0x1D0000.
  const image = pattern(0x10000, 5);
  const rf = await rig({}, undefined, {}, flipWriteAddress(1, 16));
  await rf.flasher.connect();
  await rf.flasher.write(image, 0x1c0000);
  t.equal(rf.flasher.stats.rfRestores, 1, 'RF sector restored');
  t.equal(rf.flasher.stats.outsideRestores, 1, 'counted among the outside restores');
  assertFlashed(t, rf, image, 'stray write into the RF sector', 0x1c0000);
  await rf.link.close();

  // 0x12000 with bit 16 flipped is 0x02000, inside the bootloader.
  const boot = await rig({}, undefined, {}, flipWriteAddress(2, 16));
  t.teardown(() => boot.link.close());
  await boot.flasher.connect();
  await t.rejects(boot.flasher.write(pattern(0x10000, 6), OFFSET), { code: 'E_FLASH', message: /flash outside the image changed: bootloader range 0x0\.\.0x10000 .*cannot be restored/ });
  t.not(Buffer.compare(boot.chip.flash.read(0x2000, 0x1000), boot.before.subarray(0x2000, 0x3000)), 0, 'the bootloader really was hit (the failure is not a false alarm)');
});
