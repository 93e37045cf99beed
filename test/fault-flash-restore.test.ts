import t from 'tap';
import { blankCrc } from '../rig/bk7231/flasher.ts';
import { flashRegionOf } from '../rig/bk7231/outside-guard.ts';
import type { Bk7231Port } from '../rig/bk7231/port.ts';
import { EraseOpcode } from '../rig/bk7231/protocol/commands.ts';
import { flashErase } from '../rig/bk7231/protocol/frame.ts';
import type { FlashOperation } from '../sim/bk7231/virtual-bk7231.ts';
import { OFFSET, assertFlashed, flipAddresses, pattern, rig, withPort, type Rig } from './fixtures/fault-flash-rig.ts';

/**
 * Restores after a stray write (a flipped address bit on the line: the ROM protocol has no checksum),
 * checked against the SIMULATED flash: blank ranges are erased back, ranges with content come back
 * from a CRC-checked copy, every restore is proved by the chip's CRC, and a range with no copy fails
 * the write naming its region.
 */
const IMAGE = pattern(0x10000, 11);

/** Erase/program commands the chip ran outside [OFFSET, OFFSET+IMAGE.length). */
function watchOutside(r: Rig): FlashOperation[] {
  const ops: FlashOperation[] = [];
  r.chip.onFlashOperation((op) => {
    const a = op.address % r.chip.flash.size;
    if (a < OFFSET || a >= OFFSET + IMAGE.length) ops.push(op);
  });
  return ops;
}

t.test('regions are named by the BK7231N layout', async (t) => {
  const size = 0x200000;
  t.same(
    [0x2000, 0x11000, 0x129fff, 0x12a000, 0x1d0000, 0x1d1000, 0x1ecfff, 0x1ed000, 0x200000].map((a) => flashRegionOf(a, size)),
    ['bootloader', 'app', 'app', 'OTA/download', 'RF/MAC', 'config/KV', 'config/KV', 'Tuya storage', 'beyond flash'],
  );
});

t.test('a stray write into blank flash is erased back and proved blank by the chip', async (t) => {
  // 'blank' content: nothing above the image; 0x11000 with bit 20 flipped is 0x111000 (app partition, blank).
  const r = await rig({ content: 'blank' }, undefined, {}, flipAddresses([{ cmd: 'write', nth: 1, bit: 20 }]));
  t.teardown(() => r.link.close());
  const ops = watchOutside(r);
  await r.flasher.connect();
  const res = await r.flasher.write(IMAGE, OFFSET);
  t.ok(ops.some((o) => o.kind === 'program' && o.address === 0x111000), 'the stray write really landed at 0x111000');
  t.equal(res.outsideRestored.length, 1, 'one range restored');
  t.match(res.outsideRestored[0], { region: 'app', source: 'blank', sectors: [0x111000], crc: blankCrc(res.outsideRestored[0]!.length) });
  t.equal(r.flasher.stats.outsideRestores, 1);
  assertFlashed(t, r, IMAGE, 'stray write into blank flash');
});

t.test('a stray erase of the bootloader: fails naming the region without a copy, restored from a CRC-checked copy with one', async (t) => {
  // The first erase is at 0x11000; with bit 16 flipped it erases 0x1000, inside the bootloader.
  const flip = flipAddresses([{ cmd: 'erase', nth: 1, bit: 16 }]);
  const bare = await rig({}, undefined, {}, flip);
  const bareOps = watchOutside(bare);
  await bare.flasher.connect();
  await t.rejects(bare.flasher.write(IMAGE, OFFSET), { code: 'E_FLASH', message: /bootloader range 0x0\.\.0x10000 .* cannot be restored: no copy/, context: { region: 'bootloader', restorable: false } });
  t.ok(bareOps.some((o) => o.kind === 'erase' && o.address === 0x1000), 'the stray erase really hit 0x1000');
  t.not(Buffer.compare(bare.chip.flash.read(0x1000, 0x1000), bare.before.subarray(0x1000, 0x2000)), 0, 'the bootloader was hit: the failure is no false alarm');
  await bare.link.close();

  const r = await rig({}, undefined, {}, flip);
  t.teardown(() => r.link.close());
  await r.flasher.connect();
  const original = { offset: 0, data: await r.flasher.read(0, 0x11000) };
  const res = await r.flasher.write(IMAGE, OFFSET, { original });
  t.match(res.outsideRestored, [{ region: 'bootloader', start: 0, source: 'copy', sectors: [0x1000] }]);
  assertFlashed(t, r, IMAGE, 'stray erase of the bootloader, restored from the copy');
});

