import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/** One slot flashed on the VirtualClock; the chip's app partition read from the sim side before and after. */
async function flashWithBackup(prepare?: (outDir: string, mac: string) => void) {
  const clock = new VirtualClock();
  const sim = startVirtualJig(JIG, { clock });
  const chip = sim.vj.slots.get(1)!.chip;
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
    });
    return { slot: slot!, outDir, mac, stock, after: chip.flash.read(APP_START, APP_BYTES).slice(), im };
  } finally {
    await sim.vj.dispose();
  }
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
