import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { parseJig } from '../rig/jig/jig-config.ts';
import { classifyImage } from '../firmware/image.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { runStation } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';

const JIG = parseJig(JSON.parse(readFileSync(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url), 'utf8')), 'virtual-1slot (test)');
const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;
// The BK7231N app partition (openbeken-http.md §6), written out here rather than taken from flash-layout.ts.
const APP_START = 0x11000;
const APP_BYTES = 0x119000;

function image(): { bytes: Uint8Array; offset: number; name: string } {
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 5, appBytes: 64 * 1024 });
  const plan = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' }).bytesToWrite(false);
  return { bytes: plan.bytes, offset: plan.offset, name: im.name };
}

/** flash-only plus `backup: app`, as a plan file of its own. */
function backupPlan(dir: string): string {
  const p = JSON.parse(readFileSync(join(PLANS, 'flash-only.json'), 'utf8')) as { suites: Array<Record<string, unknown>> };
  p.suites[0]!.backup = 'app';
  const path = join(dir, 'flash-backup.json');
  writeFileSync(path, JSON.stringify(p));
  return path;
}

/**
 * One slot flashed on the VirtualClock; the chip's app partition read from the sim side before and
 * after. `stockLibrary`: the station's stock dumps directory; `alter`: changes the unit's stock app
 * (sim side) before the run.
 */
async function flashWithBackup(prepare?: (outDir: string, mac: string) => void, o: { stockLibrary?: string; alter?: (chip: ReturnType<typeof chipOf>) => void } = {}) {
  const clock = new VirtualClock();
  const sim = startVirtualJig(JIG, { clock });
  const chip = chipOf(sim);
  o.alter?.(chip);
  const mac = [...chip.mac].map((b) => b.toString(16).padStart(2, '0')).join('');
  const stock = chip.flash.read(APP_START, APP_BYTES).slice();
  const outDir = mkdtempSync(join(tmpdir(), 'plugrig-backup-'));
  prepare?.(outDir, mac);
  const im = image();
  try {
    const [slot] = await runStation({
      jig: JIG,
      jigPath: 'virtual-1slot (test)',
      plan: loadPlan(backupPlan(outDir), PLANS),
      image: im,
      baudRate: 2_000_000,
      outDir,
      clock,
      log: createLogger({}, 'silent'),
      endpoints: sim.endpoints,
      ...(o.stockLibrary ? { stockLibrary: o.stockLibrary } : {}),
    });
    return { slot: slot!, outDir, mac, stock, after: chip.flash.read(APP_START, APP_BYTES).slice(), im };
  } finally {
    await sim.vj.dispose();
  }
}

