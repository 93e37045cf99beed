import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { ConfigError, FlashError, LinkError, TransportError } from '../rig/core/errors.ts';
import { createLogger } from '../rig/core/log.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { VirtualBk7231, type VirtualBk7231Options } from '../sim/bk7231/virtual-bk7231.ts';
import { Bk7231Flasher, type Bk7231FlasherOptions, type FlashProgress } from '../rig/bk7231/flasher.ts';
import { FlashState } from '../cli/flash-state.ts';
import { ClassicBk7231Flasher } from '../scripts/bench-lib/classic-flasher.ts';
import { FlashPlanner, RF_CALIBRATION_REGION, BOOTLOADER_REGION } from '../rig/bk7231/planner.ts';
import { ModemLineReset, CallbackReset, NoReset, parseModemSequence, resetStrategyFromSpec } from '../rig/bk7231/reset.ts';
import { flashPartFor, findFlashPart } from '../rig/bk7231/flash-parts.ts';
import { macFromRfSector } from '../rig/bk7231/rf-sector.ts';
import { EraseOpcode } from '../rig/bk7231/protocol/commands.ts';
import { crc32Raw } from '../rig/bk7231/protocol/crc32.ts';
import type { Bk7231Port } from '../rig/bk7231/port.ts';

const log = createLogger({}, 'silent');
const K4 = 0x1000;

