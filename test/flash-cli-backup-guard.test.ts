import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `plugrig flash --backup FILE` hands its CRC-checked dump to the outside-image guard, as the
 * factory flash suite does: a stray write into the stock app outside the image (the virtual chip's
 * `strayWrites` fault: the 3rd FlashWrite4K lands 1 MiB away, at 0x113000) is restored from it.
 * Without a backup the same stray write fails the flash, naming the region.
 */
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const plugrig = (...args: string[]) => execa('node', [BIN, ...args], { reject: false, env: { PLUGRIG_LOG: 'silent' }, timeout: 120_000 });
const STRAY = JSON.stringify({ strayWrites: [{ nth: 3, addressXor: 0x100000 }] });

const dir = mkdtempSync(join(tmpdir(), 'plugrig-flash-guard-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const image = join(dir, 'app.bin');
writeFileSync(image, Uint8Array.from({ length: 0x10000 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));
const common = [image, '--offset', '0x11000', '--sim', '--sim-time', 'virtual', '--sim-faults', STRAY, '--json'];

t.test('with --backup: the stray write is restored from the backup, exit 0', async (t) => {
  const backup = join(dir, 'stock.bin');
  const r = await plugrig('flash', ...common, '--backup', backup);
  t.equal(r.exitCode, 0, `exit 0 (stderr: ${r.stderr.trim() || 'empty'})`);
  const out = JSON.parse(r.stdout) as { write: { outsideRestored: { region: string; start: number; source: string; sectors: number[] }[] }; backup: { bytes: number } };
  t.same(
    out.write.outsideRestored.map((x) => ({ region: x.region, start: x.start, source: x.source, sectors: x.sectors })),
    [{ region: 'app', start: 0x110000, source: 'copy', sectors: [0x113000] }],
    'one range restored (the 64 KiB range around the stray sector, only that sector rewritten), from the copy',
  );
  t.equal(out.backup.bytes, 0x200000, 'the whole flash was backed up');
  t.equal(readFileSync(backup).length, 0x200000, 'backup file written');
  t.notOk('data' in out.backup, 'the dump itself is not printed');
});

t.test('without --backup: the same stray write fails the flash naming the region, exit 6', async (t) => {
  const r = await plugrig('flash', ...common);
  t.equal(r.exitCode, 6, 'flash class');
  const out = JSON.parse(r.stdout) as { error: { class: string; message: string } };
  t.equal(out.error.class, 'E_FLASH');
  t.match(out.error.message, /app range 0x110000\.\.0x120000 .*cannot be restored: no copy/, out.error.message);
});

t.test('--sim-faults is checked before anything is opened', async (t) => {
  const bad = await plugrig('flash', image, '--offset', '0x11000', '--sim', '--sim-faults', '{"strayWrites":[{"nth":0,"addressXor":1}]}', '--json');
  t.equal(bad.exitCode, 2);
  t.match(JSON.parse(bad.stdout).error.message, /--sim-faults\.strayWrites\.0\.nth/);
  const noSim = await plugrig('flash', image, '--offset', '0x11000', '--port', '/dev/null', '--sim-faults', STRAY);
  t.equal(noSim.exitCode, 2);
  t.match(noSim.stderr, /--sim-faults applies to the virtual chip only/);
});
