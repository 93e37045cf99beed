import t from 'tap';
import { execa } from 'execa';
import { plugrigInProcess } from './fixtures/cli-in-process.ts';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSyntheticImage } from '../firmware/synthetic.ts';

/**
 * Bad arguments through the CLI: each refusal is one clear message and a distinct exit code, decided
 * before any port is opened or any file replaced. The cases run the CLI in-process (runCli, captured
 * stdout/stderr: no node start per case); one runs bin/plugrig.mjs in a child process, as a user does,
 * for the exit status and stderr of the process itself.
 */
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-args-'));
const NO_PORT = '/dev/ttyNOPE9';

/**
 * PLUGRIG_LOG=info and TAP unset: the level a user gets, so log lines would show if they went to stderr.
 * NODE_OPTIONS cleared: tap's process-info hook is not the CLI's and only slows every start.
 */
const ENV = { PLUGRIG_LOG: 'info', TAP: '', NODE_OPTIONS: '' };
const spawned = (...args: string[]) =>
  execa('node', [BIN, ...args], { reject: false, env: ENV, timeout: 100_000, cwd: dir });
const plugrig = (...args: string[]) => plugrigInProcess(args, { env: { PLUGRIG_LOG: ENV.PLUGRIG_LOG }, cwd: dir });

const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

/** Every case's result, in case order (plugrigInProcess runs them one after another). */
function allCases<C, R>(cases: readonly C[], run: (c: C) => Promise<R>): Promise<R[]> {
  return Promise.all(cases.map(run));
}

const qio = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 1 });
const imageFile = join(dir, qio.name);
writeFileSync(imageFile, qio.bytes);

t.test('numbers are validated before a port is opened', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['flash', imageFile, '--port', NO_PORT, '--baud', '12345'], /--baud 12345 is not a rate .*use one of 115200, 230400, 460800, 921600, 1000000, 1500000, 2000000, 3000000/],
    [['backup', join(dir, 'b1.bin'), '--port', NO_PORT, '--baud', '12345'], /--baud 12345 is not a rate/],
    [['backup', join(dir, 'b2.bin'), '--port', NO_PORT, '--baud', 'abc'], /--baud is not a number; use one of 115200/],
    [['info', '--port', NO_PORT, '--baud', '0'], /--baud 0 is not a rate/],
    [['info', '--port', NO_PORT, '--baud', 'abc'], /--baud is not a number/],
    [['run', '--sim', '--baud', '12345', '--out', join(dir, 'run-baud')], /--baud 12345 is not a rate/],
    [['meter', 'read', 'x.json', '--count', 'abc'], /--count is not a number/],
    [['meter', 'read', 'x.json', '--count', '0'], /--count 0 is not a whole number ≥ 1/],
  ];
  const results = await allCases(cases, ([args]) => plugrig(...args));
  for (const [k, [args, message]] of cases.entries()) {
    const r = results[k]!;
    t.equal(r.exitCode, 2, `plugrig ${args.join(' ')}: exit 2, not a port error (4)`);
    t.match(r.stderr, message, `plugrig ${args.join(' ')}: message`);
    t.equal(lines(r.stderr).length, 1, 'one line');
  }
  t.notOk(existsSync(join(dir, 'run-baud')), 'a refused run creates no run directory');

  // The write range is the flasher's own check, made before the port opens: with --offset a bad argument (2).
  const unaligned = await spawned('flash', imageFile, '--port', NO_PORT, '--offset', '0x11800');
  t.equal(lines(unaligned.stderr).length, 1, 'the process prints one line on its stderr');
  t.equal(unaligned.exitCode, 2, unaligned.stderr);
  t.match(unaligned.stderr, /offset 0x11800 is not 4 KiB aligned/);
  const rf = await plugrig('flash', imageFile, '--port', NO_PORT, '--offset', '0x1D0000');
  t.equal(rf.exitCode, 2, 'upper-case hex parsed; the RF sector refused before the port (not exit 4)');
  // A 1 MiB image at 0x1D0000 also runs past the 2 MiB flash, which is judged first.
  t.match(rf.stderr, /--offset 0x1D0000: (refusing to write RF calibration \(MAC\) region 0x1d0000\.\.0x1d1000|image 0x1d0000\+0x1079dc exceeds the 0x200000-byte flash)/);
});

t.test('run --out and image make: unusable output places are configuration errors (exit 2), before any hardware', async (t) => {
  const aFile = join(dir, 'a-file');
  writeFileSync(aFile, 'x');
  const used = join(dir, 'old-run');
  mkdirSync(used);
  writeFileSync(join(used, 'slot-1.json'), '{}');
  const cases: Array<[string[], RegExp]> = [
    [['run', '--sim', '--out', '/proc/plugrig-x'], /--out \/proc\/plugrig-x is on the proc pseudo file system/],
    [['run', '--sim', '--out', aFile], /--out .*a-file is a file, not a directory/],
    [['run', '--sim', '--out', join(aFile, 'sub')], /--out .*a-file\/sub: cannot create the directory \(a parent is a file\)/],
    [['run', '--sim', '--out', used], /--out .*old-run already holds 1 file\(s\) \(slot-1\.json\); a run directory holds one batch/],
    [['image', 'make', aFile], /image make .*a-file is a file, not a directory/],
  ];
  const results = await allCases(cases, ([args]) => plugrig(...args));
  for (const [k, [args, message]] of cases.entries()) {
    const r = results[k]!;
    t.equal(r.exitCode, 2, `plugrig ${args.join(' ')}: exit 2`);
    t.match(r.stderr, message);
    t.notMatch(r.stderr, /internal error/);
  }
  t.same(readdirSync(used), ['slot-1.json'], 'the old batch is left alone');
});