function pattern(length: number, seed: number): Uint8Array {
  let x = seed * 2654435761 || 1;
  return Uint8Array.from({ length }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
}

t.test('planner: cheapest 4K/32K/64K erase cover, blank sectors not written', async (t) => {
  const image = pattern(0x30000, 1);
  image.fill(0xff, 0x2000, 0x3000); // one blank sector (0x13000)
  const plan = new FlashPlanner().plan({ image, offset: 0x11000, flashSize: 0x200000, protectedRegions: [BOOTLOADER_REGION, RF_CALIBRATION_REGION] });
  t.same(
    plan.erases.map((e) => [e.op, e.address]),
    [
      // 0x10000 is the bootloader's: the first half is erased 4K by 4K, the second in one 32K erase.
      ...Array.from({ length: 7 }, (_, i) => [EraseOpcode.Sector4K, 0x11000 + i * K4]),
      [EraseOpcode.Block32K, 0x18000],
      [EraseOpcode.Block64K, 0x20000],
      [EraseOpcode.Block64K, 0x30000],
      [EraseOpcode.Sector4K, 0x40000],
    ],
  );
  t.equal(plan.writes.length, 0x30 - 1);
  t.same(plan.skippedBlank, [0x13000]);
  t.notOk(plan.writes.some((w) => w.address === 0x13000));
  t.same(plan.verify, [{ start: 0x11000, end: 0x41000 }]);

  const no32k = new FlashPlanner().plan({ image, offset: 0x11000, flashSize: 0x200000, erase32k: false });
  t.equal(no32k.erases.filter((e) => e.op === EraseOpcode.Sector4K).length, 15 + 1, 'without 32K erases: 4K up to the first whole block');

  // Chip already blank in 0x20000..0x30000 and at 0x11000: those need no erase.
  const blank = new Set([0x11000, ...Array.from({ length: 16 }, (_, i) => 0x20000 + i * K4)]);
  const onBlank = new FlashPlanner().plan({ image, offset: 0x11000, flashSize: 0x200000, blank });
  t.notOk(onBlank.erases.some((e) => e.address === 0x20000 || e.address === 0x11000), 'blank block and sector not erased');
  t.equal(onBlank.alreadyBlank.length, 17);
  t.equal(onBlank.writes.length, 0x30 - 1, 'still written');

  // A 32K erase may span a blank sector outside the list, never a sector with content.
  const k = (a: number): number[] => [a];
  const around = new FlashPlanner().plan({ image, offset: 0x11000, flashSize: 0x200000, sectors: [0x21000, 0x22000, 0x23000, 0x24000, 0x25000, 0x26000, 0x27000], blank: new Set(k(0x20000)) });
  t.same(around.erases.map((e) => [e.op, e.address]), [[EraseOpcode.Block32K, 0x20000]], '7 sectors + a blank one: one 32K erase');
  const fenced = new FlashPlanner().plan({ image, offset: 0x11000, flashSize: 0x200000, sectors: [0x21000, 0x22000, 0x23000, 0x24000, 0x25000, 0x26000, 0x27000] });
  t.equal(fenced.erases.length, 7, 'the unknown sector 0x20000 keeps them to 4K erases');

  const diffPlan = new FlashPlanner().plan({ image, offset: 0x11000, flashSize: 0x200000, sectors: [0x25000, 0x12000] });
  t.same(diffPlan.erases.map((e) => e.address), [0x12000, 0x25000], 'only the listed sectors');
  t.same(diffPlan.writes.map((w) => w.address), [0x12000, 0x25000]);

  t.throws(() => new FlashPlanner().plan({ image: new Uint8Array(K4), offset: 0x1d0000, flashSize: 0x200000, protectedRegions: [RF_CALIBRATION_REGION] }), FlashError);
  t.throws(() => new FlashPlanner().plan({ image: new Uint8Array(K4), offset: 0x11100, flashSize: 0x200000 }), { code: 'E_IMAGE' });
  t.throws(() => new FlashPlanner().plan({ image: new Uint8Array(K4), offset: 0x200000, flashSize: 0x200000 }), { code: 'E_IMAGE' });
});

t.test('reset sequences, flash parts, RF sector', async (t) => {
  t.same(parseModemSequence('R1|D1|W100|D0|W100|R0'), [
    { kind: 'R', level: true }, { kind: 'D', level: true }, { kind: 'W', ms: 100 }, { kind: 'D', level: false }, { kind: 'W', ms: 100 }, { kind: 'R', level: false },
  ]);
  t.throws(() => parseModemSequence('R1|X2'), ConfigError);
  t.throws(() => parseModemSequence('R2'), ConfigError);
  const clock = new VirtualClock();
  const seen: string[] = [];
  await ModemLineReset.hidDownload().reset({ clock, setModemLines: async (l) => void seen.push(`${clock.now()}:d${+l.dtr}r${+l.rts}`) });
  t.same(seen, ['0:d0r0', '0:d0r1', '200:d0r0'], 'hid_download_py: DTR=0, RTS=1, 200 ms, RTS=0');
  const cen: string[] = [];
  await new CallbackReset({ assert: async () => void cen.push(`a@${clock.now()}`), release: async () => void cen.push(`r@${clock.now()}`) }, 50).reset({ clock, setModemLines: async () => {} });
  t.same(cen, ['a@200', 'r@250']);
  t.equal(resetStrategyFromSpec({ method: 'none' }).name, 'none');
  t.throws(() => resetStrategyFromSpec({ method: 'jig-cen', pulseMs: 50 }), ConfigError);

  t.equal(flashPartFor({ manufacturer: 0xeb, type: 0x60, capacity: 0x15 }).protectMask, 0x407c);
  t.equal(findFlashPart({ manufacturer: 0x1c, type: 0x70, capacity: 0x15 })?.srBytes, 1);
  t.throws(() => flashPartFor({ manufacturer: 0x12, type: 0x34, capacity: 0x15 }), { code: 'E_FLASH', message: /12 34 15/ });

  const rf = new Uint8Array(K4).fill(0xff);
  rf.set([0x54, 0x4c, 0x56, 0x00]);
  rf.set([0x02, 0x11, 0x11, 0x11, 0x06, 0, 0, 0], 0x1c);
  rf.set([0xc8, 0x47, 0x8c, 1, 2, 3], 0x24);
  t.equal(macFromRfSector(rf), 'c8:47:8c:01:02:03');
  rf[0x1c] = 0x03;
  t.equal(macFromRfSector(rf), null, 'other tag at 0x1C');
});

interface Rig {
  clock: VirtualClock;
  chip: VirtualBk7231;
  link: SerialLink;
  flasher: Bk7231Flasher;
}

async function rig(chipOpts: VirtualBk7231Options = {}, flasherOpts: Partial<Bk7231FlasherOptions> = {}, wrap?: (l: SerialLink) => Bk7231Port): Promise<Rig> {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const chip = new VirtualBk7231({ initialSr: 0x4004, ...chipOpts });
  bus.attach('dut', chip, { modemLines: true });
  chip.powerOn();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  const flasher = new Bk7231Flasher({ port: wrap ? wrap(link) : link, reset: ModemLineReset.bk7231tools(), log, ...flasherOpts });
  return { clock, chip, link, flasher };
}

t.test('virtual chip: link via RTS, 2 Mbaud, identify, unprotect, write, diff, refuse, read, repair', async (t) => {
  // The chip holds other firmware where the image goes, so the write has to erase.
  const { chip, link, flasher, clock } = await rig({ initialImages: [{ address: 0x11000, data: pattern(0x70000, 99) }] });
  t.teardown(() => link.close());
  await clock.sleep(1000); // the app has booted: only a reset gets the ROM back

  const info = await flasher.connect();
  t.equal(info.baudRate, 2_000_000, 'switched to the default target rate');
  t.equal(link.baudRate(), 2_000_000);
  t.equal(info.chipId, 0x7231c);
  t.equal(info.chipName, 'BK7231N');
  t.equal(info.flashIdHex, 'EB 60 15');
  t.equal(info.flashPart?.name, 'TH25Q16HB');
  t.equal(info.flashSize, 0x200000);
  t.equal(info.statusRegister, 0x4004);
  t.equal(info.protected, true);
  t.equal(info.bootloaderCrc, ~crc32Raw(chip.flash.read(0, 0x101)) >>> 0, 'fingerprint covers 0..0x100 inclusive');
  t.equal(info.mac, Array.from(chip.mac, (b) => b.toString(16).padStart(2, '0')).join(':'));

  t.same(await flasher.unprotect(), { changed: true, before: 0x4004, after: 0x0000 });
  t.equal(chip.counters.commands['FlashWriteSr'], 1, 'one SR write');
  t.equal(chip.flash.statusRegister & 0x407c, 0);
  const srWrites = chip.counters.commands['FlashWriteSr'] ?? 0;
  t.same(await flasher.unprotect(), { changed: false, before: 0, after: 0 }, 'second call writes nothing');
  t.equal(chip.counters.commands['FlashWriteSr'] ?? 0, srWrites);

  // Full write: 0x11000 + 200 KiB + a partial sector, with one blank sector.
  const image = pattern(200 * 1024 + 100, 7);
  image.fill(0xff, 0x4000, 0x5000);
  const beyond = chip.flash.read(0x11000 + image.length, 0x100);
  const phases = new Set<string>();
  // What `plugrig flash` would tell the operator if interrupted the moment the chip got its first erase
  // and its first write: never "unchanged" once either has gone out.
  const state = new FlashState(0x11000, image.length);
  const toldAt: Record<string, string> = {};
  const stopListening = chip.onCommand((name, n) => {
    if ((name === 'FlashErase' || name === 'FlashWrite4K') && n === 1) toldAt[name] = state.describe();
  });
  state.stage = 'write';
  const onProgress = (p: FlashProgress): void => {
    phases.add(p.phase);
    state.progress(p);
  };
  const r1 = await flasher.write(image, 0x11000, { onProgress });
  stopListening();
  t.match(toldAt['FlashErase'], /is incomplete and will not boot/, 'interrupted at the first erase: the region is said to be incomplete');
  t.match(toldAt['FlashWrite4K'], /is incomplete and will not boot/, 'and at the first write');
  t.same(chip.flash.read(0x11000, image.length), image, 'flash holds the image');
  t.same(chip.flash.read(0x11000 + image.length, 0x100), beyond, 'bytes after a partial last sector preserved');
  t.equal(r1.sectorsSkippedBlank, 1);
  t.equal(r1.sectorsWritten, 51 - 1);
  t.equal(r1.sectorsRepaired, 0);
  t.ok(['erase', 'write', 'verify'].every((p) => phases.has(p)), 'progress phases reported');

  // Diff reflash: change two sectors; only those are erased and written.
  const v2 = image.slice();
  v2[0x100] ^= 0xff;
  v2[0x20005] ^= 0x5a;
  const erasesBefore = chip.counters.commands['FlashErase'] ?? 0;
  const writesBefore = chip.counters.commands['FlashWrite4K'] ?? 0;
  const r2 = await flasher.write(v2, 0x11000, { diff: true });
  t.equal(r2.sectorsWritten, 2);
  t.equal(r2.sectorsUnchanged, 51 - 2);
  t.equal((chip.counters.commands['FlashErase'] ?? 0) - erasesBefore, 2, 'two 4K erases');
  t.equal((chip.counters.commands['FlashWrite4K'] ?? 0) - writesBefore, 2);
  t.same(chip.flash.read(0x11000, v2.length), v2);
  const r3 = await flasher.write(v2, 0x11000, { diff: true });
  t.equal(r3.sectorsWritten + r3.erasedBytes, 0, 'identical image: nothing to do');

  // Protected regions.
  const boot = chip.flash.read(0, 0x11000);
  const rf = chip.flash.read(0x1d0000, K4);
  await t.rejects(flasher.write(new Uint8Array(K4), 0x0), { code: 'E_FLASH', context: { address: 0, region: 'bootloader' } });
  await t.rejects(flasher.write(new Uint8Array(0x3000), 0x1cf000), { code: 'E_FLASH', context: { address: 0x1d0000 } });
  await t.rejects(flasher.write(new Uint8Array(K4), 0x1d0000, { writeBootloader: true }), { code: 'E_FLASH' });
  t.same(chip.flash.read(0, 0x11000), boot, 'bootloader untouched');
  t.same(chip.flash.read(0x1d0000, K4), rf, 'RF sector untouched');
  const forcedBoot = boot.slice(0, K4);
  forcedBoot[10] ^= 1;
  await flasher.write(forcedBoot, 0, { writeBootloader: true });
  t.same(chip.flash.read(0, K4), forcedBoot, 'writeBootloader allows 0x0');
  await flasher.write(boot.subarray(0, K4), 0, { force: true });

  // Read back (unaligned start and length).
  const back = await flasher.read(0x11000 + 10, v2.length - 10);
  t.same(back, v2.subarray(10), 'backup equals what was written');

  // A sector that programs wrong once: found by CRC bisection and rewritten.
  const flash = chip.flash;
  const program = flash.program.bind(flash);
  let corrupted = 0;
  flash.program = (address: number, data: Uint8Array): boolean => {
    if (corrupted === 0 && address >= 0x58000 && address < 0x59000) {
      corrupted++;
      const bad = data.slice();
      bad[0] = (bad[0] ?? 0) & 0x0f;
      return program(address, bad);
    }
    return program(address, data);
  };
  const img3 = pattern(0x40000, 3);
  const r4 = await flasher.write(img3, 0x40000);
  t.equal(corrupted, 1);
  t.equal(r4.sectorsRepaired, 1, 'one sector repaired');
  t.same(chip.flash.read(0x40000, img3.length), img3);
  t.equal(r4.crc, crc32Raw(img3));

  const resetsBefore = chip.counters.resets;
  await flasher.reboot();
  t.equal(link.baudRate(), 115200);
  await clock.sleep(20);
  t.equal(chip.counters.resets, resetsBefore + 1, 'Reboot reset the chip');
  await clock.sleep(1000);
  t.equal(chip.state, 'app', 'no LinkCheck: the chip boots the application');
});

t.test('baud fallback when the adapter cannot do the target rate', async (t) => {
  const wrap = (l: SerialLink): Bk7231Port => ({
    clock: l.clock,
    write: (b) => l.write(b),
    read: (n, ms) => l.read(n, ms),
    available: () => l.available(),
    discardInput: () => l.discardInput(),
    setModemLines: (x) => l.setModemLines(x),
    setBaudRate: async (b) => {
      if (b > 1_000_000) throw new TransportError(`adapter cannot do ${b}`, { baudRate: b });
      await l.setBaudRate(b);
    },
  });
  const { link, flasher } = await rig({}, {}, wrap);
  t.teardown(() => link.close());
  const info = await flasher.connect();
  t.equal(info.baudRate, 921_600, '2M and 1.5M refused, 921600 works');
  t.equal(info.chipId, 0x7231c, 'commands work at the fallback rate');
});

t.test('link failures are typed and carry attempts', async (t) => {
  const { link, flasher, clock } = await rig({ cenWiring: 'none' }, { reset: new NoReset(), link: { resetAttempts: 2, windowMs: 200, timeoutMs: 2000 } });
  t.teardown(() => link.close());
  await clock.sleep(1000);
  const err = await flasher.connect().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof LinkError);
  t.match((err as LinkError).context, { phase: 'link', attempts: 2, reset: 'none' });
  t.ok(((err as LinkError).context.linkChecks as number) > 10);
  await t.rejects(flasher.write(new Uint8Array(K4), 0x11000), LinkError, 'not connected');
});

t.test('classic baseline writes the same bytes with per-sector CRC', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const chip = new VirtualBk7231({ initialSr: 0x4004 });
  bus.attach('dut', chip, { modemLines: true });
  chip.powerOn();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  t.teardown(() => link.close());
  const classic = new ClassicBk7231Flasher({ port: link, reset: ModemLineReset.bk7231tools(), log });
  const info = await classic.connect();
  t.equal(info.baudRate, 115200);
  const image = pattern(5 * K4 + 10, 11);
  await classic.write(image, 0x11000);
  t.same(chip.flash.read(0x11000, image.length), image);
  t.equal(chip.counters.commands['CheckCrc'], 6 + 1, 'one CRC per sector plus the fingerprint');
});
