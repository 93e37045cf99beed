import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { ImageError } from '../rig/core/errors.ts';
import { fromHex } from '../rig/core/hex.ts';
import { crc16Cms } from '../firmware/crc16.ts';
import { addBlockCrcs, BLOCK_BYTES, isValidBlock, scanBlocks } from '../firmware/crc-blocks.ts';
import { FLASH_LAYOUTS } from '../firmware/flash-layout.ts';
import { parseImageName } from '../firmware/image-name.ts';
import { classifyImage, looksLikeQio, type ClassifyImageOptions } from '../firmware/image.ts';
import {
  BENCH_IMAGE_BYTES,
  makeBenchImage,
  makeSectorVariant,
  makeSyntheticImage,
} from '../firmware/synthetic.ts';

// CRC-16/CMS vectors (poly 0x8005, init 0xFFFF, no reflection, no xorout), cross-checked with a bitwise Python model.
const CRC16_CMS_CHECK_123456789 = 0xaee7;
/** 32 × 0x00 → 0x8029; 32 × 0xFF → 0x000C; bytes 0x00..0x1F → 0x259D. */
const BLOCK_OF_ZEROS = fromHex('00'.repeat(32) + '80 29');
const BLOCK_OF_FF_DATA = fromHex('ff'.repeat(32) + '00 0c');
const BLOCK_COUNTING = fromHex(
  '00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 25 9d',
);

const N = FLASH_LAYOUTS.BK7231N;

