import t, { type Test } from 'tap';
import { crc32 } from 'node:zlib';
import { VirtualClock, type Clock } from '../rig/core/clock.ts';
import { fromHex, hex } from '../rig/core/hex.ts';
import { VirtualBk7231, type VirtualBk7231Options } from '../sim/bk7231/virtual-bk7231.ts';
import { VirtualUartWire } from '../sim/serial/virtual-uart-wire.ts';
import { RF_SECTOR_ADDR } from '../sim/bk7231/synthetic-flash.ts';
import * as TR from './fixtures/sim-bk7231-traces.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';

interface Sent {
  t: number;
  baud: number;
  bytes: Uint8Array;
}

/** A chip on a fake wire: host bytes arrive instantly, chip bytes are recorded with time and baud. */
async function rig(options: VirtualBk7231Options = {}, bytewise = false) {
  const clock = new VirtualClock();
  // Tests that are not about the link window keep the ROM open (a real host links first); ROM tests
  // start from a blank app partition (the factory content has its own test).
  const chip = new VirtualBk7231({ linkWindowMs: Infinity, content: 'blank', ...options });
  const sent: Sent[] = [];
  chip.connect({ send: (bytes) => sent.push({ t: clock.now(), baud: chip.baudRate(), bytes: Uint8Array.from(bytes) }) }, clock);
  const write = (data: string | Uint8Array): void => {
    const bytes = typeof data === 'string' ? fromHex(data) : data;
    if (bytewise) for (const b of bytes) chip.receive(Uint8Array.of(b));
    else chip.receive(bytes);
  };
  /** Send a request, let `ms` of virtual time pass, return what the chip sent meanwhile. */
  const exchange = async (data: string | Uint8Array, ms = 5): Promise<{ bytes: Uint8Array; frames: Sent[] }> => {
    const from = sent.length;
    write(data);
    await clock.sleep(ms);
    const frames = sent.slice(from);
    return { bytes: Uint8Array.from(frames.flatMap((s) => [...s.bytes])), frames };
  };
  chip.powerOn();
  await clock.sleep(2); // ROM listens 1 ms after reset
  return { clock, chip, sent, write, exchange };
}

/** Byte-array equality without tap's slow element-wise deep compare. */
function sameBytes(t: Test, actual: Uint8Array, expected: Uint8Array, message = 'same bytes'): void {
  t.ok(Buffer.from(actual).equals(Buffer.from(expected)), message);
}

const near = (a: number, b: number): boolean => Math.abs(a - b) < 1e-6;

const obkUa = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 1, appBytes: 40_000 });
const obkImage = { address: 0x11000, data: obkUa.bytes };

