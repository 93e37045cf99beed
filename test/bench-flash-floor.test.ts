import t from 'tap';
import { makeBenchImage } from '../firmware/synthetic.ts';
import { EraseOpcode } from '../rig/bk7231/protocol/commands.ts';
import * as F from '../rig/bk7231/protocol/frame.ts';
import { ModemLineReset } from '../rig/bk7231/reset.ts';
import { FLASH_PARTS } from '../sim/bk7231/flash-parts.ts';
import { longReply, shortReply } from '../sim/bk7231/rom-replies.ts';
import { DEFAULT_CHIP_TIMING } from '../sim/bk7231/timing.ts';
import { cenPulseMs, classicFloor, exchangeBytes, getBusFloorMs, replyBytes, writeFloor } from '../scripts/bench-lib/floor.ts';
import { percentile, summarize } from '../scripts/bench-lib/stats.ts';

const TH = FLASH_PARTS.TH25Q16HB.timing;
const K4 = 0x1000;
const close = (a: number, b: number): boolean => Math.abs(a - b) < 1e-9;

t.test('reply sizes match what the virtual chip sends', async (t) => {
  t.equal(replyBytes('long', 5), longReply(0x0f, 0, new Uint8Array(5)).length, 'FlashErase reply: 11 + 5');
  t.equal(replyBytes('long', 4), longReply(0x07, 0, new Uint8Array(4)).length, 'FlashWrite4K reply: 11 + 4');
  t.equal(replyBytes('short', 4), shortReply(0x10, new Uint8Array(4)).length, 'CheckCRC reply: 7 + 4');
  t.equal(exchangeBytes(F.flashErase(EraseOpcode.Block64K, 0x20000)), 13 + 16);
  t.equal(exchangeBytes(F.flashWrite4K(0x11000, new Uint8Array(K4))), 4108 + 15);
  t.equal(exchangeBytes(F.checkCrc(0x11000, 0x110fff)), 13 + 11);
  t.equal(exchangeBytes(F.linkCheck()), 5 + 8);
  t.equal(exchangeBytes(F.reboot()), 6, 'no reply: request only');
});

const MBAUD = 1_000_000; // 10 µs per byte: wire ms = bytes / 100
const CHIP = { crcBytesPerSec: 4e6 };
/** A chip whose flash is `fill` everywhere, with `patches` (address -> 4K sector content) on top. */
function chipWith(fill: number, patches: Record<number, Uint8Array> = {}) {
  const mem = new Uint8Array(0x200000).fill(fill);
  for (const [a, d] of Object.entries(patches)) mem.set(d, Number(a));
  return (address: number, length: number): Uint8Array => mem.slice(address, address + length);
}
const data = (n: number, v = 0x5a): Uint8Array => new Uint8Array(n).fill(v);
const floorOf = (offset: number, image: Uint8Array, current: (a: number, l: number) => Uint8Array, baud = MBAUD) =>
  writeFloor({ offset, image, current, baud, chip: CHIP, flash: TH });

t.test('floor by hand: one 64K block holding other data (the factory case) -> one 64K erase', async (t) => {
  const f = floorOf(0x20000, data(0x10000), chipWith(0x00));
  t.same(f.erases, { '4K': 0, '32K': 0, '64K': 1 }, '2 x 32K (240 ms) and 16 x 4K (720 ms) both lose to 150 ms');
  t.equal(f.wireBytes, 29 + 16 * 4123 + 24);
  t.ok(close(f.wireMs, 660.21), `wire ${f.wireMs}`);
  t.equal(f.eraseMs, 150);
  t.equal(f.lastPageMs, 0.4);
  t.ok(close(f.crcMs, 16.384));
  t.ok(close(f.totalMs, 660.21 + 150 + 0.4 + 16.384));
  t.equal(f.commands, 1 + 16 + 1);
});

t.test('floor by hand: a blank chip needs no erase at all', async (t) => {
  const f = floorOf(0x20000, data(0x10000), chipWith(0xff));
  t.same(f.erases, { '4K': 0, '32K': 0, '64K': 0 });
  t.equal(f.eraseMs, 0);
  t.equal(f.wireBytes, 16 * 4123 + 24);
  t.ok(close(f.totalMs, 659.92 + 0.4 + 16.384));
});

t.test('floor by hand: programming alone where no bit must rise; erase without write for blank data', async (t) => {
  // 0xFE & 0x5A = 0x5A: programmable in place. 0x00 under an all-0xFF sector: erase, nothing to write.
  const image = data(0x2000);
  image.fill(0xff, 0x1000);
  const f = floorOf(0x20000, image, chipWith(0xff, { 0x20000: data(0x1000, 0xfe), 0x21000: data(0x1000, 0x00) }));
  t.same(f.erases, { '4K': 1, '32K': 0, '64K': 0 });
  t.equal(f.sectorsWritten, 1);
  t.equal(f.wireBytes, 29 + 4123 + 24);
  t.equal(f.eraseMs, 45);
});

t.test('floor by hand: data outside the region fences larger erases; blank outside does not', async (t) => {
  // 0x11000..0x20000: 15 sectors of block 0x10000, whose first sector (the bootloader's) holds data.
  const fenced = floorOf(0x11000, data(0xf000), chipWith(0x00));
  t.same(fenced.erases, { '4K': 7, '32K': 1, '64K': 0 }, '7 x 4K for the fenced half, one 32K for the other');
  t.equal(fenced.eraseMs, 7 * 45 + 120);
  t.equal(fenced.wireBytes, 8 * 29 + 15 * 4123 + 24);
  t.ok(close(fenced.wireMs, 621.01));
  const open = floorOf(0x11000, data(0xf000), chipWith(0x00, { 0x10000: data(0x1000, 0xff) }));
  t.same(open.erases, { '4K': 0, '32K': 0, '64K': 1 }, 'a blank neighbour may be erased with the rest');
});

