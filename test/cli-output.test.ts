import t from 'tap';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser } from 'tap-parser';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { LongCommand } from '../rig/bk7231/protocol/commands.ts';

/**
 * What the CLI prints where, as a user runs it (bin/plugrig.mjs in a child process): stderr holds one
 * message (log lines only with --verbose or in a file), --json failures are JSON on stdout, and an
 * interrupted flash says what it left on the chip.
 */
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-out-'));

/** PLUGRIG_LOG=info and TAP unset: the level a user gets, so log lines would show if they went to stderr. */
const ENV = { PLUGRIG_LOG: 'info', TAP: '', NODE_OPTIONS: '' };
const plugrig = (...args: string[]) => execa('node', [BIN, ...args], { reject: false, env: ENV, timeout: 100_000, cwd: dir });
const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

function parseTap(text: string): Promise<{ ok: boolean; planned: boolean }> {
  return new Promise((resolve) => {
    const p = new Parser((r) => resolve({ ok: r.ok, planned: typeof r.plan.end === 'number' }));
    p.end(text);
  });
}

const qio = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 1 });
const imageFile = join(dir, qio.name);
writeFileSync(imageFile, qio.bytes);

t.test('stderr holds one message, no log lines; --verbose shows them; --json failures are JSON on stdout', async (t) => {
  // No LinkCheck reply (reset none on a chip in its app): the flasher logs a warning per reset attempt.
  const r = await plugrig('info', '--sim', '--sim-time', 'virtual', '--reset', 'none');
  t.equal(r.exitCode, 5, r.stderr);
  t.same(lines(r.stderr).filter((l) => l.startsWith('{')), [], 'no JSON log line on stderr');
  t.match(lines(r.stderr).at(-1), /^plugrig: no reply to LinkCheck/);

  const v = await plugrig('info', '--sim', '--sim-time', 'virtual', '--reset', 'none', '--verbose');
  t.equal(v.exitCode, 5);
  t.ok(lines(v.stderr).some((l) => l.startsWith('{') && /resetting again/.test(l)), '--verbose puts the log lines on stderr');

  const logFile = join(dir, 'info.log');
  const f = await plugrig('info', '--sim', '--sim-time', 'virtual', '--reset', 'none', '--log-file', logFile);
  t.equal(f.exitCode, 5);
  t.match(readFileSync(logFile, 'utf8'), /resetting again/, '--log-file collects them');

  const j = await plugrig('flash', join(dir, 'missing.bin'), '--sim', '--json');
  t.equal(j.exitCode, 3);
  t.match(JSON.parse(j.stdout), { error: { class: 'E_IMAGE', exitCode: 3, message: /cannot read image .*missing\.bin: no such file/ } });
  const u = await plugrig('frobnicate', '--json');
  t.equal(u.exitCode, 2);
  t.match(JSON.parse(u.stdout), { error: { class: 'usage', exitCode: 2 } });
});

t.test('run writes its log into the run directory', async (t) => {
  const out = join(dir, 'run-log');
  const r = await plugrig('run', '--sim', '--jig', new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname, '--plan', 'smoke', '--out', out, '--json');
  t.equal(r.exitCode, 0, r.stderr);
  t.same(lines(r.stderr).filter((l) => l.startsWith('{')), [], 'no log lines on stderr');
  t.ok(existsSync(join(out, 'plugrig.log')), 'plugrig.log in the run directory');
});

t.test('SIGINT during a flash: says what state the chip is in, exits 130, leaves a valid TAP file', async (t) => {
  const tapFile = join(dir, 'interrupted.tap');
  const logFile = join(dir, 'interrupted.log');
  // 115200 baud in real time: the 1 MiB write takes over a minute, so the signal lands in it. It goes
  // once the first Write4K frame left the host (the trace log's tx lines, long frame "01 e0 fc ff f4
  // <len> <cmd>"): by then every erase is done and the region's old content is gone. Waiting on that
  // line instead of a fixed delay: on a loaded machine the blank-sector survey before the erases
  // outlasted 1.5 s, and the signal landed in the survey ("the flash is unchanged").
  const child = execa('node', [BIN, 'flash', imageFile, '--sim', '--baud', '115200', '--tap', tapFile, '--log-file', logFile], {
    reject: false,
    env: { ...ENV, PLUGRIG_LOG: 'trace' },
    timeout: 100_000,
  });
  const write4k = new RegExp(`"tx":"01 e0 fc ff f4 [0-9a-f]{2} [0-9a-f]{2} ${LongCommand.FlashWrite4K.toString(16).padStart(2, '0')} `);
  const deadline = Date.now() + 80_000;
  let writing = false;
  while (!writing && child.exitCode === null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    writing = existsSync(logFile) && write4k.test(readFileSync(logFile, 'utf8'));
  }
  t.ok(writing, 'the flash reached its first sector write');
  child.kill('SIGINT');
  const r = await child;
  t.equal(r.exitCode, 130, 'exit 130');
  t.match(r.stderr, /plugrig: interrupted by SIGINT during the (erase|write)[^\n]*: the region 0x11000\.\.0x[0-9a-f]+ is incomplete and will not boot; re-flash it/);
  const tap = await parseTap(readFileSync(tapFile, 'utf8'));
  t.ok(tap.planned, 'the TAP file has its plan');
  t.notOk(tap.ok, 'and reads as failed');
  t.match(readFileSync(tapFile, 'utf8'), /not ok \d+ - interrupted by SIGINT/);
});
