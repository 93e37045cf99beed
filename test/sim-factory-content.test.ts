import t from 'tap';
import { crc32 } from 'node:zlib';
import { VirtualClock } from '../rig/core/clock.ts';
import { hex } from '../rig/core/hex.ts';
import { scanBlocks } from '../firmware/crc-blocks.ts';
import { classifyImage } from '../firmware/image.ts';
import { makeBenchImage, makeSyntheticImage } from '../firmware/synthetic.ts';
import { VirtualBk7231, type VirtualBk7231Options } from '../sim/bk7231/virtual-bk7231.ts';
import { identifyBootImage } from '../sim/bk7231/boot-image.ts';
import { STOCK_TUYA_APP_BLOCKS, TUYA_STORAGE_ADDR, stockTuyaApp } from '../sim/bk7231/factory-content.ts';
import { RF_SECTOR_ADDR } from '../sim/bk7231/synthetic-flash.ts';

const APP = 0x11000;
const LINK_CHECK_REQ = Uint8Array.of(0x01, 0xe0, 0xfc, 0x01, 0x00);

/** A chip whose ROM link window passes unused (300 ms), so it boots what the flash holds. */
async function booted(options: VirtualBk7231Options = {}) {
  const clock = new VirtualClock();
  const chip = new VirtualBk7231({ seed: 5, linkWindowMs: 300, ...options });
  const sent: Uint8Array[] = [];
  chip.connect({ send: (b) => sent.push(Uint8Array.from(b)) }, clock);
  chip.powerOn();
  await clock.sleep(400);
  return { clock, chip, sent };
}

const obkUa = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 3, appBytes: 300_000 });

t.test('factory content: bootloader, stock Tuya app (~1.05 MB, CRC blocks), Tuya storage, RF/MAC sector', async (t) => {
  const chip = new VirtualBk7231({ seed: 11, mac: 'C8:47:8C:0A:0B:0C' });
  t.equal(crc32(chip.flash.read(0, 0x101)) >>> 0, 0xe14191ba, 'bootloader fingerprint BK7231N 1.0.1');
  const app = chip.flash.read(APP, 0x119000);
  // The rig's codec (a different implementation) agrees that this is a Beken CRC-block app.
  const scan = scanBlocks(app, 0, STOCK_TUYA_APP_BLOCKS * 34);
  t.equal(scan.valid + scan.erased, STOCK_TUYA_APP_BLOCKS, 'every stored block of the stock app is valid');
  t.equal(scan.invalid, 0);
  t.ok(scan.valid > 30_000, `${scan.valid} blocks of code`);
  t.equal(STOCK_TUYA_APP_BLOCKS * 34, 1_050_600, 'as large as a real 1.05 MB stock app');
  const backup = chip.flash.read(APP, STOCK_TUYA_APP_BLOCKS * 34);
  const info = classifyImage({ name: 'stock-backup.bin', bytes: backup, targetChip: 'BK7231N' });
  t.equal(info.kind, 'ua', 'a backup of the app partition classifies as a Beken UA image');
  t.equal(hex(chip.flash.read(RF_SECTOR_ADDR + 0x24, 6)), 'c8 47 8c 0a 0b 0c', 'MAC at 0x1D0024');
  const kv = chip.flash.read(TUYA_STORAGE_ADDR, 0x13000);
  t.ok(kv.subarray(0, 0x1000).some((b) => b !== 0xff), 'Tuya storage written at 0x1ED000');
  t.ok(kv.subarray(0x12000).every((b) => b === 0xff), 'its last pages still erased');
  t.ok(chip.flash.read(0x1d1000, 0x1000).every((b) => b === 0xff), 'no OpenBeken config yet');
  const other = new VirtualBk7231({ seed: 12 });
  t.ok(Buffer.from(other.flash.read(APP, 4096)).equals(Buffer.from(chip.flash.read(APP, 4096))), 'every unit carries the same stock build');
  t.notOk(Buffer.from(other.flash.read(TUYA_STORAGE_ADDR, 4096)).equals(Buffer.from(kv.subarray(0, 4096))), 'but its own storage (keys, device id)');
  t.equal(stockTuyaApp(), stockTuyaApp(), 'built once per process');

  const blank = new VirtualBk7231({ seed: 11, content: 'blank' });
  t.ok(blank.flash.read(APP, 0x119000).every((b) => b === 0xff), "content 'blank': empty app partition");
  t.ok(blank.flash.read(TUYA_STORAGE_ADDR, 0x13000).every((b) => b === 0xff), 'and no Tuya storage');
  t.equal(crc32(blank.flash.read(0, 0x101)) >>> 0, 0xe14191ba, 'bootloader still there');
});