for (const bytewise of [false, true]) {
  t.test(`§15 worked exchange, byte-exact (${bytewise ? 'one byte at a time' : 'one chunk'})`, async (t) => {
    const { chip, exchange, clock } = await rig({ initialSr: 0x4004, linkWindowMs: 300 }, bytewise);
    t.equal(chip.state, 'rom');
    t.equal(hex((await exchange(TR.LINK_CHECK_REQ)).bytes), hex(fromHex(TR.LINK_CHECK_RESP)));
    t.equal(chip.state, 'rom-linked');

    const baudAt = clock.now();
    const baud = await exchange(TR.SET_BAUD_921600_D20_REQ, 30);
    t.equal(hex(baud.bytes), hex(fromHex(TR.SET_BAUD_921600_D20_RESP)));
    t.equal(baud.frames[0]!.baud, 921600, 'echo leaves at the new rate');
    t.ok(near(baud.frames[0]!.t - baudAt, 20 + chip.timing.turnaroundMs), 'echo after the 20 ms delay');
    t.equal(chip.baudRate(), 921600);

    t.equal(hex((await exchange(TR.CRC_BOOT_FINGERPRINT_REQ)).bytes), hex(fromHex(TR.CRC_BOOT_FINGERPRINT_RESP)));
    t.equal(hex((await exchange(TR.READ_CHIP_ID_REQ)).bytes), hex(fromHex(TR.READ_CHIP_ID_RESP)));
    t.equal(hex((await exchange(TR.GET_MID_REQ)).bytes), hex(fromHex(TR.GET_MID_TH25Q16HB_RESP)));
    t.equal(hex((await exchange(TR.READ_SR1_REQ)).bytes), hex(fromHex(TR.READ_SR1_0x04_RESP)));
    t.equal(hex((await exchange(TR.READ_SR2_REQ)).bytes), hex(fromHex(TR.READ_SR2_0x40_RESP)));
    t.equal(hex((await exchange(TR.WRITE_SR_0000_REQ, 20)).bytes), hex(fromHex(TR.WRITE_SR_0000_RESP)));
    t.equal(chip.flash.statusRegister, 0);

    t.equal(hex((await exchange(TR.ERASE_4K_0x11000_REQ, 60)).bytes), hex(fromHex(TR.ERASE_4K_0x11000_RESP)));
    const sector = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) & 0xff);
    const w = await exchange(new Uint8Array([...fromHex(TR.WRITE_4K_0x11000_HEAD), ...sector]), 20);
    t.equal(hex(w.bytes), hex(fromHex(TR.WRITE_4K_0x11000_RESP)));
    const crc = await exchange(TR.CRC_SECTOR_0x11000_INCLUSIVE_REQ);
    const raw = ~crc32(sector) >>> 0;
    t.equal(hex(crc.bytes), hex(new Uint8Array([...fromHex('04 0E 08 01 E0 FC 10'), raw & 0xff, (raw >>> 8) & 0xff, (raw >>> 16) & 0xff, raw >>> 24])));
    const read = await exchange(TR.READ_4K_0x11000_REQ, 60);
    t.equal(read.bytes.length, 4111);
    t.equal(hex(read.bytes.subarray(0, 15)), hex(fromHex(TR.READ_4K_0x11000_RESP_HEAD)));
    sameBytes(t, read.bytes.subarray(15), sector);

    const resets = chip.counters.resets;
    t.equal((await exchange(TR.REBOOT_REQ, 5)).bytes.length, 0, 'Reboot has no reply');
    t.equal(chip.counters.resets, resets + 1);
    t.equal(chip.state, 'rom', 'back in the ROM at 115200 with the window open');
    t.equal(chip.baudRate(), 115200);
    t.same(
      { ...chip.counters.commands },
      { LinkCheck: 1, SetBaudRate: 1, CheckCrc: 2, ReadReg: 1, FlashGetMid: 1, FlashReadSr: 2, FlashWriteSr: 1, FlashErase: 1, FlashWrite4K: 1, FlashRead4K: 1, Reboot: 1 },
    );
  });
}

t.test('reply length of every supported command', async (t) => {
  const { exchange } = await rig();
  const cases: Array<[string, string, number]> = [
    ['LinkCheck', TR.LINK_CHECK_REQ, 8],
    ['ReadReg', '01 E0 FC 05 03 00 00 00 00', 15],
    ['WriteReg', TR.WRITE_REG_REQ, 15],
    ['CheckCrc', '01 E0 FC 09 10 00 00 00 00 FF 00 00 00', 11],
    ['FlashRead4K', TR.READ_4K_0x11000_REQ, 4111],
    ['FlashErase', '01 E0 FC FF F4 06 00 0F 20 00 20 01 00', 16],
    ['FlashWrite4K', TR.WRITE_4K_0x11000_HEAD + ' 00'.repeat(4096), 15],
    ['FlashWrite', TR.FLASH_WRITE_2_0x12000_REQ, 16],
    ['FlashReadSr', TR.READ_SR1_REQ, 13],
    ['FlashWriteSr 1 byte', TR.WRITE_SR1_00_REQ, 13],
    ['FlashWriteSr 2 bytes', TR.WRITE_SR_0000_REQ, 14],
    ['FlashGetMid', TR.GET_MID_REQ, 15],
    ['SetBaudRate', '01 E0 FC 06 0F 00 C2 01 00 05', 12],
  ];
  for (const [name, req, len] of cases) {
    const r = await exchange(req, 500); // Read4K alone keeps the UART busy 357 ms at 115200
    t.equal(r.bytes.length, len, name);
    t.equal(r.frames.length, 1, `${name}: one frame`);
  }
  t.equal(hex((await exchange(TR.WRITE_REG_REQ)).bytes), hex(fromHex(TR.WRITE_REG_RESP)));
  t.equal(hex((await exchange(TR.FLASH_WRITE_2_0x12000_REQ)).bytes), hex(fromHex(TR.FLASH_WRITE_2_0x12000_RESP)));
  t.same(await exchange('01 E0 FC 05 03 10 00 80 00').then((r) => hex(r.bytes.subarray(11))), '78 56 34 12', 'register file keeps WriteReg values');
  t.equal((await exchange(TR.REBOOT_REQ)).bytes.length, 0, 'Reboot: none');
});