t.test('every restore is proved by the chip: a restore write that does not program is redone, one that never programs fails the write', async (t) => {
  const flip = flipAddresses([{ cmd: 'erase', nth: 1, bit: 16 }]);
  // failPrograms hits the restore's own write into 0x1000 (nothing else writes there).
  const once = await rig({ faults: { failPrograms: { 0x1000: 1 } } }, undefined, {}, flip);
  await once.flasher.connect();
  const original = { offset: 0, data: await once.flasher.read(0, 0x11000) };
  const res = await once.flasher.write(IMAGE, OFFSET, { original });
  t.match(res.outsideRestored, [{ region: 'bootloader', source: 'copy', sectors: [0x1000] }]);
  assertFlashed(t, once, IMAGE, 'restore write lost once');
  await once.link.close();

  const dead = await rig({ faults: { failPrograms: { 0x1000: Infinity } } }, undefined, {}, flip);
  t.teardown(() => dead.link.close());
  await dead.flasher.connect();
  const copy = { offset: 0, data: await dead.flasher.read(0, 0x11000) };
  await t.rejects(dead.flasher.write(IMAGE, OFFSET, { original: copy }), { code: 'E_FLASH', message: /bootloader range 0x0\.\.0x10000; restoring it from copy did not bring back its CRC/ });
});

t.test("a restore's own stray write into the image: the image is proved again and repaired", async (t) => {
  // Erase 1 (0x11000) strays to 0x1000; the restore's write of 0x1000 (the 17th Write4K) strays back to 0x11000.
  const r = await rig({}, undefined, {}, flipAddresses([{ cmd: 'erase', nth: 1, bit: 16 }, { cmd: 'write', nth: 17, bit: 16 }]));
  t.teardown(() => r.link.close());
  const ops: FlashOperation[] = [];
  r.chip.onFlashOperation((op) => ops.push(op));
  await r.flasher.connect();
  const original = { offset: 0, data: await r.flasher.read(0, 0x11000) };
  const res = await r.flasher.write(IMAGE, OFFSET, { original });
  const writes = ops.filter((o) => o.kind === 'program');
  t.equal(writes[16]?.address, 0x11000, 'the 17th write (the restore of 0x1000) landed in the image');
  t.ok(res.outsideRestored.length >= 1 && res.outsideRestored.every((x) => x.region === 'bootloader'), 'the bootloader restored');
  assertFlashed(t, r, IMAGE, 'restore strayed into the image');
});

t.test('a garbled CRC before writing is no change: two agreeing answers decide, nothing is restored', async (t) => {
  // The second CheckCRC from 0 (the first is connect's bootloader fingerprint) is the guard's of
  // 0x0..0xFFFF: it leaves asking from 0x1000, so its answer is wrong.
  const r = await rig({}, undefined, {}, flipAddresses([{ cmd: 'crc', nth: 2, bit: 12, start: 0 }]));
  t.teardown(() => r.link.close());
  const info = await r.flasher.connect();
  t.equal(info.bootloader, 'BK7231N 1.0.1', 'the fingerprint CRC was not the one flipped');
  const res = await r.flasher.write(IMAGE, OFFSET);
  t.same(res.outsideRestored, [], 'nothing restored');
  assertFlashed(t, r, IMAGE, 'garbled guard CRC');
});

/** Frames the host sent, in order: CheckCRC ranges, and the erases and writes between them. */
function recordFrames(log: Array<{ kind: 'crc'; start: number; end: number } | { kind: 'erase' | 'write' }>): (p: Bk7231Port) => Bk7231Port {
  return (p) =>
    withPort(p, {
      write: (bytes) => {
        const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        if (bytes.length === 13 && bytes[3] === 0x09 && bytes[4] === 0x10) log.push({ kind: 'crc', start: v.getUint32(5, true), end: v.getUint32(9, true) });
        else if (bytes[3] === 0xff && bytes[7] === 0x0f) log.push({ kind: 'erase' });
        else if (bytes[3] === 0xff && bytes[7] === 0x07) log.push({ kind: 'write' });
        return p.write(bytes);
      },
    });
}

/** The nth FlashErase reply reaches the host with bit `bit` of its echoed address flipped. */
function flipEraseEcho(nth: number, bit: number): (p: Bk7231Port) => Bk7231Port {
  // 04 0E FF 01 E0 FC F4 07 00 0F <status> <szcmd> <addr32 LE>: the address starts at byte 12.
  const header = [0x04, 0x0e, 0xff, 0x01, 0xe0, 0xfc, 0xf4, 0x07, 0x00, 0x0f];
  return (p) => {
    const last: number[] = [];
    let index = -1;
    let seen = 0;
    let flipAt = -1;
    return withPort(p, {
      read: async (n, ms) => {
        const got = (await p.read(n, ms)).slice();
        for (let i = 0; i < got.length; i++) {
          index++;
          if (index === flipAt) got[i]! ^= 1 << (bit & 7);
          last.push(got[i]!);
          if (last.length > header.length) last.shift();
          if (last.length === header.length && header.every((b, j) => last[j] === b) && ++seen === nth) flipAt = index + (12 + (bit >> 3)) - (header.length - 1);
        }
        return got;
      },
    });
  };
}

