import t from 'tap';
import { crc32 } from 'node:zlib';
import { fromHex, hex } from '../rig/core/hex.ts';
import { FLASH_PARTS } from '../sim/bk7231/flash-parts.ts';
import { HostFrameParser, type HostFrame } from '../sim/bk7231/host-frame-parser.ts';
import { longReply, shortReply } from '../sim/bk7231/rom-replies.ts';
import { SpiFlash } from '../sim/bk7231/spi-flash.ts';
import { crc16Cms, forceCrc32, macFromSeed, parseMac } from '../sim/bk7231/synthetic-flash.ts';
import * as TR from './fixtures/sim-bk7231-traces.ts';

const MiB2 = 2 * 1024 * 1024;

t.test('SpiFlash: erase units, alignment and wrap', async (t) => {
  const f = new SpiFlash();
  t.equal(f.size, MiB2);
  t.equal(hex(Uint8Array.from(f.jedecId)), 'eb 60 15', 'TH25Q16HB by default');
  f.load(0, new Uint8Array(0x20000));
  t.ok(f.erase(0x1234, 4096));
  t.equal(hex(f.read(0x0fff, 3)), '00 ff ff', '4K erase aligned down to 0x1000..0x1FFF');
  t.equal(hex(f.read(0x1fff, 2)), 'ff 00');
  t.equal(f.read(0x1000, 1)[0], 0xff);
  f.erase(MiB2 + 0x8000 + 5, 32768);
  t.equal(hex(f.read(0x7fff, 2)), '00 ff', '32K erase at 2 MiB + 0x8005 hits 0x8000');
  t.equal(hex(f.read(0xffff, 2)), 'ff 00');
  f.erase(0x1ffff, 65536);
  t.equal(hex(f.read(0xffff, 2)), 'ff ff', '64K erase covers 0x10000..0x1FFFF');
  f.load(MiB2 - 2, Uint8Array.of(1, 2, 3, 4));
  t.equal(hex(f.read(MiB2 - 2, 4)), '01 02 03 04', 'reads wrap to 0');
  t.equal(hex(f.read(0, 2)), '03 04');
});

t.test('SpiFlash: program ANDs, wraps inside the page, keeps the last 256 bytes', async (t) => {
  const f = new SpiFlash();
  f.program(0x100, Uint8Array.of(0xf0));
  f.program(0x100, Uint8Array.of(0x3c));
  t.equal(f.read(0x100, 1)[0], 0x30);
  f.program(0x2fe, Uint8Array.of(1, 2, 3, 4));
  t.equal(hex(f.read(0x2fe, 2)), '01 02');
  t.equal(hex(f.read(0x200, 2)), '03 04', 'column wraps to the start of the same page');
  t.equal(f.read(0x300, 1)[0], 0xff, 'next page untouched');
  const big = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  f.program(0x400, big);
  // 300 bytes into page 0x400: the first 44 are pushed out of the latch; byte 44 lands at column 44.
  t.equal(f.read(0x400 + 44, 1)[0], 44);
  t.equal(f.read(0x400 + 43, 1)[0], (299 & 0xff), 'bytes 256..299 wrapped to columns 0..43');
});

t.test('SpiFlash: status registers and protection masks', async (t) => {
  const f = new SpiFlash({ initialSr: 0x4004 });
  t.ok(f.isProtected());
  t.equal(f.readStatus(0x05), 0x04);
  t.equal(f.readStatus(0x35), 0x40);
  t.notOk(f.erase(0, 4096), 'erase refused');
  t.notOk(f.program(0x11000, Uint8Array.of(0)), 'program refused');
  t.equal(f.read(0x11000, 1)[0], 0xff);
  f.writeStatus(0x01, Uint8Array.of(0x00));
  t.equal(f.statusRegister, 0x4000, 'one-byte WRSR writes SR1 only');
  t.ok(f.isProtected(), 'CMP alone is in the 0x407C mask');
  f.writeStatus(0x01, Uint8Array.of(0x03, 0x00));
  t.equal(f.statusRegister, 0x0000, 'WIP/WEL are not writable; two-byte WRSR writes SR2');
  t.notOk(f.isProtected());
  f.writeStatus(0x31, Uint8Array.of(0x02));
  t.equal(f.readStatus(0x35), 0x02);
  t.notOk(f.isProtected(), 'QE (SR2 bit 1) is not a protect bit');

  const eon = new SpiFlash({ part: FLASH_PARTS.EN25QH16B, initialSr: 0x4000 });
  t.equal(eon.statusRegister, 0, '1-byte part has no SR2');
  t.notOk(eon.isProtected());
  eon.writeStatus(0x01, Uint8Array.of(0x08, 0xff));
  t.ok(eon.isProtected(), 'BP1 within 0x3C');
  t.equal(eon.statusRegister, 0x08);
});