t.test('unsupported and malformed commands get no reply', async (t) => {
  const { chip, exchange } = await rig();
  t.equal((await exchange('01 E0 FC 01 11')).bytes.length, 0, 'ReadBootVersion is T-only');
  t.equal((await exchange('01 E0 FC FF F4 02 00 0A 04')).bytes.length, 0, 'FlashEraseAll');
  t.equal((await exchange('01 E0 FC 02 00 00')).bytes.length, 0, 'LinkCheck with a payload byte');
  t.equal((await exchange('01 E0 FC 02 0E 00')).bytes.length, 0, 'Reboot without A5 does nothing');
  t.equal(chip.state, 'rom');
  t.equal(chip.counters.commands['short:0x11'], 1);
  t.equal(chip.counters.commands['long:0x0a'], 1);
  t.equal(chip.counters.malformed, 1);
  const e = await exchange('01 E0 FC FF F4 06 00 0F 21 00 20 01 00');
  t.equal(hex(e.bytes), hex(fromHex('04 0E FF 01 E0 FC F4 07 00 0F 06 21 00 20 01 00')), 'unknown erase opcode: status 6 echo');
});

t.test('CRC: raw (non-inverted) CRC-32 with the inclusive end', async (t) => {
  const { exchange, chip } = await rig();
  // 0x1F0000 is erased in the factory content.
  const r = await exchange('01 E0 FC 09 10 00 00 1F 00 FF 0F 1F 00');
  t.equal(hex(r.bytes.subarray(7)), hex(Uint8Array.of(0xf5, 0x98, 0xab, 0x0e)), '4096 x FF -> 0x0EAB98F5');
  t.equal(TR.CRC32_FF_4K_RAW, ~TR.CRC32_FF_4K_STANDARD >>> 0);
  chip.flash.load(0x1f1000, Uint8Array.of(0x00));
  const excl = await exchange('01 E0 FC 09 10 00 00 1F 00 00 10 1F 00');
  const want = ~crc32(new Uint8Array([...new Uint8Array(4096).fill(0xff), 0x00])) >>> 0;
  t.equal(new DataView(excl.bytes.buffer).getUint32(7, true), want, 'end byte is included (4097 bytes)');
  const empty = await exchange('01 E0 FC 09 10 00 10 1F 00 00 00 1F 00');
  t.equal(new DataView(empty.bytes.buffer).getUint32(7, true), 0xffffffff, 'end < start: nothing CRCed');
});

t.test('protection: SR 0x4004 silently blocks erase and program; WriteSR 0 unblocks', async (t) => {
  const { chip, exchange } = await rig({ initialSr: 0x4004 });
  const before = chip.flash.read(0x0, 4096);
  const er = await exchange('01 E0 FC FF F4 06 00 0F 20 00 00 00 00', 60);
  t.equal(er.bytes[10], 0, 'status is still OK');
  sameBytes(t, chip.flash.read(0x0, 4096), before, 'nothing erased');
  await exchange('01 E0 FC FF F4 07 00 06 00 00 1F 00 00 00', 5);
  t.equal(chip.flash.read(0x1f0000, 2)[0], 0xff, 'nothing programmed');
  await exchange(TR.WRITE_SR_0000_REQ, 20);
  await exchange('01 E0 FC FF F4 06 00 0F 20 00 00 00 00', 60);
  sameBytes(t, chip.flash.read(0x0, 4096), new Uint8Array(4096).fill(0xff), 'erased once unprotected');
  t.equal(hex((await exchange(TR.READ_SR2_REQ)).bytes.subarray(11)), '35 00');
});

