import t from 'tap';
import type { Clock } from '../rig/core/clock.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import { FlashError, ImageError } from '../rig/core/errors.ts';
import { createLogger } from '../rig/core/log.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { Bk7231Flasher, blankCrc, checkWriteRequest, type Bk7231FlasherOptions } from '../rig/bk7231/flasher.ts';
import { ModemLineReset } from '../rig/bk7231/reset.ts';
import { crc32Raw } from '../rig/bk7231/protocol/crc32.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import type { ModemLines, UartTx, VirtualUartDevice } from '../sim/serial/uart-device.ts';
import { VirtualBk7231, type VirtualBk7231Options } from '../sim/bk7231/virtual-bk7231.ts';

/**
 * The flasher's claims, each checked against a chip that misbehaves in one specific way: what it
 * reports as verified must be what the chip itself answered, and every fault must surface.
 */

const log = createLogger({}, 'silent');
const K4 = 0x1000;

function pattern(length: number, seed: number): Uint8Array {
  let x = seed * 2654435761 || 1;
  return Uint8Array.from({ length }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
}

/**
 * Sits between the wire and the chip: records every CheckCRC request and the CRC the chip sent
 * back, and can alter replies to chosen ranges (a CRC engine that lies).
 */
class CrcWatch implements VirtualUartDevice {
  readonly replies: Array<{ start: number; end: number; crc: number }> = [];
  /** Ranges "start-end" whose CRC reply gets this xor mask. */
  readonly lie = new Map<string, number>();
  #pending: Array<{ start: number; end: number }> = [];
  #rx: number[] = [];

  constructor(readonly chip: VirtualBk7231) {}

  baudRate(): number {
    return this.chip.baudRate();
  }

  connect(tx: UartTx, clock: Clock): void {
    this.chip.connect({ send: (bytes) => tx.send(this.#tamper(bytes)) }, clock);
  }

  receive(bytes: Uint8Array, atMs?: number): void {
    // Short CheckCRC request: 01 E0 FC 09 10 <start32> <end32>; only the last 12 bytes carry over.
    const r = [...this.#rx, ...bytes];
    let keepFrom = Math.max(0, r.length - 12);
    for (let i = 0; i + 13 <= r.length; i++) {
      if (r[i] === 0x01 && r[i + 1] === 0xe0 && r[i + 2] === 0xfc && r[i + 3] === 0x09 && r[i + 4] === 0x10) {
        const le = (o: number): number => (r[o]! | (r[o + 1]! << 8) | (r[o + 2]! << 16) | (r[o + 3]! << 24)) >>> 0;
        this.#pending.push({ start: le(i + 5), end: le(i + 9) });
        i += 12;
        keepFrom = Math.max(keepFrom, i + 1);
      }
    }
    this.#rx = r.slice(keepFrom);
    this.chip.receive(bytes, atMs);
  }

  modemLines(lines: ModemLines): void {
    this.chip.modemLines(lines);
  }

  #tamper(bytes: Uint8Array): Uint8Array {
    // CheckCRC reply: 04 0E 08 01 E0 FC 10 <crc32>; the chip sends each reply in one piece.
    if (bytes.length !== 11 || bytes[2] !== 0x08 || bytes[6] !== 0x10) return bytes;
    const req = this.#pending.shift();
    if (!req) return bytes;
    const out = bytes.slice();
    const view = new DataView(out.buffer);
    const mask = this.lie.get(`${req.start}-${req.end}`) ?? 0;
    view.setUint32(7, (view.getUint32(7, true) ^ mask) >>> 0, true);
    this.replies.push({ ...req, crc: view.getUint32(7, true) });
    return out;
  }

  /** The CRC the host received for start..start+length-1 most recently. */
  lastCrc(start: number, length: number): number | undefined {
    return this.replies.filter((r) => r.start === start && r.end === start + length - 1).at(-1)?.crc;
  }

  count(start: number, length: number): number {
    return this.replies.filter((r) => r.start === start && r.end === start + length - 1).length;
  }
}

async function rig(chipOpts: VirtualBk7231Options = {}, flasherOpts: Partial<Bk7231FlasherOptions> = {}) {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const chip = new VirtualBk7231({ initialSr: 0x4004, ...chipOpts });
  const watch = new CrcWatch(chip);
  bus.attach('dut', watch, { modemLines: true });
  chip.powerOn();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  const flasher = new Bk7231Flasher({ port: link, reset: ModemLineReset.bk7231tools(), log, ...flasherOpts });
  await flasher.connect();
  const cmd = (name: string): number => chip.counters.commands[name] ?? 0;
  return { clock, chip, watch, link, flasher, cmd };
}

t.test('WriteResult.crc is the CRC the chip answered for the whole range', async (t) => {
  const r = await rig({ initialImages: [{ address: 0x11000, data: pattern(0x20000, 5) }] });
  t.teardown(() => r.link.close());
  const image = pattern(0x18000 + 300, 6);
  const res = await r.flasher.write(image, 0x11000);
  t.equal(res.verifiedLength, 0x19000, 'a partial last sector is verified whole');
  t.equal(res.crc, r.watch.lastCrc(0x11000, 0x19000), 'the reply to CheckCRC 0x11000..0x29fff, not a local computation');
  t.equal(res.crc, crc32Raw(r.chip.flash.read(0x11000, 0x19000)));

  // Identical again with diff: nothing rewritten, and exactly one CheckCRC proves the region.
  const crcsBefore = r.watch.replies.length;
  const again = await r.flasher.write(image, 0x11000, { diff: true });
  t.equal(again.sectorsWritten + again.erasedBytes, 0);
  const regionChecks = r.watch.count(0x11000, 0x19000);
  t.equal(r.watch.replies.length - crcsBefore, 2, 'two CheckCRCs in all: the partial last sector read back, then the region');
  t.equal(regionChecks, 2, 'the region once per write');
  t.equal(again.crc, r.watch.lastCrc(0x11000, 0x19000));
});

t.test('a chip CRC that disagrees with the image is a failure, also when the diff finds nothing to rewrite', async (t) => {
  const image = pattern(0x20000, 8);
  const r = await rig({ initialImages: [{ address: 0x11000, data: image }] });
  t.teardown(() => r.link.close());
  // Every answer for the whole range is off by one bit; every block and sector answers truly.
  r.watch.lie.set(`${0x11000}-${0x11000 + image.length - 1}`, 1);
  const err = await r.flasher.write(image, 0x11000, { diff: true }).catch((e: unknown) => e);
  t.type(err, FlashError, 'refused, not reported as verified');
  t.match((err as FlashError).context, { phase: 'verify', chipCrc: (crc32Raw(image) ^ 1) >>> 0, expectedCrc: crc32Raw(image) });
  const full = await r.flasher.write(image, 0x11000).catch((e: unknown) => e);
  t.type(full, FlashError, 'a full write checks the same way');
});

t.test('diff where only the trailing partial 64K block differs', async (t) => {
  // 0x11000 + 0x31800 ends at 0x42800: the last 64K block (0x40000..) is partial, its last sector too.
  const image = pattern(0x31800, 9);
  const r = await rig({ initialImages: [{ address: 0x11000, data: image }] });
  t.teardown(() => r.link.close());
  for (const [what, at] of [['a whole sector of the partial block', 0x41100 - 0x11000], ['the partial last sector', 0x42100 - 0x11000]] as const) {
    const v2 = image.slice();
    v2[at] ^= 0xa5;
    const res = await r.flasher.write(v2, 0x11000, { diff: true });
    t.equal(res.sectorsWritten, 1, `${what}: one sector rewritten`);
    t.equal(res.sectorsUnchanged, 0x32 - 1);
    t.same(r.chip.flash.read(0x11000, v2.length), v2, `${what}: flash holds the new image`);
    t.equal(res.crc, r.watch.lastCrc(0x11000, 0x32000));
    image.set(v2);
  }
});

t.test('corruption in the first and in the last sector is found and repaired', async (t) => {
  const image = pattern(0x40000, 10);
  const first = 0x11000;
  const last = 0x11000 + image.length - K4;
  const r = await rig({ initialImages: [{ address: 0x11000, data: pattern(0x40000, 11) }], faults: { failPrograms: { [first]: 1, [last]: 1 } } });
  t.teardown(() => r.link.close());
  const res = await r.flasher.write(image, 0x11000);
  t.equal(res.sectorsRepaired, 2, 'both sectors repaired');
  t.same(r.chip.flash.read(0x11000, image.length), image);
  t.equal(res.crc, crc32Raw(image));
});

t.test('a sector that never programs: re-verified after each repair, then a typed failure', async (t) => {
  const image = pattern(0x8000, 12);
  const stuck = 0x13000;
  const r = await rig({ faults: { failPrograms: { [stuck]: Infinity } } }, { retries: { verify: 2, write: 3 } });
  t.teardown(() => r.link.close());
  const writesBefore = r.cmd('FlashWrite4K');
  const err = await r.flasher.write(image, 0x11000).catch((e: unknown) => e);
  t.type(err, FlashError);
  t.match((err as FlashError).context, { phase: 'verify', address: stuck, badSectors: [stuck] });
  t.equal(r.cmd('FlashWrite4K') - writesBefore, 8 + 2, 'the first write plus one rewrite per repair round, bounded');
  t.equal(r.watch.count(0x11000, 0x8000), 3, 'the whole range checked after the write and after each repair');
});

t.test('FlashRead4K replies garbled during a backup', async (t) => {
  const content = pattern(0x10000, 13);
  await t.test('a few garbled replies: re-read until the chip CRC agrees', async (t) => {
    const r = await rig({ initialImages: [{ address: 0x20000, data: content }], faults: { garbleReads: { 0x24000: 2, 0x2f000: 1 } } });
    t.teardown(() => r.link.close());
    const reads = r.cmd('FlashRead4K');
    t.same(await r.flasher.read(0x20000, 0x10000), content, 'the backup equals the flash');
    t.equal(r.cmd('FlashRead4K') - reads, 16 + 3, 'the garbled sectors were read again');
  });
  await t.test('always garbled: a typed read failure, no backup', async (t) => {
    const r = await rig({ initialImages: [{ address: 0x20000, data: content }], faults: { garbleReads: { 0x24000: Infinity } } });
    t.teardown(() => r.link.close());
    const err = await r.flasher.read(0x20000, 0x10000).catch((e: unknown) => e);
    t.type(err, FlashError);
    t.match((err as FlashError).context, { phase: 'read', address: 0x24000, badSectors: [0x24000] });
  });
});

t.test('write() on a protected chip without an explicit unprotect() call', async (t) => {
  const r = await rig({ initialSr: 0x4004, initialImages: [{ address: 0x11000, data: pattern(0x10000, 14) }] });
  t.teardown(() => r.link.close());
  t.equal(r.flasher.info?.protected, true);
  const image = pattern(0x10000, 15);
  const res = await r.flasher.write(image, 0x11000);
  t.equal(r.chip.flash.statusRegister & 0x407c, 0, 'unprotected by write()');
  t.same(r.chip.flash.read(0x11000, image.length), image, 'and really written');
  t.equal(res.crc, crc32Raw(image));
});

t.test('refused requests send nothing: no unprotect, no erase, no CRC', async (t) => {
  const r = await rig({ initialSr: 0x4004 });
  t.teardown(() => r.link.close());
  const sent = r.flasher.channel.commandsSent;
  await t.rejects(r.flasher.write(new Uint8Array(K4), 0x0), { code: 'E_FLASH', context: { region: 'bootloader' } });
  await t.rejects(r.flasher.write(new Uint8Array(0x3000), 0x1cf000), { code: 'E_FLASH', context: { address: 0x1d0000 } }, 'RF sector');
  await t.rejects(r.flasher.write(new Uint8Array(K4), 0x11100), { code: 'E_IMAGE', message: /not 4 KiB aligned/ });
  await t.rejects(r.flasher.write(new Uint8Array(2 * K4), 0x1ff000), { code: 'E_IMAGE', message: /exceeds/ });
  await t.rejects(r.flasher.write(new Uint8Array(0), 0x11000), ImageError);
  t.equal(r.flasher.channel.commandsSent, sent, 'not a byte sent for any refused request');
  t.equal(r.chip.flash.statusRegister, 0x4004, 'still protected');
  t.equal(r.cmd('FlashWriteSr'), 0);

  // The same checks work without a chip (the CLI runs them before opening the port).
  t.throws(() => checkWriteRequest(K4, 0x11100), { code: 'E_IMAGE' });
  t.throws(() => checkWriteRequest(K4, 0x0), { code: 'E_FLASH' });
  t.throws(() => checkWriteRequest(0x800, 0x1cf800), { code: 'E_IMAGE' }, 'unaligned even when short');
  t.throws(() => checkWriteRequest(0x1800, 0x1cf000), { code: 'E_FLASH' }, 'a partial sector that reaches into the RF sector');
  t.same(checkWriteRequest(K4, 0x0, { writeBootloader: true }).map((x) => x.name), ['RF calibration (MAC)']);
});

t.test('blank blocks are not erased; a chip holding an image is erased with 32K/64K erases', async (t) => {
  const image = pattern(0x30000, 16);
  await t.test('blank chip', async (t) => {
    const r = await rig();
    t.teardown(() => r.link.close());
    r.chip.flash.load(0x11000, new Uint8Array(0x30000).fill(0xff));
    const crcs = r.watch.replies.length;
    const res = await r.flasher.write(image, 0x11000);
    t.equal(r.cmd('FlashErase'), 0, 'nothing erased');
    t.equal(res.sectorsAlreadyBlank, 0x30);
    t.equal(res.erasedBytes, 0);
    t.same(r.chip.flash.read(0x11000, image.length), image);
    t.same(
      r.watch.replies.slice(crcs).filter((x) => x.end - x.start + 1 < image.length).map((x) => [x.start, x.end - x.start + 1, x.crc === blankCrc(K4)]),
      [0x11000, 0x20000, 0x30000, 0x40000].map((a) => [a, K4, true]),
      'one CheckCRC per block, of its first sector, each blank; the rest of a block is not read before the write',
    );
    t.equal(r.watch.count(0x11000, image.length), 1, 'the verify CRC is what proves the presumed sectors');
    t.equal(res.crc, r.watch.lastCrc(0x11000, image.length));
  });
  await t.test('a block whose first sector is blank but whose other sectors hold data', async (t) => {
    // 0x20000 blank, 0x21000..0x2ffff old firmware, 0x31000 old firmware too (first sector of 0x30000 holds data).
    const old = pattern(0x30000, 19);
    old.fill(0xff, 0x20000 - 0x11000, 0x21000 - 0x11000);
    const r = await rig({ initialImages: [{ address: 0x11000, data: old }] });
    t.teardown(() => r.link.close());
    const next = image.slice();
    next.fill(0xff, 0x2a000 - 0x11000, 0x2b000 - 0x11000); // a blank sector of the new image over old data
    const res = await r.flasher.write(next, 0x11000);
    // Buffer.compare, not t.same: a diff of 192 KiB would take longer than the test may.
    t.equal(Buffer.compare(r.chip.flash.read(0x11000, next.length), next), 0, 'the flash holds the new image');
    t.equal(res.crc, r.watch.lastCrc(0x11000, next.length), 'reported CRC = the chip\'s last answer for the range');
    t.equal(res.crc, crc32Raw(next));
    t.equal(res.sectorsRepaired, 15, 'the 15 presumed-blank sectors with data: found by the verify, erased, rewritten');
    t.equal(res.sectorsAlreadyBlank, 1, 'only 0x20000 really was blank');
    t.equal(res.sectorsSkippedBlank, 1);
  });
  await t.test('chip holding other firmware', async (t) => {
    const r = await rig({ initialImages: [{ address: 0x11000, data: pattern(0x30000, 17) }] });
    t.teardown(() => r.link.close());
    const sizes: number[] = [];
    const erase = r.chip.flash.erase.bind(r.chip.flash);
    r.chip.flash.erase = (a, unit) => {
      sizes.push(unit);
      return erase(a, unit);
    };
    const crcs = r.watch.replies.length;
    const res = await r.flasher.write(image, 0x11000);
    t.same(sizes, [...Array(7).fill(0x1000), 0x8000, 0x10000, 0x10000, 0x1000], '7x4K, 32K, 2x64K, 4K');
    t.same(
      r.watch.replies.slice(crcs, crcs + 4).map((x) => x.start),
      [0x11000, 0x20000, 0x30000, 0x40000],
      'one CheckCRC of the first sector per block told each holds data',
    );
    t.equal(res.erasedBytes, 0x30000);
    t.same(r.chip.flash.read(0x11000, image.length), image);
  });
  await t.test('a ROM that ignores 32K erases: detected once, 4K erases instead', async (t) => {
    const r = await rig({ initialImages: [{ address: 0x11000, data: pattern(0x30000, 18) }] });
    t.teardown(() => r.link.close());
    const erase = r.chip.flash.erase.bind(r.chip.flash);
    r.chip.flash.erase = (a, unit) => (unit === 0x8000 ? true : erase(a, unit));
    const res = await r.flasher.write(image, 0x11000);
    t.same(r.chip.flash.read(0x11000, image.length), image, 'still written right');
    t.equal(res.sectorsRepaired, 0, 'caught before writing, not by the verify');
  });
});