/** After the host's CheckCRC of [start, end], the line also carries `extra` to the chip (a command nobody sent). */
function injectAfterCrc(start: number, end: number, extra: Uint8Array): (p: Bk7231Port) => Bk7231Port {
  return (p) => {
    let done = false;
    return withPort(p, {
      write: async (bytes) => {
        await p.write(bytes);
        const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        if (!done && bytes.length === 13 && bytes[4] === 0x10 && v.getUint32(5, true) === start && v.getUint32(9, true) === end) {
          done = true;
          await p.write(extra);
        }
      },
    });
  };
}

const inProtected = (a: number, end: number): boolean => end <= 0x11000 || (a >= 0x1d0000 && end <= 0x1d1000);

t.test('a clean line: after the write only the bootloader and the RF/MAC sector are CRC-checked, the rest is proved by the echoes', async (t) => {
  const frames: Parameters<typeof recordFrames>[0] = [];
  const r = await rig({}, undefined, {}, recordFrames(frames));
  t.teardown(() => r.link.close());
  await r.flasher.connect();
  const res = await r.flasher.write(IMAGE, OFFSET);
  t.same(res.outsideCheck, { scope: 'protected', crcBytes: 0x11000 + 0x1000 }, 'bootloader (0x0..0x11000) and RF/MAC (4 KiB) only');
  const lastWrite = frames.findLastIndex((f) => f.kind !== 'crc');
  const after = frames.slice(lastWrite + 1).flatMap((f) => (f.kind === 'crc' ? [f] : []));
  t.same(after[0], { kind: 'crc', start: OFFSET, end: OFFSET + IMAGE.length - 1 }, 'first the image is verified');
  const outside = after.slice(1);
  t.ok(outside.length > 0 && outside.every((f) => inProtected(f.start, f.end + 1)), 'then only protected ranges are CRC-checked');
  t.equal(outside.reduce((n, f) => n + f.end + 1 - f.start, 0), 0x12000, 'each once');
  assertFlashed(t, r, IMAGE, 'clean line');
});

t.test('a stray erase whose reply echo is flipped back looks clean on the line: the bootloader CRC still catches it', async (t) => {
  // Erase 1 (0x11000) reaches the chip as 0x1000; its reply's echo reaches the host as 0x11000 again.
  const both = (p: Bk7231Port): Bk7231Port => flipEraseEcho(1, 16)(flipAddresses([{ cmd: 'erase', nth: 1, bit: 16 }])(p));
  const bare = await rig({}, undefined, {}, both);
  const ops = watchOutside(bare);
  await bare.flasher.connect();
  await t.rejects(bare.flasher.write(IMAGE, OFFSET), { code: 'E_FLASH', message: /bootloader range 0x0\.\.0x10000 .* cannot be restored/ });
  t.ok(ops.some((o) => o.kind === 'erase' && o.address === 0x1000), 'the stray erase really hit 0x1000');
  t.equal(bare.flasher.stats.commandRetries, 0, 'no command was re-sent: the line looked clean');
  await bare.link.close();

  const r = await rig({}, undefined, {}, both);
  t.teardown(() => r.link.close());
  await r.flasher.connect();
  const original = { offset: 0, data: await r.flasher.read(0, 0x11000) };
  const res = await r.flasher.write(IMAGE, OFFSET, { original });
  t.match(res.outsideRestored, [{ region: 'bootloader', source: 'copy', sectors: [0x1000] }]);
  t.equal(res.outsideCheck?.scope, 'all', 'after a restore every range is checked');
  assertFlashed(t, r, IMAGE, 'stray erase with its echo flipped back');
});

t.test('a command the chip ran that the flasher never sent: its reply is a skipped frame, so every range is CRC-checked', async (t) => {
  // Behind the image's verify CRC the line delivers a 4K erase of Tuya storage (which holds data).
  const phantom = injectAfterCrc(OFFSET, OFFSET + IMAGE.length - 1, flashErase(EraseOpcode.Sector4K, 0x1ed000).bytes);
  const bare = await rig({}, undefined, {}, phantom);
  await bare.flasher.connect();
  await t.rejects(bare.flasher.write(IMAGE, OFFSET), { code: 'E_FLASH', message: /Tuya storage range 0x1ed000\.\.0x1f0000 .* cannot be restored/ });
  await bare.link.close();

  const r = await rig({}, undefined, {}, phantom);
  t.teardown(() => r.link.close());
  await r.flasher.connect();
  const original = { offset: 0x1e0000, data: await r.flasher.read(0x1e0000, 0x20000) };
  const res = await r.flasher.write(IMAGE, OFFSET, { original });
  t.match(res.outsideRestored, [{ region: 'Tuya storage', source: 'copy', sectors: [0x1ed000] }]);
  assertFlashed(t, r, IMAGE, 'a command nobody sent');
});