function chipOf(sim: ReturnType<typeof startVirtualJig>) {
  return sim.vj.slots.get(1)!.chip;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

t.test('the flash suite keeps the stock app partition, read before anything is written', async (t) => {
  const r = await flashWithBackup();
  t.equal(r.slot.verdict, 'pass', `steps: ${r.slot.steps.map((s) => `${s.name}=${s.status}`).join('; ')}`);
  const name = `slot-1-backup-${r.mac}.bin`;
  const file = readFileSync(join(r.outDir, name));
  t.equal(file.length, APP_BYTES, 'the whole app partition');
  t.ok(Buffer.from(r.stock).equals(file), "the file is the chip's stock app partition, byte for byte");
  // The image did land (so the comparison means something), and none of it is in the backup.
  const at = r.im.offset - APP_START;
  const written = Buffer.from(r.after.subarray(at, at + r.im.bytes.length));
  t.ok(written.equals(Buffer.from(r.im.bytes)), 'the image is in flash after the run');
  t.notOk(Buffer.from(file.subarray(at, at + r.im.bytes.length)).equals(Buffer.from(r.im.bytes)), 'the written image is not in the backup');
  t.notOk(Buffer.from(r.after).equals(file), 'the backup is not the flashed partition');
  t.same(readdirSync(r.outDir).filter((f) => f.includes('.tmp-')), [], 'no temp file left');

  const record = JSON.parse(readFileSync(join(r.outDir, 'slot-1.json'), 'utf8')) as { unit: Record<string, unknown>; steps: Array<{ name: string; data?: Record<string, unknown> }> };
  const expected = { path: join(r.outDir, name), offset: APP_START, bytes: APP_BYTES, sha256: sha256(file) };
  t.same(record.unit.stockBackup, { region: 'app', ...expected }, 'the unit record names the file, its length and SHA-256');
  t.same(record.steps.find((s) => s.name.startsWith('flash'))?.data?.backup, expected, "and so does the flash step's data");
});

t.test('an existing backup file is never overwritten, and then nothing is written to the chip', async (t) => {
  const old = Buffer.from('an earlier stock dump of this unit\n');
  let path = '';
  const r = await flashWithBackup((dir, mac) => {
    path = join(dir, `slot-1-backup-${mac}.bin`);
    writeFileSync(path, old);
  });
  t.equal(r.slot.verdict, 'fail');
  const step = r.slot.steps.find((s) => s.name.startsWith('flash'));
  t.match(step?.error?.message, /already exists; refusing to overwrite/);
  t.ok(readFileSync(path).equals(old), 'the earlier dump is untouched');
  t.ok(Buffer.from(r.after).equals(Buffer.from(r.stock)), 'the chip still holds its stock app: the backup comes before the write');
  t.same(readdirSync(r.outDir).filter((f) => f.includes('.tmp-')), [], 'no temp file left');
});

t.test('the factory plan backs up the stock app partition', async (t) => {
  const plan = loadPlan('factory', PLANS).plan;
  const flash = plan.suites.find((s) => s.suite === 'flash');
  t.equal(flash && 'backup' in flash ? flash.backup : undefined, 'app');
});

interface Kept {
  path: string;
  sha256: string;
  source?: string;
  stored?: string;
}
const keptOf = (outDir: string): Kept => (JSON.parse(readFileSync(join(outDir, 'slot-1.json'), 'utf8')) as { unit: { stockBackup: Kept } }).unit.stockBackup;
const flashStepMs = (r: Awaited<ReturnType<typeof flashWithBackup>>): number => r.slot.steps.find((s) => s.name.startsWith('flash'))!.ms;
// Reading the 1.15 MB app partition at 2 Mbaud is at least 5.75 s of wire time (10 bits a byte): a
// step that much shorter did not read it.
const READ_WIRE_MS = (APP_BYTES * 10) / 2_000_000 * 1000;

t.test('with a station stock library, a unit whose stock app is stored already is matched by CRC, not read', async (t) => {
  const library = mkdtempSync(join(tmpdir(), 'plugrig-stock-lib-'));
  const first = await flashWithBackup(undefined, { stockLibrary: library });
  t.equal(first.slot.verdict, 'pass');
  const a = keptOf(first.outDir);
  t.equal(a.source, 'read', 'the first unit of this stock image is read over the ROM');
  t.same(readdirSync(library), [`stock-${APP_START.toString(16).padStart(8, '0')}-${APP_BYTES.toString(16).padStart(8, '0')}-${sha256(first.stock)}.bin`], 'and kept once in the library under its content name');

  const second = await flashWithBackup(undefined, { stockLibrary: library });
  t.equal(second.slot.verdict, 'pass', `steps: ${second.slot.steps.map((s) => `${s.name}=${s.status}`).join('; ')}`);
  const b = keptOf(second.outDir);
  t.equal(b.source, 'crc-match', 'the second unit (same stock app) is matched by the chip\'s CRCs');
  t.equal(b.sha256, sha256(second.stock), "the record names the stored dump by the unit's own content hash");
  t.equal(b.stored, a.stored, 'the same library file');
  t.ok(readFileSync(b.path).equals(Buffer.from(second.stock)), "the run directory's backup holds that unit's stock app, byte for byte");
  t.equal(statSync(b.path).ino, statSync(b.stored!).ino, 'as a second name of the library file (kept once)');
  t.equal(readdirSync(library).length, 1, 'nothing added to the library');
  t.ok(flashStepMs(first) - flashStepMs(second) > READ_WIRE_MS - 500, `the read was skipped: flash step ${flashStepMs(second)} ms vs ${flashStepMs(first)} ms`);
  t.ok(Buffer.from(second.after.subarray(second.im.offset - APP_START, second.im.offset - APP_START + second.im.bytes.length)).equals(Buffer.from(second.im.bytes)), 'and the image was written');
});

t.test('a unit whose stock app differs in one byte is read, and its own dump kept beside the first', async (t) => {
  const library = mkdtempSync(join(tmpdir(), 'plugrig-stock-lib-'));
  await flashWithBackup(undefined, { stockLibrary: library });
  // A byte in the second half (the half whose CRC would not see a change in the first, and back).
  const at = APP_START + APP_BYTES - 0x1234;
  const r = await flashWithBackup(undefined, { stockLibrary: library, alter: (chip) => chip.flash.load(at, Uint8Array.of(chip.flash.read(at, 1)[0]! ^ 0x01)) });
  t.equal(r.slot.verdict, 'pass');
  const k = keptOf(r.outDir);
  t.equal(k.source, 'read', 'no stored dump has its CRCs: read over the ROM');
  t.ok(readFileSync(k.path).equals(Buffer.from(r.stock)), "the backup is this unit's stock app (with its changed byte)");
  t.equal(readdirSync(library).length, 2, 'a second dump in the library');
  // And a change in the first half.
  const r2 = await flashWithBackup(undefined, { stockLibrary: library, alter: (chip) => chip.flash.load(APP_START + 0x100, Uint8Array.of(chip.flash.read(APP_START + 0x100, 1)[0]! ^ 0x80)) });
  t.equal(keptOf(r2.outDir).source, 'read', 'a change in the first half is read too');
  t.ok(readFileSync(keptOf(r2.outDir).path).equals(Buffer.from(r2.stock)), 'its own bytes');
});

t.test('a library file whose bytes no longer hash to its name is not believed: the unit is read', async (t) => {
  const library = mkdtempSync(join(tmpdir(), 'plugrig-stock-lib-'));
  await flashWithBackup(undefined, { stockLibrary: library });
  const [name] = readdirSync(library);
  const path = join(library, name!);
  const bytes = readFileSync(path);
  bytes[0x2000] ^= 0xff;
  writeFileSync(path, bytes);
  const r = await flashWithBackup(undefined, { stockLibrary: library });
  const k = keptOf(r.outDir);
  t.equal(k.source, 'read', 'read over the ROM');
  t.ok(readFileSync(k.path).equals(Buffer.from(r.stock)), "the backup is the chip's stock app, not the damaged file");
  t.equal(sha256(readFileSync(path)), name!.slice(-68, -4), 'the library file holds the bytes its name says again');
});