t.test('addresses wrap at the flash size (addr + 2 MiB aliases addr)', async (t) => {
  const { chip, exchange } = await rig();
  const r = await exchange('01 E0 FC FF F4 05 00 09 00 00 1D 00', 400);
  const alias = await exchange('01 E0 FC FF F4 05 00 09 00 00 3D 00', 400);
  t.equal(hex(alias.bytes.subarray(11, 15)), '00 00 3d 00', 'the requested address is echoed');
  sameBytes(t, alias.bytes.subarray(15), r.bytes.subarray(15));
  t.equal(hex(r.bytes.subarray(15, 19)), '54 4c 56 00', 'RF sector starts with TLV\\0');
  await exchange('01 E0 FC FF F4 06 00 0F 20 00 00 3D 00', 60);
  sameBytes(t, chip.flash.read(RF_SECTOR_ADDR, 4096), new Uint8Array(4096).fill(0xff), 'erase at 0x3D0000 erased 0x1D0000');
});

t.test('programming ANDs bits into the array', async (t) => {
  const { chip, exchange } = await rig();
  await exchange('01 E0 FC FF F4 06 00 06 00 00 1F 00 F0', 5);
  await exchange('01 E0 FC FF F4 06 00 06 00 00 1F 00 3C', 5);
  t.equal(chip.flash.read(0x1f0000, 1)[0], 0x30);
  const ones = new Uint8Array(4096).fill(0xff);
  await exchange(new Uint8Array([...fromHex('01 E0 FC FF F4 05 10 07 00 00 1F 00'), ...ones]), 20);
  t.equal(chip.flash.read(0x1f0000, 1)[0], 0x30, 'writing FF over programmed bits cannot set them');
});

t.test('byte-wise parser: garbage and reboot text between frames', async (t) => {
  const { exchange } = await rig({}, true);
  const noise = [...Buffer.from('reboot\r\n'), 0x01, 0x01, 0xe0, 0xfc, 0x01, 0x00, 0x01, 0xe0, 0xfc, 0x00, 0xff, 0x04, 0x0e];
  const stream = new Uint8Array([...noise, ...fromHex(TR.LINK_CHECK_REQ), ...Buffer.from('reboot\r\n'), ...fromHex(TR.READ_CHIP_ID_REQ), ...noise]);
  const r = await exchange(stream, 10);
  t.equal(hex(r.bytes), hex(new Uint8Array([...fromHex(TR.LINK_CHECK_RESP), ...fromHex(TR.READ_CHIP_ID_RESP)])), '"01 01 E0 FC 01 00" is lost (mismatch not re-examined), LEN 0 rejected');
});

t.test('link window: expiry boots the app; "reboot\\r\\n" in the app returns to the ROM', async (t) => {
  // OpenBeken listens for its reboot text; the stock Tuya app does not (test/sim-factory-content.test.ts).
  const { chip, exchange, clock } = await rig({ linkWindowMs: 300, initialImages: [obkImage] });
  await clock.sleep(300);
  t.equal(chip.state, 'app');
  t.equal((await exchange(TR.LINK_CHECK_REQ)).bytes.length, 0, 'the app ignores LinkCheck');
  await exchange('7265626F6F740D0A', 20);
  t.equal(chip.state, 'rom');
  t.equal(hex((await exchange(TR.LINK_CHECK_REQ)).bytes), hex(fromHex(TR.LINK_CHECK_RESP)));
  t.equal(chip.counters.appBoots, 1);
  t.ok(chip.counters.lastLinkMs !== undefined && near(chip.counters.lastLinkMs, 9), 'link time measured from ROM start (reboot +10 ms, ROM +1 ms, LinkCheck at +20 ms)');
  await clock.sleep(1000);
  t.equal(chip.state, 'rom-linked', 'a linked chip stays in the ROM');

  const quiet = await rig({ appRebootText: null, linkWindowMs: 50, initialImages: [obkImage] });
  await quiet.clock.sleep(60);
  await quiet.exchange('7265626F6F740D0A', 20);
  t.equal(quiet.chip.state, 'app', 'reboot text disabled');

  const strapped = await rig({ linkWindowMs: Infinity });
  await strapped.clock.sleep(10_000);
  t.equal(strapped.chip.state, 'rom');
});

