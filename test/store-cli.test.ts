import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SqliteStore } from '../rig/store/sqlite-store.ts';
import { fixtureRun, macOf } from './store-run-fixture.ts';
import { plugrigInProcess } from './fixtures/cli-in-process.ts';

// The store's CLI, in-process (runCli with captured stdout/stderr, as a user would see them): history
// from a store the runner wrote, and the refusals of bad --store / --forward arguments before anything
// is created.
const dir = mkdtempSync(join(tmpdir(), 'plugrig-store-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
// PLUGRIG_LOG=info: the level a user gets, so log lines would show if they went to stderr.
const plugrig = (...args: string[]) => plugrigInProcess(args, { env: { PLUGRIG_LOG: 'info' }, cwd: dir });

const path = join(dir, 'plugrig.sqlite');
const runIds: string[] = [];
t.before(async () => {
  const store = SqliteStore.open(path);
  for (const [i, relayFails] of [true, false].entries()) {
    const f = await fixtureRun({ store, seed: 70 + i, stationId: 'station-cli', units: [{ slot: 2, mac: macOf(0x42), serial: 'SN-42', relayFails }], startedAt: `2026-11-30T0${8 + i}:00:00.000Z` });
    runIds.push(f.run.runId);
  }
  store.close();
});

t.test('history by MAC or serial, as text and JSON', async (t) => {
  const [text, json] = await Promise.all([plugrig('history', macOf(0x42).toUpperCase(), '--store', path), plugrig('history', 'SN-42', '--store', path, '--json')]);
  t.equal(text.exitCode, 0, text.stderr);
  const lines = text.stdout.split('\n');
  t.match(lines[0], /^unit C8:47:8C:00:00:42: 2 run\(s\) in /);
  t.match(text.stdout, new RegExp(`FAIL +station station-cli slot 2 .*\\n    run ${runIds[0]}\\n    FAIL  button toggles the relay`));
  t.match(text.stdout, new RegExp(`PASS +station station-cli slot 2 .*serial SN-42\\n    run ${runIds[1]}`));
  t.equal(json.exitCode, 0, json.stderr);
  const out = JSON.parse(json.stdout) as { unit: string; entries: Array<{ runId: string; verdict: string; mac: string }> };
  t.same(out.entries.map((e) => [e.runId, e.verdict, e.mac]), [[runIds[0], 'fail', macOf(0x42)], [runIds[1], 'pass', macOf(0x42)]]);
});

t.test('an unknown unit, a missing store, a directory: one clear message, exit code != 0, nothing created', async (t) => {
  const missing = join(dir, 'nope', 'plugrig.sqlite');
  mkdirSync(join(dir, 'adir'));
  const [unknown, none] = await Promise.all([plugrig('history', 'SN-404', '--store', path), plugrig('history', 'SN-42', '--store', missing)]);
  const [isDir, badForward] = await Promise.all([
    plugrig('history', 'SN-42', '--store', join(dir, 'adir')),
    plugrig('run', '--sim', '--out', join(dir, 'run-fwd'), '--forward', 'http://example.invalid/db'),
  ]);
  writeFileSync(join(dir, 'text.sqlite'), 'not a database: a text file someone named .sqlite\n'.repeat(20));
  const [procStore, notDb] = await Promise.all([plugrig('run', '--sim', '--out', join(dir, 'run-proc'), '--store', '/proc/plugrig.sqlite'), plugrig('history', 'SN-42', '--store', join(dir, 'text.sqlite'))]);
  t.equal(unknown.exitCode, 1);
  t.equal(unknown.stderr, `plugrig: no unit with MAC or serial SN-404 in ${path}`);
  t.equal(none.exitCode, 2);
  t.match(none.stderr, /--store .*nope\/plugrig\.sqlite: no store there/);
  t.notOk(existsSync(missing), 'reading never creates a store');
  t.equal(isDir.exitCode, 2);
  t.match(isDir.stderr, /--store .*adir is a directory; name the store file/);
  t.equal(badForward.exitCode, 2);
  t.match(badForward.stderr, /--forward http:\/\/example\.invalid\/db: not a postgres:\/\/ URL/);
  t.notOk(existsSync(join(dir, 'run-fwd')), 'the refused run left no directory');
  t.equal(procStore.exitCode, 2);
  t.match(procStore.stderr, /--store \/proc\/plugrig\.sqlite is on the proc pseudo file system/);
  t.notOk(existsSync(join(dir, 'run-proc')));
  t.notOk(existsSync(join(dir, 'runs')), 'no default store either');
  t.equal(notDb.exitCode, 2);
  t.match(notDb.stderr, /cannot use .*text\.sqlite as a plugrig store: file is not a database/);
  for (const r of [unknown, none, isDir, badForward, procStore, notDb]) t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});
