import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser } from 'tap-parser';
import { plugrigInProcess } from './fixtures/cli-in-process.ts';

/**
 * The CLI in-process (runCli with captured stdout/stderr: no node start per command), but for
 * two bad-input cases, which run bin/plugrig.mjs in a child process as a user does, for the process's own
 * exit status and stderr.
 */
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-cli-'));
const spawned = (...args: string[]) => execa('node', [BIN, ...args], { reject: false, env: { PLUGRIG_LOG: 'silent' }, timeout: 120_000 });
const plugrig = (...args: string[]) => plugrigInProcess(args, { env: { PLUGRIG_LOG: 'silent' } });

function parseTap(text: string): Promise<{ ok: boolean; pass: number; fail: number }> {
  return new Promise((resolve) => {
    const p = new Parser((r) => resolve({ ok: r.ok, pass: r.pass, fail: r.fail }));
    p.end(text);
  });
}

t.test('run --sim: the station job passes on the virtual jig and leaves TAP + unit records', async (t) => {
  const out = join(dir, 'run');
  const r = await plugrig('run', '--sim', '--jig', new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname, '--plan', 'smoke', '--json', '--out', out);
  t.equal(r.exitCode, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { passed: number; failed: number; slots: Array<{ slot: number; passed: boolean; mac: string; tap: string }> };
  t.equal(j.passed, 1, "the one slot of the jig file given (the 4-slot default is run by the README command)");
  t.equal(j.failed, 0);
  t.match(j.slots[0]!.mac, /^c8:47:8c:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
  const tap = await parseTap(readFileSync(j.slots[0]!.tap, 'utf8'));
  t.ok(tap.ok, 'TAP report parses and passes');
  t.ok(tap.pass >= 7, 'one point per step');
  const record = JSON.parse(readFileSync(join(out, 'slot-1.json'), 'utf8')) as { complete: boolean; steps: Array<{ measurements: Array<{ name: string; value: number }> }> };
  t.ok(record.complete, 'the unit record is complete');
  const power = record.steps.flatMap((s) => s.measurements).find((m) => m.name === 'load power');
  t.ok(power && power.value > 20 && power.value < 30, 'reference meter saw the 25 W load');
});

t.test('jig check on the virtual jig: every check ok, mains never switched', async (t) => {
  const r = await plugrig('jig', 'check', 'fixtures/jigs/virtual-1slot.json', '--json');
  t.equal(r.exitCode, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { passed: boolean; rows: Array<{ check: string; ok: boolean; detail: string }> };
  t.ok(j.passed);
  t.match(j.rows.find((x) => x.check === 'mains relay')?.detail, /never switched/);
  t.match(j.rows.find((x) => x.check.startsWith('UART + reset'))?.detail, /bootloader answered/);
});

t.test('flash --sim (virtual time) then info agree on the chip; a backup is a whole 2 MiB file', async (t) => {
  const made = await plugrig('image', 'make', dir, '--json');
  t.equal(made.exitCode, 0, made.stderr);
  const image = (JSON.parse(made.stdout) as { file: string }).file;
  const backup = join(dir, 'backup.bin');
  const tapFile = join(dir, 'flash.tap');
  const r = await plugrig('flash', image, '--sim', '--sim-time', 'virtual', '--backup', backup, '--tap', tapFile, '--json');
  t.equal(r.exitCode, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { chip: { chip: string; protected: boolean }; write: { sectorsWritten: number; offset: string } };
  t.equal(j.chip.chip, 'BK7231N');
  t.equal(j.write.offset, '0x11000', 'QIO written from 0x11000: bootloader kept');
  t.ok(j.write.sectorsWritten > 200);
  t.equal(readFileSync(backup).length, 2 * 1024 * 1024);
  t.ok((await parseTap(readFileSync(tapFile, 'utf8'))).ok);
});

t.test('bad input: one clear message, a distinct exit code, no stack trace', async (t) => {
  const cases: Array<[string[], number, RegExp]> = [
    [['flash', join(dir, 'missing.bin'), '--sim'], 3, /cannot read image .*missing\.bin: no such file/],
    [['flash', 'package.json', '--sim', '--baud', '12345'], 2, /--baud 12345 is not a rate/],
    [['flash', 'package.json', '--port', '/dev/ttyNOPE9'], 3, /package\.json/],
    [['info', '--port', '/dev/ttyNOPE9'], 4, /serial port \/dev\/ttyNOPE9 does not exist/],
    [['info'], 2, /no target: give --port/],
    [['frobnicate'], 2, /Unknown argument|Unknown command|Did you mean/],
  ];
  const badJig = join(dir, 'bad-jig.json');
  writeFileSync(badJig, JSON.stringify({ name: 'x', ioBoards: {}, meters: {}, slots: [{ id: 1 }] }));
  cases.push([['jig', 'check', badJig], 2, /invalid jig file .*bad-jig\.json:\n\s+slots\.0\.uart: Required/]);
  for (const [k, [args, code, message]] of cases.entries()) {
    const r = await (k === 1 || k === 3 ? spawned : plugrig)(...args);
    t.equal(r.exitCode, code, `plugrig ${args.join(' ')} exits ${code}`);
    t.match(r.stderr, message, `plugrig ${args.join(' ')}: message`);
    t.notMatch(r.stderr, /\n\s+at .*\.ts:\d+/, 'no stack trace');
  }
  t.notOk(existsSync(join(dir, 'backup-half.bin')));
});