t.test('power, CEN and modem-line wiring', async (t) => {
  const { chip, exchange, clock } = await rig();
  chip.modemLines({ dtr: true, rts: true });
  t.equal(chip.state, 'reset', 'RTS asserted holds CEN low');
  t.equal((await exchange(TR.LINK_CHECK_REQ)).bytes.length, 0);
  chip.modemLines({ dtr: false, rts: false });
  await clock.sleep(2);
  t.equal(chip.state, 'rom');
  t.equal(hex((await exchange(TR.LINK_CHECK_REQ)).bytes), hex(fromHex(TR.LINK_CHECK_RESP)));
  chip.powerOff();
  t.equal(chip.state, 'off');
  t.equal((await exchange(TR.LINK_CHECK_REQ)).bytes.length, 0);
  chip.powerOn();
  await clock.sleep(2);
  t.equal(chip.state, 'rom');
  t.equal(chip.counters.resets, 3);

  const unwired = await rig({ cenWiring: 'none' });
  unwired.chip.modemLines({ dtr: true, rts: true });
  t.equal(unwired.chip.state, 'rom');
  unwired.chip.setCen(false);
  t.equal(unwired.chip.state, 'reset');
});

t.test('replies leave at the modelled times', async (t) => {
  const { chip, exchange, clock, sent } = await rig({ linkWindowMs: Infinity });
  const ta = chip.timing.turnaroundMs;
  let t0 = clock.now();
  const e64 = await exchange(TR.ERASE_64K_0x10000_REQ, 200);
  t.equal(hex(e64.bytes), hex(fromHex(TR.ERASE_64K_0x10000_RESP)));
  t.ok(near(e64.frames[0]!.t - t0, 150 + ta), `64K erase reply at ${e64.frames[0]!.t - t0} ms`);
  t0 = clock.now();
  const e4 = await exchange(TR.ERASE_4K_0x11000_REQ, 100);
  t.ok(near(e4.frames[0]!.t - t0, 45 + ta), '4K erase: 45 ms');
  t0 = clock.now();
  const rd = await exchange(TR.READ_4K_0x11000_REQ, 400); // the chip stays busy while 4111 bytes leave at 115200
  t.ok(near(rd.frames[0]!.t - t0, (4096 / 6.25e6) * 1000 + ta), 'Read4K: 4096 bytes at 6.25 MB/s');
  // The ROM pushes the 4111-byte reply out before it looks at the next command.
  t0 = clock.now();
  const back = await exchange(new Uint8Array([...fromHex(TR.READ_4K_0x11000_REQ), ...fromHex(TR.LINK_CHECK_REQ)]), 400);
  t.equal(back.frames.length, 2);
  t.ok(near(back.frames[1]!.t - back.frames[0]!.t, uartMs(4111, 115200) + ta), 'next reply after the Read4K data has left at 115200');
  t0 = clock.now();
  const crc = await exchange('01 E0 FC 09 10 00 00 00 00 FF FF 0F 00', 400);
  t.ok(near(crc.frames[0]!.t - t0, (0x100000 / 4e6) * 1000 + ta), 'CRC of 1 MiB at 4 MB/s');
  t.ok(near(chip.counters.eraseBusyMs, 195) && near(chip.counters.crcBusyMs, 262.144), 'busy-time counters');

  // Write4K at wire pace (921600 baud: 256 bytes = 2.78 ms): each page programs while the next arrives.
  const from = sent.length;
  chip.receive(fromHex('01 E0 FC FF F4 05 10 07 00 00 1E 00'));
  for (let page = 0; page < 16; page++) {
    await clock.sleep(uartMs(256, 921600));
    chip.receive(new Uint8Array(256).fill(page));
  }
  const lastByte = clock.now();
  await clock.sleep(5);
  const reply = sent[from]!;
  t.equal(reply.bytes.length, 15, 'Write4K replied');
  t.ok(near(reply.t - lastByte, 0.4 + ta), 'only the last page is programmed after the last byte');
  t.same(chip.flash.read(0x1e0f00, 2), Uint8Array.of(15, 15));
  t0 = clock.now();
  const w = await exchange(new Uint8Array([...fromHex('01 E0 FC FF F4 05 10 07 00 10 1E 00'), ...new Uint8Array(4096)]), 20);
  t.ok(near(w.frames[0]!.t - t0, 16 * 0.4 + ta), 'all data at once: 16 pages back to back');
  t.ok(near(chip.counters.programBusyMs, 32 * 0.4), '16 pages charged per Write4K');
});

