import t from 'tap';
import { execa } from 'execa';
import { plugrigInProcess } from './fixtures/cli-in-process.ts';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FLASH_LAYOUTS } from '../firmware/flash-layout.ts';
import { BLOCK_BYTES } from '../firmware/crc-blocks.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';

/**
 * Bad input through the CLI: each refusal is one clear message and a distinct exit code, decided before
 * any port is opened or any file replaced. In-process (runCli with captured stdout/stderr, no node start
 * per case), but for the first case, which runs bin/plugrig.mjs in a child process as a user does.
 */
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-bad-'));
const NO_PORT = '/dev/ttyNOPE9';
const N = FLASH_LAYOUTS.BK7231N;

/**
 * PLUGRIG_LOG=info and TAP unset: the level a user gets, so log lines would show if they went to stderr.
 * NODE_OPTIONS cleared: tap's process-info hook is not the CLI's and only slows every start.
 */
const ENV = { PLUGRIG_LOG: 'info', TAP: '', NODE_OPTIONS: '' };
const spawned = (...args: string[]) =>
  execa('node', [BIN, ...args], { reject: false, env: ENV, timeout: 100_000, cwd: dir });
const plugrig = (...args: string[]) => plugrigInProcess(args, { env: { PLUGRIG_LOG: ENV.PLUGRIG_LOG }, cwd: dir });

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

const qio = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 1 });
const ua = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 1 });
const imageFile = join(dir, qio.name);
writeFileSync(imageFile, qio.bytes);

t.test('flash --backup onto the image itself is refused before linking; the image is untouched', async (t) => {
  const before = sha(imageFile);
  const r = await spawned('flash', imageFile, '--sim', '--sim-time', 'virtual', '--backup', imageFile);
  t.equal(r.exitCode, 2, r.stderr);
  t.match(r.stderr, /--backup .* is the image being flashed itself/);
  t.equal(sha(imageFile), before, 'the firmware image is not replaced by the chip dump');
  // Through another path to the same file (./name from the test dir) as well.
  const r2 = await plugrig('flash', imageFile, '--sim', '--sim-time', 'virtual', '--backup', `./${qio.name}`, '--overwrite');
  t.equal(r2.exitCode, 2, 'even --overwrite does not let the dump replace the image');
  t.equal(sha(imageFile), before);
});

t.test('backup onto an existing file is refused unless --overwrite', async (t) => {
  const stock = join(dir, 'stock.bin');
  writeFileSync(stock, 'the only stock dump');
  const r = await plugrig('backup', stock, '--sim', '--sim-time', 'virtual');
  t.equal(r.exitCode, 2, r.stderr);
  t.match(r.stderr, /stock\.bin already exists \(19 bytes\); refusing to overwrite it: name a new file or add --overwrite/);
  t.equal(readFileSync(stock, 'utf8'), 'the only stock dump', 'unchanged');
  const flashOnto = await plugrig('flash', imageFile, '--sim', '--sim-time', 'virtual', '--backup', stock);
  t.equal(flashOnto.exitCode, 2, 'flash --backup onto an existing file: refused too');
  t.equal(readFileSync(stock, 'utf8'), 'the only stock dump');

  const ok = await plugrig('backup', stock, '--sim', '--sim-time', 'virtual', '--overwrite', '--offset', '0x1D0000', '--length', '0x1000');
  t.equal(ok.exitCode, 0, ok.stderr);
  t.equal(readFileSync(stock).length, 0x1000, 'with --overwrite (and upper-case hex offsets) the dump replaces it');
});

t.test('images whose content contradicts the name, or whose app is incomplete, are refused (exit 3); --raw writes them', async (t) => {
  const appBlocks = (qio.bytes.length - N.appOffset) / BLOCK_BYTES;
  const cut = join(dir, 'cut', qio.name);
  mkdirSync(join(dir, 'cut'));
  writeFileSync(cut, qio.bytes.subarray(0, N.appOffset + Math.floor(appBlocks * 0.22) * BLOCK_BYTES));
  const uaAsQio = join(dir, 'ua', qio.name);
  mkdirSync(join(dir, 'ua'));
  writeFileSync(uaAsQio, ua.bytes);
  const bootOnly = join(dir, 'boot', qio.name);
  mkdirSync(join(dir, 'boot'));
  const boot = new Uint8Array(N.appOffset + 0x1000).fill(0xff);
  boot.set(qio.bytes.subarray(0, N.appOffset));
  writeFileSync(bootOnly, boot);

  for (const [file, message] of [
    [cut, /app is incomplete: the file ends in code/],
    [uaAsQio, /named QIO but no 0xFF fill .*first 68 KiB would be dropped/],
    [bootOnly, /(no app code at 0x11000|app area is empty)/],
  ] as const) {
    const r = await plugrig('flash', file, '--sim', '--sim-time', 'virtual', '--json');
    t.equal(r.exitCode, 3, `${file}: exit 3 (unusable image)`);
    t.match(r.stderr, message);
    t.notMatch(r.stdout, /"write"/, 'nothing written');
  }
  const forced = await plugrig('flash', cut, '--sim', '--sim-time', 'virtual', '--raw', '--json');
  t.equal(forced.exitCode, 0, forced.stderr);
  t.match(JSON.parse(forced.stdout), { image: { warnings: [/app is incomplete/] } }, '--raw is the explicit way out, with the warning');
});
