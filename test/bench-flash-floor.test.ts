import t from 'tap';
import { makeBenchImage } from '../firmware/synthetic.ts';
import { FlashPlanner } from '../rig/bk7231/planner.ts';
import { EraseOpcode } from '../rig/bk7231/protocol/commands.ts';
import * as F from '../rig/bk7231/protocol/frame.ts';
import { ModemLineReset } from '../rig/bk7231/reset.ts';
import { FLASH_PARTS } from '../sim/bk7231/flash-parts.ts';
import { longReply, shortReply } from '../sim/bk7231/rom-replies.ts';
import { DEFAULT_CHIP_TIMING } from '../sim/bk7231/timing.ts';
import { cenPulseMs, classicFloor, exchangeBytes, getBusFloorMs, replyBytes, writeVerifyFloor } from '../scripts/bench-lib/floor.ts';
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

t.test('write+verify floor by hand: two erases, two writes, one CRC at 1 Mbaud', async (t) => {
  const data = new Uint8Array(K4).fill(0x5a);
  const floor = writeVerifyFloor({
    plan: {
      erases: [
        { op: EraseOpcode.Block64K, address: 0x20000, size: 0x10000 },
        { op: EraseOpcode.Sector4K, address: 0x30000, size: K4 },
      ],
      writes: [
        { address: 0x20000, data },
        { address: 0x30000, data },
      ],
    },
    verifyStart: 0x20000,
    verifyLength: 2 * K4,
    baud: 1_000_000,
    chip: { crcBytesPerSec: 4e6 },
    flash: TH,
  });
  t.equal(floor.wireBytes, 2 * 29 + 2 * 4123 + 24);
  t.ok(close(floor.wireMs, 83.28), `wire ${floor.wireMs} ms`);
  t.equal(floor.eraseMs, 150 + 45);
  t.equal(floor.lastPageMs, 0.4);
  t.ok(close(floor.crcMs, 2.048));
  t.ok(close(floor.totalMs, 83.28 + 195 + 0.4 + 2.048));
  t.equal(floor.commands, 5);
  t.equal(floor.payloadBytes, 2 * K4);

  const eraseOnly = writeVerifyFloor({
    plan: { erases: [{ op: EraseOpcode.Block32K, address: 0, size: 0x8000 }], writes: [] },
    verifyStart: 0,
    verifyLength: 0x8000,
    baud: 1_000_000,
    chip: { crcBytesPerSec: 4e6 },
    flash: TH,
  });
  t.equal(eraseOnly.eraseMs, TH.erase32kMs, '32K erase charged at the 32K time');
  t.equal(eraseOnly.lastPageMs, 0, 'nothing programmed, no page tail');
});

t.test('1 MiB bench image: the plan and the floor at both benchmark rates', async (t) => {
  const image = makeBenchImage();
  const plan = new FlashPlanner().plan({ image: image.bytes, offset: image.flashOffset, flashSize: 0x200000 });
  t.equal(plan.erases.filter((e) => e.op === EraseOpcode.Sector4K).length, 16, '0x11000..0x20000 and 0x110000');
  t.equal(plan.erases.filter((e) => e.op === EraseOpcode.Block64K).length, 15, '0x20000..0x110000');
  t.equal(plan.writes.length, 256, 'no blank sector in the bench image');
  const bytes = 31 * 29 + 256 * 4123 + 24;
  for (const baud of [921_600, 2_000_000]) {
    const f = writeVerifyFloor({ plan, verifyStart: image.flashOffset, verifyLength: image.bytes.length, baud, chip: DEFAULT_CHIP_TIMING, flash: TH });
    t.equal(f.wireBytes, bytes);
    t.ok(close(f.wireMs, (bytes * 10 * 1000) / baud), `${baud}: wire ${f.wireMs.toFixed(3)} ms`);
    t.equal(f.eraseMs, 16 * 45 + 15 * 150);
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