function uartMs(bytes: number, baud: number): number {
  return (bytes * 10 * 1000) / baud;
}

t.test('busy chip buffers a little and drops the rest', async (t) => {
  const { chip, exchange, write } = await rig({ linkWindowMs: Infinity });
  write(TR.ERASE_4K_0x11000_REQ);
  const r = await exchange(TR.LINK_CHECK_REQ, 80);
  t.equal(hex(r.bytes), hex(new Uint8Array([...fromHex(TR.ERASE_4K_0x11000_RESP), ...fromHex(TR.LINK_CHECK_RESP)])), 'LinkCheck answered after the erase');
  write(TR.ERASE_4K_0x11000_REQ);
  await exchange(new Uint8Array(200).fill(0x55), 80);
  t.equal(chip.counters.rxDropped, 200 - chip.timing.rxBufferBytes);
});

t.test('power loss during Write4K keeps only the pages already programmed', async (t) => {
  const { chip, clock } = await rig({ linkWindowMs: Infinity });
  chip.receive(new Uint8Array([...fromHex('01 E0 FC FF F4 05 10 07 00 00 1E 00'), ...new Uint8Array(1024)]));
  await clock.sleep(0.9); // pages 0 and 1 done (0.4 ms each), page 2 in progress
  chip.powerOff();
  const got = chip.flash.read(0x1e0000, 1024);
  sameBytes(t, got.subarray(0, 512), new Uint8Array(512), 'pages 0-1 programmed');
  sameBytes(t, got.subarray(512), new Uint8Array(512).fill(0xff), 'pages 2-3 not');
});

t.test('factory content: bootloader fingerprint, RF TLV with MAC, eFuse', async (t) => {
  const a = await rig({ seed: 7 });
  const b = await rig({ seed: 7 });
  const c = await rig({ seed: 8, mac: 'C8:47:8C:12:34:56' });
  sameBytes(t, a.chip.flash.read(0, 0x11000), b.chip.flash.read(0, 0x11000), 'deterministic per seed');
  t.notSame(a.chip.flash.read(0, 64), c.chip.flash.read(0, 64), 'different seeds differ');
  t.equal(crc32(c.chip.flash.read(0, 0x101)) >>> 0, 0xe14191ba, 'any seed carries the 1.0.1 fingerprint');
  const rf = c.chip.flash.read(RF_SECTOR_ADDR, 0x30);
  t.equal(hex(rf.subarray(0, 4)), '54 4c 56 00');
  t.equal(hex(rf.subarray(0x1c, 0x24)), '02 11 11 11 06 00 00 00');
  t.equal(hex(rf.subarray(0x24, 0x2a)), 'c8 47 8c 12 34 56');
  t.equal(hex(a.chip.mac.subarray(0, 3)), 'c8 47 8c', 'derived MAC uses the Beken OUI');
  t.equal(hex(a.chip.flash.read(0x11000, 16)), hex(new Uint8Array(16).fill(0xff)), 'app partition empty (blank content)');
  // eFuse byte 1 via the ltchiptool/GUI sequence: ctrl = (i << 8) | 1, then data register.
  await a.exchange('01 E0 FC 09 01 74 00 80 00 01 01 00 00');
  const d = await a.exchange('01 E0 FC 05 03 78 00 80 00');
  t.equal(hex(d.bytes.subarray(11)), 'b0 01 00 00', 'valid bit 8 + byte 1 of the Tuya key (0x510FB093 stored LE)');
  const img = await rig({ initialImages: [{ address: 0x11000, data: Uint8Array.of(1, 2, 3) }] });
  t.equal(hex(img.chip.flash.read(0x11000, 4)), '01 02 03 ff');
});

