import t from 'tap';
import * as F from '../rig/bk7231/protocol/frame.ts';
import { EraseOpcode } from '../rig/bk7231/protocol/commands.ts';
import { Bk7231ReplyParser, type Bk7231Reply } from '../rig/bk7231/protocol/parser.ts';
import { classifyReply, decodeCrc, decodeJedecId, decodeRead4K, decodeRegister, decodeStatusRegister } from '../rig/bk7231/protocol/reply.ts';
import { Crc32Raw, CRC32_RAW_ERASED_4K, crc32Raw, crc32Standard } from '../rig/bk7231/protocol/crc32.ts';
import { hex } from '../rig/core/hex.ts';
import * as T from './fixtures/bk7231-traces.ts';

const cat = (...p: Uint8Array[]): Uint8Array => Uint8Array.from(p.flatMap((x) => [...x]));
const sector = (seed: number): Uint8Array => Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + seed) & 0xff);

/** Deterministic PRNG so random splits are reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function feedBytewise(bytes: Uint8Array): Bk7231Reply[] {
  const p = new Bk7231ReplyParser();
  const out: Bk7231Reply[] = [];
  for (const b of bytes) out.push(...p.push(Uint8Array.of(b)));
  return out;
}

function feedRandom(bytes: Uint8Array, seed: number): Bk7231Reply[] {
  const p = new Bk7231ReplyParser();
  const r = rng(seed);
  const out: Bk7231Reply[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + Math.floor(r() * 40);
    out.push(...p.push(bytes.subarray(i, i + n)));
    i += n;
  }
  return out;
}

t.test('CRC: raw form has no final xor', async (t) => {
  t.equal(CRC32_RAW_ERASED_4K, 0x0eab98f5, '4096 x FF -> raw 0x0EAB98F5');
  t.equal(crc32Standard(new Uint8Array(4096).fill(0xff)), 0xf154670a, 'standard CRC32_FF_4K');
  t.equal(crc32Standard(new TextEncoder().encode('123456789')), 0xcbf43926, 'CRC-32 check value');
  t.equal(crc32Raw(new TextEncoder().encode('123456789')), 0x340bc6d9);
  const data = sector(3);
  const inc = new Crc32Raw().update(data.subarray(0, 1000)).update(data.subarray(1000));
  t.equal(inc.raw(), crc32Raw(data), 'incremental equals one-shot');
  t.equal(inc.standard(), ~crc32Raw(data) >>> 0);
});

t.test('builders are byte-exact against the reference traces', async (t) => {
  const cases: [string, Uint8Array, Uint8Array][] = [
    ['LinkCheck', F.linkCheck().bytes, T.LINK_CHECK_TX],
    ['SetBaudRate 921600/20', F.setBaudRate(921600, 20).bytes, T.SET_BAUD_921600_D20_TX],
    ['CheckCRC 0..0x100', F.checkCrc(0, 0x100).bytes, T.CRC_BOOTLOADER_TX],
    ['CheckCRC sector', F.checkCrc(0x11000, 0x11fff).bytes, T.CRC_SECTOR_11000_TX],
    ['ReadReg chip id', F.readReg(0x00800000).bytes, T.READ_CHIP_ID_TX],
    ['WriteReg efuse', F.writeReg(0x00800074, 0x301).bytes, T.WRITE_REG_EFUSE_TX],
    ['GetMID', F.flashGetMID().bytes, T.GET_MID_TX],
    ['ReadSR1', F.flashReadSR(0x05).bytes, T.READ_SR1_TX],
    ['ReadSR2', F.flashReadSR(0x35).bytes, T.READ_SR2_TX],
    ['WriteSR 2 bytes', F.flashWriteSR([0, 0]).bytes, T.WRITE_SR2_TX],
    ['WriteSR 1 byte', F.flashWriteSR([0]).bytes, T.WRITE_SR1_TX],
    ['Erase 4K', F.flashErase(EraseOpcode.Sector4K, 0x11000).bytes, T.ERASE_4K_11000_TX],
    ['Erase 32K', F.flashErase(EraseOpcode.Block32K, 0x18000).bytes, T.ERASE_32K_18000_TX],
    ['Erase 64K', F.flashErase(EraseOpcode.Block64K, 0x20000).bytes, T.ERASE_64K_20000_TX],
    ['Read4K', F.flashRead4K(0x11000).bytes, T.READ_4K_11000_TX],
    ['FlashWrite 3 B', F.flashWrite(0x11010, Uint8Array.of(0xaa, 0xbb, 0xcc)).bytes, T.FLASH_WRITE_11010_TX],
    ['Reboot', F.reboot().bytes, T.REBOOT_TX],
  ];
  for (const [name, got, want] of cases) t.equal(hex(got), hex(want), name);
  const data = sector(1);
  t.equal(hex(F.flashWrite4K(0x11000, data).bytes), hex(cat(T.WRITE_4K_11000_HEADER_TX, data)), 'Write4K = header + 4096 B');
  t.equal(F.flashWrite4K(0x11000, data).bytes.length, 4108);
  t.equal(F.reboot().reply, null, 'Reboot expects no reply');
});

t.test('builders refuse what the chip cannot express', async (t) => {
  t.throws(() => F.flashWrite4K(0, new Uint8Array(4095)), RangeError);
  t.throws(() => F.flashWrite(0, new Uint8Array(256)), RangeError, '256 would be reported as 0');
  t.throws(() => F.flashWrite(0x10f0, new Uint8Array(32)), RangeError, 'page crossing');
  t.throws(() => F.flashWriteSR([1, 2, 3]), RangeError);
  t.throws(() => F.setBaudRate(115200, 256), RangeError);
  t.throws(() => F.checkCrc(0x2000, 0x1000), RangeError);
  t.equal(F.shortFrame(0x42, new Uint8Array(300))[3], 0xff, 'oversized short command switches to the long form');
});

t.test('parser decodes every reference reply, bytewise and in one chunk', async (t) => {
  const data = sector(9);
  const read4k = cat(T.READ_4K_200000_RX_HEADER, data);
  const all = [
    T.LINK_CHECK_RX, T.SET_BAUD_921600_D20_RX, T.CRC_BOOTLOADER_RX, T.READ_CHIP_ID_RX, T.WRITE_REG_EFUSE_RX, T.GET_MID_TH25Q16HB_RX,
    T.GET_MID_LEN5_RX, T.READ_SR1_RX, T.READ_SR2_RX, T.WRITE_SR2_RX, T.WRITE_SR1_RX, T.ERASE_4K_11000_RX, T.WRITE_4K_11000_RX, read4k, T.FLASH_WRITE_11010_RX,
  ];
  const stream = cat(...all);
  for (const [how, frames] of [['bytewise', feedBytewise(stream)], ['chunk', new Bk7231ReplyParser().push(stream)], ['random', feedRandom(stream, 7)]] as const) {
    t.equal(frames.length, all.length, `${how}: frame count`);
    t.same(frames.map((f) => hex(f.raw)), all.map((a) => hex(a)), `${how}: raw bytes preserved`);
  }
  const f = new Bk7231ReplyParser().push(stream);
  t.match(f[0], { form: 'short', code: 0x01 });
  t.equal(decodeCrc(f[2]!), T.CRC_BOOTLOADER_RAW);
  t.same(decodeRegister(f[3]!), { address: 0x00800000, value: 0x7231c });
  t.same(decodeJedecId(f[5]!), { manufacturer: 0xeb, type: 0x60, capacity: 0x15 }, 'LEN 6');
  t.same(decodeJedecId(f[6]!), { manufacturer: 0xeb, type: 0x60, capacity: 0x15 }, 'LEN 5');
  t.equal(decodeStatusRegister(f[7]!), 0x04);
  t.equal(decodeStatusRegister(f[8]!), 0x40);
  t.match(f[13], { form: 'long', code: 0x09, status: 0 });
  t.equal(hex(decodeRead4K(f[13]!)), hex(data), 'Read4K data');
});

t.test('replies are matched to their own request only', async (t) => {
  const [lc, wr, baud, mid, mid5, erase, w4k] = new Bk7231ReplyParser().push(
    cat(T.LINK_CHECK_RX, T.WRITE_REG_EFUSE_RX, T.SET_BAUD_921600_D20_RX, T.GET_MID_TH25Q16HB_RX, T.GET_MID_LEN5_RX, T.ERASE_4K_11000_RX, T.WRITE_4K_11000_RX),
  );
  t.equal(classifyReply(lc!, F.linkCheck().reply!), 'match');
  t.equal(classifyReply(lc!, F.writeReg(0x00800074, 0x301).reply!), 'other', 'LinkCheck reply (code 01) is not a WriteReg echo');
  t.equal(classifyReply(wr!, F.linkCheck().reply!), 'other', 'WriteReg echo (code 01) is not a LinkCheck reply');
  t.equal(classifyReply(wr!, F.writeReg(0x00800074, 0x301).reply!), 'match');
  t.equal(classifyReply(baud!, F.setBaudRate(921600, 20).reply!), 'match');
  t.equal(classifyReply(baud!, F.setBaudRate(2000000, 20).reply!), 'other', 'echo of another rate');
  t.equal(classifyReply(lc!, F.setBaudRate(921600, 20).reply!), 'other', 'stale LinkCheck before SetBaudRate echo');
  t.equal(classifyReply(mid!, F.flashGetMID().reply!), 'match');
  t.equal(classifyReply(mid5!, F.flashGetMID().reply!), 'match');
  t.equal(classifyReply(erase!, F.flashErase(EraseOpcode.Sector4K, 0x11000).reply!), 'match');
  t.equal(classifyReply(erase!, F.flashErase(EraseOpcode.Sector4K, 0x12000).reply!), 'other', 'late reply for another address');
  t.equal(classifyReply(erase!, F.flashErase(EraseOpcode.Block64K, 0x11000).reply!), 'other', 'another erase size');
  t.equal(classifyReply(w4k!, F.flashWrite4K(0x11000, sector(0)).reply!), 'match');
  // Long GetMID (0x0E) vs short Reboot, long Erase (0x0F) vs short SetBaudRate share codes.
  t.equal(classifyReply(erase!, F.setBaudRate(921600, 20).reply!), 'other', 'long 0x0F is not the short SetBaudRate');
  t.equal(classifyReply(baud!, F.flashErase(EraseOpcode.Sector4K, 0x11000).reply!), 'other');
});

t.test('parser resyncs on garbage, stale replies and truncated frames', async (t) => {
  // Garbage containing a fake 04 0E with a wrong header, text, and lone 04s.
  const junk = cat(T.GARBAGE_TEXT, Uint8Array.of(0x04, 0x0e, 0x05, 0x01, 0xe0, 0x00), Uint8Array.of(0x04, 0x04, 0x00, 0x0e));
  const stream = cat(junk, T.LINK_CHECK_RX, T.LINK_CHECK_RX, T.LINK_CHECK_RX, junk, T.SET_BAUD_921600_D20_RX, junk, T.ERASE_4K_11000_RX);
  const want = [T.LINK_CHECK_RX, T.LINK_CHECK_RX, T.LINK_CHECK_RX, T.SET_BAUD_921600_D20_RX, T.ERASE_4K_11000_RX].map((x) => hex(x));
  t.same(feedBytewise(stream).map((f) => hex(f.raw)), want, 'bytewise');
  t.same(new Bk7231ReplyParser().push(stream).map((f) => hex(f.raw)), want, 'one chunk');
  for (const seed of [1, 2, 3, 4, 5]) t.same(feedRandom(stream, seed).map((f) => hex(f.raw)), want, `random split ${seed}`);

  const p = new Bk7231ReplyParser();
  t.same(p.push(stream.subarray(0, junk.length)), []);
  t.ok(p.discardedBytes >= junk.length - 1, 'garbage counted as discarded');

  // A truncated Write4K reply followed by a complete erase reply: the parser waits (the short frame
  // could be part of the longer one) until the caller gives up on the truncated frame.
  const trunc = new Bk7231ReplyParser();
  const cut = cat(T.READ_4K_200000_RX_HEADER, new Uint8Array(100));
  t.same(trunc.push(cat(cut, T.ERASE_4K_11000_RX)), [], 'inside the announced length of the truncated frame');
  t.equal(trunc.pending.length, cut.length + T.ERASE_4K_11000_RX.length);
  const { dropped, frames } = trunc.abandonPending();
  t.equal(dropped.length, cut.length + T.ERASE_4K_11000_RX.length, 'held bytes reported');
  t.same(frames.map((f) => hex(f.raw)), [hex(T.ERASE_4K_11000_RX)], 'complete frame inside recovered');
  t.equal(trunc.pending.length, 0);
  t.same(trunc.push(T.LINK_CHECK_RX).map((f) => hex(f.raw)), [hex(T.LINK_CHECK_RX)], 'parser usable afterwards');

  // A frame cut short and nothing else: abandon yields nothing.
  const lone = new Bk7231ReplyParser();
  t.same(lone.push(T.CRC_BOOTLOADER_RX.subarray(0, 8)), []);
  t.same(lone.abandonPending().frames, []);
  t.same(lone.push(T.CRC_BOOTLOADER_RX).map((f) => hex(f.raw)), [hex(T.CRC_BOOTLOADER_RX)]);

  // Invalid lengths are not frames: LEN8 < 4, LEN16 < 2.
  const bad = cat(Uint8Array.of(0x04, 0x0e, 0x03, 0x01, 0xe0, 0xfc), Uint8Array.of(0x04, 0x0e, 0xff, 0x01, 0xe0, 0xfc, 0xf4, 0x01, 0x00, 0x0f), T.LINK_CHECK_RX);
  t.same(feedBytewise(bad).map((f) => hex(f.raw)), [hex(T.LINK_CHECK_RX)]);
});
