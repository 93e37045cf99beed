import t from 'tap';
import { FlashError, LinkError } from '../rig/core/errors.ts';
import { OFFSET, assertFlashed, pattern, rig, flipAddresses, flipWriteAddress, withPort, type Rig } from './fixtures/fault-flash-rig.ts';

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
  const deadWrites = programs(dead);
  await dead.flasher.connect();
  await t.rejects(dead.flasher.write(image, OFFSET), { code: 'E_FLASH', message: /verify failed at 0x16000 \(1 sector\(s\)\) after 3 repairs/ });
  t.equal(deadWrites.filter((a) => a === OFFSET + 0x5000).length, 4, 'a dead sector (it reads back the same each time) gets the write and 3 repairs, no more');
});

/** Addresses of the program operations the chip runs from now on. */
function programs(r: Rig): number[] {
  const at: number[] = [];
  r.chip.onFlashOperation((op) => op.kind === 'program' && at.push(op.address));
  return at;
}

t.test('a sector whose data arrives garbled on the line each time is repaired until it is right (soak units 113, 946)', async (t) => {
  const image = pattern(0x10000, 3);
  const sector = OFFSET + 0x5000;
  // Its write and the next n-1 rewrites each arrive with one data bit flipped, each time elsewhere:
  // every verify reads a new wrong CRC for it (the line, not the cell).
  const garbled = (n: number) => flipAddresses(Array.from({ length: n }, (_, k) => ({ cmd: 'write' as const, start: sector, nth: k + 1, bit: k % 8, byte: 12 + 97 * (k + 1) })));
  const four = await rig({}, undefined, {}, garbled(4));
  const fourWrites = programs(four);
  await four.flasher.connect();
  const res = await four.flasher.write(image, OFFSET);
  t.equal(res.sectorsRepaired, 1);
  t.equal(fourWrites.filter((a) => a === sector).length, 5, 'the write and 4 repairs (3 were the limit before)');
  assertFlashed(t, four, image, 'garbled 4 times');
  await four.link.close();

  // The bound still holds: garbled 7 times in a row fails after 6 repairs.
  const seven = await rig({}, undefined, {}, garbled(7));
  t.teardown(() => seven.link.close());
  const sevenWrites = programs(seven);
  await seven.flasher.connect();
  await t.rejects(seven.flasher.write(image, OFFSET), { code: 'E_FLASH', message: /verify failed at 0x16000 \(1 sector\(s\)\) after 6 repairs/ });
  t.equal(sevenWrites.filter((a) => a === sector).length, 7, 'the write and 6 repairs');
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

t.test('a byte dropped from a Write4K address field programs the bootloader: reported, or restored from a copy (soak units 190, 728)', async (t) => {
  // 0x12000 leaves as 00 20 01 00; without its first byte the chip reads 20 01 00 <data>, an address
  // the 2 MiB flash aliases onto 0x120 (the soak's units: 0xfa00007 -> 0x7, 0x94000ff0 -> 0xff0).
  const dropFirstAddressByte = (p: Parameters<typeof withPort>[0]) => {
    let seen = 0;
    return withPort(p, {
      write: (bytes) => (bytes.length === 12 + 4096 && bytes[7] === 0x07 && bytes[8] === 0x00 && bytes[9] === 0x20 && bytes[10] === 0x01 && ++seen === 1 ? p.write(Uint8Array.from([...bytes.subarray(0, 8), ...bytes.subarray(9)])) : p.write(bytes)),
    });
  };
  const image = pattern(0x10000, 7);
  const bare = await rig({}, undefined, {}, dropFirstAddressByte);
  await bare.flasher.connect();
  await t.rejects(bare.flasher.write(image, OFFSET), { code: 'E_FLASH', message: /flash outside the image changed: bootloader range 0x0\.\.0x10000 .*cannot be restored/ });
  t.not(Buffer.compare(bare.chip.flash.read(0, 0x1000), bare.before.subarray(0, 0x1000)), 0, 'sector 0 really was programmed (not a false alarm)');
  await bare.link.close();

  // The same line fault with a copy of the bootloader range from before the write: restored, proved by CRC.
  const copied = await rig({}, undefined, {}, dropFirstAddressByte);
  t.teardown(() => copied.link.close());
  await copied.flasher.connect();
  const res = await copied.flasher.write(image, OFFSET, { original: { offset: 0, data: copied.before.slice(0, OFFSET) } });
  t.same(res.outsideRestored.map((r) => [r.region, r.source, r.sectors]), [['bootloader', 'copy', [0, 0x1000]]]);
  assertFlashed(t, copied, image, 'bootloader restored from the copy');
});