/**
 * RealClock on a loaded machine, on virtual time: timers run in (time, insertion) order, but the
 * event loop gets round to the n-th wake-up only lag(n) ms after it was due, and then runs every
 * timer that has come due meanwhile in one batch (as RealClock does). Modelled times are exact;
 * only the moments callbacks run are late.
 */
class LaggingClock implements Clock {
  readonly kind = 'real' as const;
  readonly #base: VirtualClock;
  readonly #lag: (wake: number) => number;
  #timers: Array<{ t: number; fn: () => void; cancelled: boolean }> = [];
  #wakes = 0;
  #armed: { t: number; cancel: () => void } | undefined;

  constructor(base: VirtualClock, lag: (wake: number) => number) {
    this.#base = base;
    this.#lag = lag;
  }

  now(): number {
    return this.#base.now();
  }

  at(t: number, fn: () => void): () => void {
    const timer = { t, fn, cancelled: false };
    let i = this.#timers.length;
    while (i > 0 && this.#timers[i - 1]!.t > t) i--;
    this.#timers.splice(i, 0, timer);
    this.#arm();
    return () => {
      timer.cancelled = true;
    };
  }

  sleep(ms: number): Promise<void> {
    return this.sleepUntil(this.now() + ms);
  }

  sleepUntil(t: number): Promise<void> {
    return new Promise((resolve) => this.at(t, resolve));
  }

  #arm(): void {
    while (this.#timers[0]?.cancelled) this.#timers.shift();
    const next = this.#timers[0];
    if (!next || (this.#armed && this.#armed.t <= next.t)) return;
    this.#armed?.cancel();
    this.#armed = { t: next.t, cancel: this.#base.at(next.t + this.#lag(this.#wakes++), () => this.#fire()) };
  }

  #fire(): void {
    this.#armed = undefined;
    const now = this.now();
    for (let due = this.#timers[0]; due && due.t <= now; due = this.#timers[0]) {
      this.#timers.shift();
      if (!due.cancelled) due.fn();
    }
    this.#arm();
  }
}

/** SetBaudRate 2 000 000 (0x001E8480 LE), 5 ms delay. */
const SET_BAUD_2M_D5_REQ = '01 E0 FC 06 0F 80 84 1E 00 05';
/** FlashWrite4K to 0x12000 (LEN 0x1005, code 07, address LE); 4096 data bytes follow. */
const WRITE_4K_0x12000_HEAD = '01 E0 FC FF F4 05 10 07 00 20 01 00';
/** FlashWrite4K OK, address 0x12000 echoed. */
const WRITE_4K_0x12000_RESP = '04 0E FF 01 E0 FC F4 06 00 07 00 00 20 01 00';

const CLOCKS: Array<[string, (base: VirtualClock) => Clock]> = [
  ['virtual clock', (base) => base],
  ['callbacks 5 ms late', (base) => new LaggingClock(base, () => 5)],
  ['stalls of 0-20 ms', (base) => new LaggingClock(base, (n) => [20, 0, 7, 13, 1, 5][n % 6]!)],
];

/**
 * A chip behind a VirtualUartWire (host follows the chip's rate, as on a pty) on `clock`;
 * chunkMs 0 delivers one byte at a time.
 */
async function wired(clock: Clock, base: VirtualClock, chunkMs: number) {
  const chip = new VirtualBk7231({ linkWindowMs: Infinity, content: 'blank' }); // writes without erase: blank app partition
  const wire = new VirtualUartWire({ clock, device: chip, hostFollowsDevice: true, chunkMs });
  const rx: number[] = [];
  wire.hostOpen(115200, (b) => rx.push(...b));
  chip.powerOn();
  await base.sleep(30);
  /** Write, wait `ms` of virtual time, return (and forget) what the host received. */
  const exchange = async (data: string | Uint8Array, ms: number): Promise<string> => {
    wire.hostWrite(typeof data === 'string' ? fromHex(data) : data);
    await base.sleep(ms);
    return hex(Uint8Array.from(rx.splice(0)));
  };
  return { chip, wire, exchange };
}

for (const [clockLabel, makeClock] of CLOCKS) for (const chunkMs of [1, 0]) {
  const label = `${clockLabel}, ${chunkMs ? '1 ms slices' : 'one byte at a time'}`;
  t.test(`two back-to-back Write4K frames at 2 Mbaud lose nothing (${label})`, async (t) => {
    const base = new VirtualClock();
    const { chip, exchange } = await wired(makeClock(base), base, chunkMs);
    t.equal(await exchange(TR.LINK_CHECK_REQ, 50), hex(fromHex(TR.LINK_CHECK_RESP)));
    t.equal((await exchange(SET_BAUD_2M_D5_REQ, 50)).length > 0, true, 'SetBaudRate echoed');
    t.equal(chip.baudRate(), 2_000_000);
    const a = Uint8Array.from({ length: 4096 }, (_, i) => (i * 13 + 1) & 0xff);
    const b = Uint8Array.from({ length: 4096 }, (_, i) => (i * 29 + 7) & 0xff);
    // One write: the second frame follows the first on the wire with no gap, so its first bytes
    // arrive while the chip programs the last page and sends the first reply.
    const frames = new Uint8Array([...fromHex(TR.WRITE_4K_0x11000_HEAD), ...a, ...fromHex(WRITE_4K_0x12000_HEAD), ...b]);
    t.equal(await exchange(frames, 200), hex(new Uint8Array([...fromHex(TR.WRITE_4K_0x11000_RESP), ...fromHex(WRITE_4K_0x12000_RESP)])));
    t.equal(chip.counters.rxDropped, 0, 'no byte dropped');
    t.equal(chip.counters.commands['FlashWrite4K'], 2);
    sameBytes(t, chip.flash.read(0x11000, 4096), a, 'sector 0x11000');
    sameBytes(t, chip.flash.read(0x12000, 4096), b, 'sector 0x12000');
  });

  t.test(`bytes that arrive during an erase (by modelled time) use the RX buffer (${label})`, async (t) => {
    const base = new VirtualClock();
    const { chip, exchange } = await wired(makeClock(base), base, chunkMs);
    // A LinkCheck right behind the erase waits in the buffer and is answered after it.
    const r = await exchange(new Uint8Array([...fromHex(TR.ERASE_4K_0x11000_REQ), ...fromHex(TR.LINK_CHECK_REQ)]), 100);
    t.equal(r, hex(new Uint8Array([...fromHex(TR.ERASE_4K_0x11000_RESP), ...fromHex(TR.LINK_CHECK_RESP)])));
    t.equal(chip.counters.rxDropped, 0);
    // 600 filler bytes right behind an erase at 115200 (86.8 us each): byte k arrives
    // (k + 1) x 86.8 us after the erase frame; the chip is busy for 0.05 + 45 ms plus the 16-byte
    // reply (1.39 ms), so bytes 0..533 arrive while busy: 128 are buffered, 406 dropped, and the
    // last 66 are parsed as they come. A LinkCheck after them is answered.
    const filler = new Uint8Array(600).fill(0x55);
    const e = await exchange(new Uint8Array([...fromHex(TR.ERASE_4K_0x11000_REQ), ...filler, ...fromHex(TR.LINK_CHECK_REQ)]), 150);
    t.equal(e, hex(new Uint8Array([...fromHex(TR.ERASE_4K_0x11000_RESP), ...fromHex(TR.LINK_CHECK_RESP)])));
    t.equal(chip.counters.rxDropped, 406, 'overflow counted at the modelled arrival times');
  });
}
