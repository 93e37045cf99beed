import t from 'tap';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

/** The CLI and test runner as the README tells a user to run them. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = `${ROOT}bin/plugrig.mjs`;
const ENV = { PLUGRIG_LOG: 'info', TAP: '', NODE_OPTIONS: '' };

t.test('jig check --sim runs the virtual twin of a real jig file', async (t) => {
  const file = 'fixtures/jigs/example-arduino-pzem-dcttech.json';
  const r = await execa('node', [BIN, 'jig', 'check', file, '--sim', '--json'], { reject: false, env: ENV, cwd: ROOT, timeout: 90_000 });
  t.equal(r.exitCode, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { virtual: boolean; passed: boolean; rows: Array<{ check: string; ok: boolean; detail: string }> };
  t.ok(j.virtual, 'ran on the virtual jig');
  t.ok(j.passed);
  t.match(j.rows.find((x) => x.check === 'I/O board mega')?.detail, /StandardFirmata handshake/, "the file's board name, now a virtual board");
  // The file binds slot 1 by USB path 1-1.2: the twin keeps it (a virtual CH340 there), as run --sim does.
  t.match(j.rows.find((x) => x.check.startsWith('UART + '))?.detail, /^sim:ttyUSB0 \(USB path 1-1\.2, CH340\), .*bootloader answered/);
  t.match(j.rows.find((x) => x.check === 'meter pzem')?.detail, /PZEM-004T-V3-0001/, "the file's meter, with its serial");
});

t.test('npm test with no matching test file is a failure, not "0 passed, 0 failed"', async (t) => {
  const r = await execa('node', ['scripts/run-tests.mjs', '--no-typecheck', 'test/no-such-file.test.ts'], { reject: false, cwd: ROOT, env: { NODE_OPTIONS: '' }, timeout: 90_000 });
  t.equal(r.exitCode, 1);
  const last = r.stdout.trim().split('\n').at(-1);
  t.equal(last, '0 passed, 1 failed');
  t.match(r.stdout, /no test ran: no test file matched "test\/no-such-file\.test\.ts"/);
});