t.test('SpiFlash: raw transfer (FlashGetMID path) and ID override', async (t) => {
  const f = new SpiFlash({ jedecId: [0x85, 0x42, 0x15], initialSr: 0x001c });
  t.equal(hex(f.transfer(fromHex('9F 00 00 00'))), '00 85 42 15');
  t.equal(hex(f.transfer(fromHex('05 00 00'))), '00 1c 1c');
  f.load(0x123456, Uint8Array.of(0xab, 0xcd));
  t.equal(hex(f.transfer(fromHex('03 12 34 56 00 00'))), '00 00 00 00 ab cd');
  t.equal(hex(f.transfer(fromHex('AB 00'))), '00 00', 'unknown opcodes read idle');
});

t.test('flash part table: sane, typical and every erase < 1 s (tool timeouts, §10.1)', async (t) => {
  for (const part of Object.values(FLASH_PARTS)) {
    t.equal(1 << part.jedecId[2], part.sizeBytes, `${part.name}: size = 1 << CAP`);
    t.ok(part.timing.erase4kMs < part.timing.erase32kMs || part.timing.erase32kMs === part.timing.erase64kMs, `${part.name}: 4K faster than blocks`);
    t.ok(part.timing.erase32kMs <= part.timing.erase64kMs);
    t.ok(part.timing.erase64kMs < 1000, `${part.name}: 64K erase under 1 s`);
    t.ok(part.source.length > 0);
  }
  t.equal(FLASH_PARTS.TH25Q16HB.timing.erase64kMs, 150, 'W25Q16JV typicals stand in');
});

function feed(p: HostFrameParser, bytes: Uint8Array): HostFrame[] {
  const out: HostFrame[] = [];
  for (const b of bytes) {
    const f = p.push(b);
    if (f) out.push(f);
  }
  return out;
}

t.test('host frame parser: short and long forms, byte by byte', async (t) => {
  const p = new HostFrameParser();
  const frames = feed(p, fromHex([TR.LINK_CHECK_REQ, TR.SET_BAUD_921600_D20_REQ, TR.READ_4K_0x11000_REQ, TR.GET_MID_REQ].join(' ')));
  t.same(
    frames.map((f) => [f.form, f.code, hex(f.payload)]),
    [
      ['short', 0x00, ''],
      ['short', 0x0f, '00 10 0e 00 14'],
      ['long', 0x09, '00 10 01 00'],
      ['long', 0x0e, '9f 00 00 00'],
    ],
  );
  const w = feed(p, new Uint8Array([...fromHex(TR.WRITE_4K_0x11000_HEAD), ...new Uint8Array(4096).fill(0x5a)]));
  t.equal(w.length, 1);
  t.equal(w[0]!.payload.length, 4100);
  t.equal(w[0]!.payload[4099], 0x5a);
});

t.test('host frame parser: l_boot resync rules', async (t) => {
  const p = new HostFrameParser();
  t.same(feed(p, fromHex('01 01 E0 FC 01 00')), [], 'the mismatching 01 is not re-examined');
  t.same(feed(p, fromHex('01 E0 FC 00')), [], 'LEN 0 rejected');
  t.equal(p.rejectedLengths, 1);
  t.equal(feed(p, fromHex(TR.LINK_CHECK_REQ)).length, 1, 'back at HEAD after a rejection');
  t.same(feed(p, fromHex('01 E0 FC FF F5 01 00 00')), [], 'long form needs F4 after FF');
  t.same(feed(p, fromHex('01 E0 FC FF F4 00 00')), [], 'long LEN 0 rejected');
  t.same(feed(p, fromHex('01 E0 FC FF F4 00 20')), [], 'long LEN beyond the frame buffer rejected');
  t.equal(feed(p, Buffer.from('reboot\r\n')).length, 0);
  t.equal(feed(p, fromHex(TR.READ_CHIP_ID_REQ)).length, 1);
  feed(p, fromHex('01 E0 FC 05 03 00'));
  t.equal(p.pending()?.body.length, 2, 'partial body visible');
  p.reset();
  t.equal(p.pending(), undefined);
  t.equal(feed(p, fromHex(TR.LINK_CHECK_REQ)).length, 1);
});

t.test('reply builders match the reference lengths and headers', async (t) => {
  t.equal(hex(shortReply(0x01, [0x00])), hex(fromHex(TR.LINK_CHECK_RESP)));
  t.equal(hex(longReply(0x07, 0, fromHex('00 10 01 00'))), hex(fromHex(TR.WRITE_4K_0x11000_RESP)));
  t.equal(longReply(0x09, 0, new Uint8Array(4100)).length, 4111);
  t.equal(hex(longReply(0x09, 0, new Uint8Array(4100)).subarray(7, 9)), '06 10', 'LEN 0x1006');
});

t.test('CRC helpers and MAC parsing', async (t) => {
  t.equal(crc16Cms(Buffer.from('123456789')), 0xaee7, 'CRC-16/CMS check value');
  const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 31) & 0xff);
  forceCrc32(data, 100, 0xdeadbeef);
  t.equal(crc32(data) >>> 0, 0xdeadbeef);
  t.equal(hex(parseMac('c8-47-8c:00:11:22')), 'c8 47 8c 00 11 22');
  t.throws(() => parseMac('c8:47'), { code: 'E_CONFIG' });
  t.equal(hex(macFromSeed(3)), hex(macFromSeed(3)));
  t.not(hex(macFromSeed(3)), hex(macFromSeed(4)));
});