t.test('boot by content: stock Tuya app, OpenBeken (with and without BL0937), nothing', async (t) => {
  const factory = await booted();
  t.equal(factory.chip.state, 'app');
  t.match(factory.chip.firmware, { kind: 'tuya', chip: 'BK7231N', product: 'oem_bk7231n_plug' }, 'a factory-fresh plug boots the stock Tuya app');

  const obk = await booted({ initialImages: [{ address: APP, data: obkUa.bytes }] });
  t.match(obk.chip.firmware, { kind: 'openbeken', version: '1.18.42', bl0937: true }, 'an OpenBeken UA at 0x11000 boots OpenBeken');
  t.notOk(obk.chip.firmware?.kind === 'openbeken' && obk.chip.firmware.variant, 'the plain build has no variant');

  const qio = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.50', seed: 4, appBytes: 200_000 });
  const fromQio = await booted({ content: 'blank', initialImages: [{ address: 0, data: qio.bytes }] });
  t.match(fromQio.chip.firmware, { kind: 'openbeken', version: '1.18.50' }, 'a QIO written from 0x0 (its own bootloader) boots too');

  for (const variant of ['tuyaMCU', 'sensors']) {
    const v = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 3, appBytes: 100_000, variant });
    t.equal(v.name, `OpenBK7231N_UA_1.18.42_${variant}.bin`);
    const r = await booted({ initialImages: [{ address: APP, data: v.bytes }] });
    t.match(r.chip.firmware, { kind: 'openbeken', variant, bl0937: false }, `_${variant} boots OpenBeken without the BL0937 driver`);
  }
  const berry = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 3, appBytes: 100_000, variant: 'berry' });
  t.match((await booted({ initialImages: [{ address: APP, data: berry.bytes }] })).chip.firmware, { kind: 'openbeken', bl0937: true }, '_berry keeps it');

  const blank = await booted({ content: 'blank' });
  t.match(blank.chip.firmware, { kind: 'none', reason: 'no-app' }, 'blank app partition: nothing boots');
});

t.test('corrupt, truncated and foreign images do not boot; the ROM still answers after reset', async (t) => {
  const corrupt = Uint8Array.from(obkUa.bytes);
  corrupt[200_001] = corrupt[200_001]! ^ 0x10; // one bit in one block
  const c = await booted({ initialImages: [{ address: APP, data: corrupt }] });
  t.match(c.chip.firmware, { kind: 'none', reason: 'corrupt', detail: /0x[0-9a-f]+ is damaged/ });

  // An interrupted write: the last sectors were erased but never programmed.
  const cut = Math.floor(obkUa.bytes.length / 2 / 4096) * 4096;
  const truncated = Uint8Array.from(obkUa.bytes).fill(0xff, cut);
  const tr = await booted({ content: 'blank', initialImages: [{ address: APP, data: truncated }] });
  t.match(tr.chip.firmware, { kind: 'none', reason: 'truncated' });

  const tImage = makeSyntheticImage({ chip: 'BK7231T', kind: 'ua', version: '1.17.551', seed: 1, appBytes: 100_000 });
  t.match((await booted({ initialImages: [{ address: APP, data: tImage.bytes }] })).chip.firmware, { kind: 'none', reason: 'foreign', detail: /BK7231T/ });
  const bench = makeBenchImage(1);
  t.match((await booted({ initialImages: [{ address: APP, data: bench.bytes }] })).chip.firmware, { kind: 'none', reason: 'foreign' }, 'Beken-format bytes without a build record');
  const noBoot = await booted({ initialImages: [{ address: 0, data: new Uint8Array(34).fill(0xff) }, { address: APP, data: obkUa.bytes }] });
  t.match(noBoot.chip.firmware, { kind: 'none', reason: 'no-bootloader' }, 'a damaged bootloader runs nothing');
  const defect = await booted({ appDoesNotBoot: true, initialImages: [{ address: APP, data: obkUa.bytes }] });
  t.match(defect.chip.firmware, { kind: 'none' }, 'defect "image does not boot"');

  // The dead app ignores OpenBeken's reboot text; only a reset brings the ROM back, and it answers.
  c.chip.receive(new TextEncoder().encode('reboot\r\n'));
  await c.clock.sleep(50);
  t.equal(c.chip.state, 'app', 'no firmware listens for "reboot"');
  c.chip.setCen(false);
  c.chip.setCen(true);
  await c.clock.sleep(5);
  t.equal(c.chip.state, 'rom');
  c.chip.receive(LINK_CHECK_REQ);
  await c.clock.sleep(5);
  t.equal(hex(c.sent.at(-1)!), '04 0e 05 01 e0 fc 01 00', 'the ROM answers LinkCheck');

  // Stock Tuya firmware ignores it too; OpenBeken reboots into the ROM.
  const tuya = await booted();
  tuya.chip.receive(new TextEncoder().encode('reboot\r\n'));
  await tuya.clock.sleep(50);
  t.equal(tuya.chip.state, 'app', 'stock Tuya: no reboot text');
  const obk = await booted({ initialImages: [{ address: APP, data: obkUa.bytes }] });
  obk.chip.receive(new TextEncoder().encode('reboot\r\n'));
  await obk.clock.sleep(15);
  t.equal(obk.chip.state, 'rom', 'OpenBeken: reboot text returns to the ROM');
});

t.test('the simulator judges flash by itself: its reader agrees with the rig classifier on synthetic images', async (t) => {
  const flash = (regions: Array<[number, Uint8Array]>) => {
    const a = new Uint8Array(0x200000).fill(0xff);
    for (const [at, d] of regions) a.set(d, at);
    return { read: (addr: number, n: number) => a.slice(addr, addr + n) };
  };
  const boot = new VirtualBk7231({ content: 'blank' }).flash.read(0, 0x11000);
  t.match(identifyBootImage(flash([[0, boot], [APP, obkUa.bytes]])), { kind: 'openbeken' });
  t.equal(classifyImage({ name: obkUa.name, bytes: obkUa.bytes, targetChip: 'BK7231N' }).warnings.length, 0, 'the build record keeps the image clean for the classifier');
  const listener: string[] = [];
  const b = await booted();
  b.chip.onStateChange((s) => listener.push(`${s}:${b.chip.firmware?.kind ?? '-'}`));
  b.chip.restartFromApp();
  await b.clock.sleep(400);
  t.same(listener, ['reset:-', 'rom:-', 'app:tuya'], 'state changes are announced with what boots');
});