/** Byte equality for megabyte buffers (tap's deep compare + diff is far too slow for them). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function rejects(t: Test, options: ClassifyImageOptions, pattern: RegExp, label: string): void {
  t.throws(() => classifyImage(options), { name: 'ImageError', message: pattern }, label);
  try {
    classifyImage(options);
  } catch (error) {
    t.ok(error instanceof ImageError, `${label}: typed ImageError`);
    t.match((error as ImageError).message, options.name, `${label}: message names the file`);
    t.equal((error as ImageError).context.targetChip, options.targetChip, `${label}: context has the target`);
  }
}

t.test('CRC-16/CMS', async (t) => {
  t.equal(crc16Cms(new TextEncoder().encode('123456789')), CRC16_CMS_CHECK_123456789, 'check value 0xAEE7');
  t.equal(crc16Cms(new Uint8Array(0)), 0xffff, 'empty input leaves the init value');
  const data = new TextEncoder().encode('123456789');
  // One byte at a time, continuing the running CRC, gives the same result as one chunk.
  let crc: number | undefined;
  for (let i = 0; i < data.length; i++) crc = crc16Cms(data, i, i + 1, crc);
  t.equal(crc, CRC16_CMS_CHECK_123456789, 'byte-at-a-time equals one chunk');
  t.equal(crc16Cms(data, 0, 4), crc16Cms(new TextEncoder().encode('1234')), 'range form');
});

t.test('CRC block codec is byte-exact (32 data bytes + big-endian CRC)', async (t) => {
  t.same(addBlockCrcs(new Uint8Array(32)), BLOCK_OF_ZEROS);
  t.same(addBlockCrcs(new Uint8Array(32).fill(0xff)), BLOCK_OF_FF_DATA);
  t.same(addBlockCrcs(Uint8Array.from({ length: 32 }, (_, i) => i)), BLOCK_COUNTING);
  t.throws(() => addBlockCrcs(new Uint8Array(33)), RangeError, 'data must be whole 32-byte blocks');
  t.ok(isValidBlock(BLOCK_COUNTING, 0));
  const flipped = Uint8Array.from(BLOCK_COUNTING);
  flipped[33] ^= 1;
  t.notOk(isValidBlock(flipped, 0), 'a flipped CRC bit is caught');

  const mixed = new Uint8Array(BLOCK_BYTES * 4 + 5).fill(0xff);
  mixed.set(BLOCK_COUNTING, 0);
  mixed.set(flipped, BLOCK_BYTES);
  // block 2: erased (34 × 0xFF); block 3: valid FF data; tail: 5 × 0xFF
  mixed.set(BLOCK_OF_FF_DATA, BLOCK_BYTES * 3);
  const scan = scanBlocks(mixed);
  t.match(scan, { blocks: 4, valid: 2, erased: 1, invalid: 1, firstInvalidAt: BLOCK_BYTES, tailBytes: 5, tailIsPadding: true });
  t.equal(scan.validFraction, 2 / 3);
});

t.test('OpenBeken release names', async (t) => {
  const table: Array<[string, Record<string, unknown> | undefined]> = [
    ['OpenBK7231N_QIO_1.18.42.bin', { platform: 'BK7231N', chip: 'BK7231N', foreign: false, packaging: 'qio', version: '1.18.42' }],
    ['OpenBK7231N_UA_1.18.42.bin', { chip: 'BK7231N', packaging: 'ua', version: '1.18.42' }],
    ['OpenBK7231T_UA_1.17.551.bin', { chip: 'BK7231T', packaging: 'ua', version: '1.17.551' }],
    ['OpenBK7231T_QIO_1.17.551.bin', { chip: 'BK7231T', packaging: 'qio' }],
    ['OpenBK7231N_1.18.42.rbl', { chip: 'BK7231N', packaging: 'rbl', version: '1.18.42' }],
    ['OpenBK7231T_1.17.551.rbl', { chip: 'BK7231T', packaging: 'rbl' }],
    ['OpenBK7231N_UG_1.18.42.bin', { chip: 'BK7231N', packaging: 'ug' }],
    ['OpenBK7231N_QIO_v1.18.42-rc1.bin', { packaging: 'qio', version: '1.18.42-rc1' }],
    ['/srv/fw/OpenBK7231N_UA_1.18.42.bin', { chip: 'BK7231N', packaging: 'ua' }],
    ['OpenBK7231N_QIO_1.18.42_tuyaMCU.bin', { packaging: 'qio', version: '1.18.42', variant: 'tuyaMCU' }],
    ['OpenBK7231N_ALT_QIO_1.18.42.bin', { chip: 'BK7231N', alt: true, packaging: 'qio' }],
    ['OpenBK7238_QIO_1.18.42.bin', { platform: 'BK7238', foreign: true, packaging: 'qio' }],
    ['OpenBL602_1.18.42.bin', { platform: 'BL602', foreign: true, packaging: 'unknown' }],
    ['OpenW800_1.18.42.img', { platform: 'W800', foreign: true }],
    ['OpenBK7231N_1.18.bin', undefined],
    ['flash_dump.bin', undefined],
    ['OpenBK7231N_QIO_1.18.42.bin.zip', undefined],
  ];
  for (const [name, expected] of table) {
    const parsed = parseImageName(name);
    if (expected === undefined) t.equal(parsed, undefined, `${name}: not a release name`);
    else t.match(parsed, expected, name);
  }
  t.equal(parseImageName('OpenBK7231N_QIO_1.18.42.bin')?.chip, 'BK7231N');
  t.equal(parseImageName('OpenBL602_1.18.42.bin')?.chip, undefined, 'foreign platforms have no Beken chip');
});

t.test('synthetic images: realistic, deterministic, and classified correctly', async (t) => {
  const qio = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 7 });
  const again = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 7 });
  const other = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 8 });
  const ua = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 7 });
  t.equal(qio.name, 'OpenBK7231N_QIO_1.18.42.bin');
  t.equal(ua.name, 'OpenBK7231N_UA_1.18.42.bin');
  t.ok(sameBytes(qio.bytes, again.bytes), 'same options → same bytes');
  t.notOk(sameBytes(qio.bytes.subarray(N.appOffset), other.bytes.subarray(N.appOffset)), 'another seed → another app');
  t.ok(sameBytes(qio.bytes.subarray(0, N.appOffset), other.bytes.subarray(0, N.appOffset)), 'bootloader depends on the chip only');
  t.ok(sameBytes(qio.bytes.subarray(N.appOffset), ua.bytes), 'QIO app part = UA image of the same release');
  t.ok(qio.bytes.length >= 1_000_000 && qio.bytes.length <= 1_200_000, `QIO size ${qio.bytes.length} like a release`);
  const ffShare = ua.bytes.filter((b) => b === 0xff).length / ua.bytes.length;
  t.ok(ffShare > 0.002 && ffShare < 0.02, `mostly non-0xFF with some padding (FF share ${ffShare.toFixed(4)})`);
  t.ok(looksLikeQio(qio.bytes, N.appOffset) && !looksLikeQio(ua.bytes, N.appOffset), 'layout heuristic');

  const q = classifyImage({ name: qio.name, bytes: qio.bytes, targetChip: 'BK7231N' });
  t.match(q, { kind: 'qio', chip: 'BK7231N', version: '1.18.42', size: qio.bytes.length, defaultOffset: 0x11000 });
  t.same(q.warnings, [], 'a release QIO has no warnings');
  t.equal(q.sha256, createHash('sha256').update(qio.bytes).digest('hex'));
  t.equal(q.appBlocks.validFraction, 1, 'every app CRC block valid');
  t.equal(q.bootloaderBlocks?.invalid, 0);
  const skip = q.bytesToWrite();
  t.equal(skip.offset, 0x11000, 'QIO on N skips the bootloader by default');
  t.ok(sameBytes(skip.bytes, qio.bytes.subarray(0x11000)), 'the app part');
  t.equal(skip.end, qio.bytes.length);
  const full = q.bytesToWrite(true);
  t.equal(full.offset, 0);
  t.equal(full.end, qio.bytes.length);
  t.equal(full.bytes.length, qio.bytes.length, 'writeBootloader writes the whole QIO from 0x0');

  const u = classifyImage({ name: ua.name, bytes: ua.bytes, targetChip: 'BK7231N' });
  t.match(u, { kind: 'ua', defaultOffset: 0x11000 });
  t.same(u.warnings, []);
  t.match(u.bytesToWrite(), { offset: 0x11000, end: 0x11000 + ua.bytes.length });
  t.throws(() => u.bytesToWrite(true), { name: 'ImageError', message: /UA image: it has no bootloader/ });

  // Without a telling name the kind comes from content, with warnings saying so.
  const anonQ = classifyImage({ name: 'backup.bin', bytes: qio.bytes, targetChip: 'BK7231N' });
  t.equal(anonQ.kind, 'qio');
  t.match(anonQ.warnings.join('\n'), /inferred from content[\s\S]*chip not stated/);
  t.equal(classifyImage({ name: 'backup.bin', bytes: ua.bytes, targetChip: 'BK7231N' }).kind, 'ua');

  const tUa = makeSyntheticImage({ chip: 'BK7231T', kind: 'ua', version: '1.17.551', seed: 1, appBytes: 300_000 });
  t.equal(tUa.bytes.length, Math.floor(300_000 / BLOCK_BYTES) * BLOCK_BYTES, 'appBytes rounds down to whole blocks');
  t.match(classifyImage({ name: tUa.name, bytes: tUa.bytes, targetChip: 'BK7231T' }), { kind: 'ua', chip: 'BK7231T' });
  const tQio = makeSyntheticImage({ chip: 'BK7231T', kind: 'qio', version: '1.17.551', seed: 1 });
  const tInfo = classifyImage({ name: tQio.name, bytes: tQio.bytes, targetChip: 'BK7231T' });
  t.equal(tInfo.bytesToWrite().offset, 0x11000);
  t.throws(() => tInfo.bytesToWrite(true), { message: /bootloader is the only UART downloader/ }, 'never the T bootloader');
});

t.test('sector variant and bench image', async (t) => {
  const base = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 3 });
  const v = makeSectorVariant(base, { sectors: 4, seed: 9 });
  t.equal(v.changedSectors.length, 4, 'four sectors differ');
  t.equal(v.name, 'OpenBK7231N_QIO_1.18.42-d9.bin');
  for (const s of v.changedSectors) t.ok(s >= N.appOffset && s % 0x1000 === 0, `0x${s.toString(16)} is an app sector`);
  let differing = 0;
  for (let i = 0; i < base.bytes.length; i += 0x1000) {
    if (Buffer.compare(base.bytes.subarray(i, i + 0x1000), v.bytes.subarray(i, i + 0x1000)) !== 0) differing++;
  }
  t.equal(differing, 4, 'diff by hand agrees');
  const vInfo = classifyImage({ name: v.name, bytes: v.bytes, targetChip: 'BK7231N' });
  t.match(vInfo, { kind: 'qio', version: '1.18.42-d9' });
  t.same(vInfo.warnings, [], 'CRCs still valid');
  t.ok(sameBytes(makeSectorVariant(base, { sectors: 4, seed: 9 }).bytes, v.bytes), 'deterministic');
  const picked = makeSectorVariant(base, { sectors: [0x20000, 0x50000], seed: 1 });
  t.same(picked.changedSectors, [0x20000, 0x50000], 'explicit sectors');
  const uaBase = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 3 });
  t.same(makeSectorVariant(uaBase, { sectors: [0x20000], seed: 1 }).changedSectors, [0x20000], 'UA sectors are flash addresses');
  t.throws(() => makeSectorVariant(base, { sectors: [0x1000], seed: 1 }), RangeError, 'bootloader sectors refused');

  const bench = makeBenchImage(1);
  t.equal(bench.bytes.length, BENCH_IMAGE_BYTES);
  t.equal(BENCH_IMAGE_BYTES, 0x100000);
  t.ok(sameBytes(makeBenchImage(1).bytes, bench.bytes), 'bench image is deterministic');
  const info = classifyImage({ name: bench.name, bytes: bench.bytes, targetChip: 'BK7231N' });
  t.equal(info.kind, 'ua');
  t.same(info.warnings, [], 'bench image is a clean UA');
  t.equal(info.bytesToWrite().end, 0x111000);
});

t.test('refusals', async (t) => {
  const qio = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 5 });
  const ua = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 5 });
  const target = 'BK7231N' as const;

  rejects(t, { name: 'OpenBK7231N_UA_1.0.0.bin', bytes: new Uint8Array(0), targetChip: target }, /is empty/, 'empty');
  rejects(t, { name: 'big.bin', bytes: new Uint8Array(0x200001), targetChip: target }, /larger than the 2 MiB flash/, 'over 2 MiB');

  const tName = 'OpenBK7231T_UA_1.17.551.bin';
  rejects(t, { name: tName, bytes: ua.bytes, targetChip: target }, /BK7231T image; the target is BK7231N/, 'T image on N');
  rejects(t, { name: 'OpenBL602_1.18.42.bin', bytes: ua.bytes, targetChip: target }, /firmware for BL602/, 'foreign BL602');
  rejects(t, { name: 'OpenBK7238_QIO_1.18.42.bin', bytes: qio.bytes, targetChip: target }, /firmware for BK7238/, 'foreign BK7238');

  rejects(t, { name: 'OpenBK7231N_1.18.42.rbl', bytes: ua.bytes, targetChip: target }, /RBL OTA package by name/, 'RBL by name');
  rejects(t, { name: 'OpenBK7231N_UG_1.18.42.bin', bytes: ua.bytes, targetChip: target }, /UG OTA package/, 'UG by name');
  const rbl = Uint8Array.from(ua.bytes);
  rbl.set([0x52, 0x42, 0x4c, 0x00], 0);
  rejects(t, { name: 'update.bin', bytes: rbl, targetChip: target }, /RBL OTA package \(header "RBL\\0"/, 'RBL by magic');

  const noBoot = Uint8Array.from(qio.bytes);
  noBoot.fill(0xff, 0, N.appOffset);
  rejects(t, { name: qio.name, bytes: noBoot, targetChip: target }, /bootloader area .* is all 0xFF/, 'QIO without bootloader');
  rejects(t, { name: qio.name, bytes: qio.bytes.subarray(0, N.appOffset), targetChip: target }, /nothing after/, 'QIO without app');

  const random = new Uint8Array(500_000);
  for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
  rejects(t, { name: 'random.bin', bytes: random, targetChip: target }, /not a Beken-format image \(only 0\.0% of/, 'random bytes');
  const raw = classifyImage({ name: 'random.bin', bytes: random, targetChip: target, allowRaw: true });
  t.match(raw, { kind: 'raw', defaultOffset: 0x11000 }, 'allowRaw accepts it as raw');
  t.match(raw.warnings.join('\n'), /not a Beken-format image/);
  t.throws(() => raw.bytesToWrite(true), { message: /RAW image: it has no bootloader/ });

  const corrupt = Uint8Array.from(ua.bytes);
  corrupt[BLOCK_BYTES * 100 + 3] ^= 0x40;
  rejects(t, { name: ua.name, bytes: corrupt, targetChip: target }, /1 of \d+ CRC blocks in the app area are corrupt \(first at file offset 0xd48\)/, 'one corrupt block');
  try {
    classifyImage({ name: ua.name, bytes: corrupt, targetChip: target });
  } catch (error) {
    t.equal((error as ImageError).context.address, 0xd48, 'context carries the offset');
  }

  // Too large for the space between 0x11000 and the RF sector (0x1D0000): 0x1BF000 bytes max for a UA.
  const huge = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.0.0', seed: 1, appBytes: 0x1bf000 + 68 });
  rejects(t, { name: huge.name, bytes: huge.bytes, targetChip: target }, /over the RF calibration sector at 0x1d0000/, 'UA over RF');
  const hugeQio = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.0.0', seed: 1, appBytes: 0x1d0000 - 0x11000 + 34 });
  rejects(t, { name: hugeQio.name, bytes: hugeQio.bytes, targetChip: target }, /over the RF calibration sector/, 'QIO over RF');
  // ... but an image that fits the BK7231T's larger space is fine there.
  const tBig = makeSyntheticImage({ chip: 'BK7231T', kind: 'ua', version: '1.0.0', seed: 1, appBytes: 0x1c0000 });
  t.match(classifyImage({ name: tBig.name, bytes: tBig.bytes, targetChip: 'BK7231T' }).warnings.join('\n'), /into the OTA partition/);
});

t.test('warnings', async (t) => {
  const ua = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 2 });
  const ragged = new Uint8Array(ua.bytes.length + 7);
  ragged.set(ua.bytes);
  ragged.set([1, 2, 3, 4, 5, 6, 7], ua.bytes.length);
  const r = classifyImage({ name: ua.name, bytes: ragged, targetChip: 'BK7231N' });
  t.match(r.warnings.join('\n'), /not a whole number of 34-byte CRC blocks: the last 7 bytes \(01 02 03 04 05 06 07\)/);

  const padded = new Uint8Array(ua.bytes.length + 7).fill(0xff);
  padded.set(ua.bytes);
  t.same(classifyImage({ name: ua.name, bytes: padded, targetChip: 'BK7231N' }).warnings, [], '0xFF tail is padding, no warning');

  const qio = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 2 });
  const misnamed = classifyImage({ name: 'OpenBK7231N_UA_1.18.42.bin', bytes: qio.bytes, targetChip: 'BK7231N', allowRaw: true });
  t.match(misnamed.warnings.join('\n'), /named UA but its content is a QIO image/);
  t.equal(misnamed.kind, 'ua', 'with allowRaw the name wins; the warning says why it may be wrong');

  const variant = classifyImage({ name: 'OpenBK7231N_QIO_1.18.42_tuyaMCU.bin', bytes: qio.bytes, targetChip: 'BK7231N' });
  t.match(variant, { variant: 'tuyaMCU' });
  t.match(variant.warnings.join('\n'), /without the BL0937 driver/);
  t.same(classifyImage({ name: 'OpenBK7231N_QIO_1.18.42_berry.bin', bytes: qio.bytes, targetChip: 'BK7231N' }).warnings, []);
});

t.test('content that contradicts the name, or an incomplete app, is refused (allowRaw: a warning)', async (t) => {
  const qio = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 3 });
  const ua = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 3 });
  const target = 'BK7231N' as const;
  const appBlocks = (qio.bytes.length - N.appOffset) / BLOCK_BYTES;

  // Cut at a CRC-block boundary: every block is valid, so no CRC warning; 78 % of the app is missing.
  const cutAtBlock = qio.bytes.subarray(0, N.appOffset + Math.floor(appBlocks * 0.22) * BLOCK_BYTES);
  t.same(scanBlocks(cutAtBlock, N.appOffset).invalid, 0, 'the cut file has no corrupt block');
  rejects(t, { name: qio.name, bytes: cutAtBlock, targetChip: target }, /app is incomplete: the file ends in code .*cut short/, 'QIO cut at a block boundary');
  rejects(t, { name: qio.name, bytes: qio.bytes.subarray(0, N.appOffset + 1000 * BLOCK_BYTES + 7), targetChip: target }, /app is incomplete/, 'QIO cut mid-block');
  rejects(t, { name: ua.name, bytes: ua.bytes.subarray(0, ua.bytes.length / 2), targetChip: target }, /app is incomplete/, 'UA cut in half');
  // Cut inside the trailing 0xFF padding: the code is whole, nothing is missing.
  t.ok(classifyImage({ name: qio.name, bytes: qio.bytes.subarray(0, qio.bytes.length - 5 * BLOCK_BYTES), targetChip: target }), 'cut inside the padding is accepted');

  rejects(t, { name: qio.name, bytes: ua.bytes, targetChip: target }, /named QIO but no 0xFF fill .* laid out like a UA image .*first 68 KiB would be dropped/, 'UA content named QIO');
  const bootloaderOnly = new Uint8Array(N.appOffset + 0x1000).fill(0xff);
  bootloaderOnly.set(qio.bytes.subarray(0, N.appOffset));
  bootloaderOnly.set(addBlockCrcs(new Uint8Array(32 * 100).fill(0xff)), N.appOffset); // padding blocks with valid CRCs
  rejects(t, { name: qio.name, bytes: bootloaderOnly, targetChip: target }, /named QIO but has no app code at 0x11000.*bootloader alone/, 'bootloader alone named QIO');
  rejects(t, { name: ua.name, bytes: qio.bytes, targetChip: target }, /named UA but its content is a QIO image/, 'QIO content named UA');

  const forced = classifyImage({ name: qio.name, bytes: cutAtBlock, targetChip: target, allowRaw: true });
  t.match(forced.warnings.join('\n'), /app is incomplete/, 'allowRaw writes it with the problem as a warning');
  t.equal(forced.bytesToWrite(false).bytes.length, cutAtBlock.length - N.appOffset);
});