t.test('floor by hand: a correct sector inside a block is rewritten only when that is cheaper', async (t) => {
  const image = data(0x10000);
  const current = chipWith(0x00, { 0x2f000: image.slice(0xf000) }); // the last sector already right
  // 1 Mbaud: a rewrite costs 41.23 ms; 64K + rewrite (191.23) beats 32K + 7 x 4K (435).
  const fast = floorOf(0x20000, image, current);
  t.same(fast.erases, { '4K': 0, '32K': 0, '64K': 1 });
  t.equal(fast.sectorsRewritten, 1);
  t.equal(fast.sectorsWritten, 16);
  // 115200: a rewrite costs 357.9 ms; sparing the sector (32K + 7 x 4K = 435 ms) is cheaper.
  const slow = floorOf(0x20000, image, current, 115_200);
  t.same(slow.erases, { '4K': 7, '32K': 1, '64K': 0 });
  t.equal(slow.sectorsRewritten, 0);
  t.equal(slow.sectorsWritten, 15);
  t.equal(slow.eraseMs, 120 + 7 * 45);
});

t.test('floor by hand: identical content costs one CRC', async (t) => {
  const image = data(0x10000, 0x33);
  const f = floorOf(0x20000, image, chipWith(0x33));
  t.equal(f.commands, 1);
  t.equal(f.wireBytes, 24);
  t.ok(close(f.totalMs, 0.24 + 16.384));
  t.equal(f.lastPageMs, 0);
});

t.test('1 MiB bench image at 0x11000 over a different image: the floor at both benchmark rates', async (t) => {
  const image = makeBenchImage();
  const other = makeBenchImage(2);
  const mem = new Uint8Array(0x200000).fill(0xff);
  mem.fill(0x00, 0, 0x11000); // the bootloader
  mem.set(other.bytes, 0x11000);
  const current = (a: number, l: number): Uint8Array => mem.slice(a, a + l);
  for (const baud of [921_600, 2_000_000]) {
    const f = writeFloor({ offset: image.flashOffset, image: image.bytes, current, baud, chip: DEFAULT_CHIP_TIMING, flash: TH });
    t.same(f.erases, { '4K': 8, '32K': 1, '64K': 15 }, '0x11000..0x18000 and 0x110000 by 4K, 0x18000 by 32K, 0x20000..0x110000 by 64K');
    t.equal(f.eraseMs, 8 * 45 + 120 + 15 * 150);
    t.equal(f.sectorsWritten, 256, 'no blank sector in the bench image');
    t.equal(f.wireBytes, 24 * 29 + 256 * 4123 + 24);
    t.ok(close(f.wireMs, (f.wireBytes * 10 * 1000) / baud), `${baud}: wire ${f.wireMs.toFixed(3)} ms`);
    t.ok(close(f.crcMs, (0x100000 / 4e6) * 1000));
  }
});

t.test('classic floor: per sector erase + write (unless blank) + CRC', async (t) => {
  const data = new Uint8Array(K4).fill(0x11);
  const blank = new Uint8Array(K4).fill(0xff);
  const ms = classicFloor(
    [
      { address: 0x11000, data, blank: false },
      { address: 0x12000, data: blank, blank: true },
    ],
    1_000_000,
    { crcBytesPerSec: 4e6 },
    TH,
  );
  const bytes = 2 * 29 + 4123 + 2 * 24;
  t.ok(close(ms, bytes / 100 + 2 * 45 + 0.4 + 2 * 1.024), `${ms} ms`);
  // bk7231tools' way: a CheckCRC first, and no erase for a sector that is already blank.
  const checked = classicFloor(
    [
      { address: 0x11000, data, blank: false, currentlyBlank: true },
      { address: 0x12000, data, blank: false, currentlyBlank: false },
    ],
    1_000_000,
    { crcBytesPerSec: 4e6 },
    TH,
    { checkBlank: true },
  );
  t.ok(close(checked, (4 * 24 + 29 + 2 * 4123) / 100 + 45 + 2 * 0.4 + 4 * 1.024), `${checked} ms`);
});

t.test('reset pulse and get-bus floor', async (t) => {
  t.equal(cenPulseMs(ModemLineReset.bk7231tools().steps, 'R'), 200, 'RTS held 100 + 100 ms');
  t.equal(cenPulseMs(ModemLineReset.bk7231tools().steps, 'D'), 100, 'DTR only for the first 100 ms');
  t.equal(cenPulseMs(ModemLineReset.hidDownload().steps, 'R'), 200);
  t.equal(cenPulseMs(new ModemLineReset('R1|W10|R0|W5|R1|W20|R0').steps, 'R'), 30, 'two pulses add up');
  t.ok(close(getBusFloorMs(200, 115200), 200 + 130_000 / 115200));
});

t.test('percentiles are nearest-rank', async (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
  t.equal(percentile(xs, 50), 50);
  t.equal(percentile(xs, 95), 95);
  t.equal(percentile([3, 1, 2], 50), 2);
  t.ok(Number.isNaN(percentile([], 50)));
  t.same(summarize([4, 1, 3]), { n: 3, median: 3, p95: 4, max: 4, min: 1, sum: 8 });
});
