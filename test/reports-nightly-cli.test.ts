import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { fixtureRecords } from './fixtures/reports/load.ts';
import { replayIntoStore } from './fixtures/reports/replay.ts';
import { exitCodeOf } from '../cli/failure.ts';
import { plugrigInProcess } from './fixtures/cli-in-process.ts';

/**
 * `plugrig nightly` end to end on the virtual 1-slot jig with the flash-only plan (the shortest real
 * run), one night, against a store that already holds "last night": a recorded factory run of the same
 * firmware under the nightly variant's plan name. Tonight's flash time is compared with it; the three
 * measurements last night had and tonight's plan does not take are reported as worse, exit 12 (`worse`,
 * its own class: not 10, which says plugrig has a bug).
 * What counts as worse is tested on recorded runs in reports-json-nightly. The night runs bin/plugrig.mjs
 * in a child process (exit 12 is the process's); the refused matrix runs in-process (runCli).
 */
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-nightly-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const matrix = join(dir, 'mini-nightly.json');
writeFileSync(matrix, JSON.stringify({ schema: 'plugrig.nightly/1', name: 'mini-nightly', plan: join(ROOT, 'fixtures/plans/flash-only.json'), jig: join(ROOT, 'fixtures/jigs/virtual-1slot.json'), firmware: [{ version: '1.18.42' }] }));
const store = join(dir, 'store.sqlite');
const lastNight = fixtureRecords('factory-1slot').map((r) => ({ ...r, run: { ...r.run!, plan: { ...r.run!.plan, name: 'nightly-flash-only' } } }));
const lastRun = await replayIntoStore(store, lastNight);

t.test('a night compared with the previous one from the store, per measurement; exit 12 (worse) when worse', async (t) => {
  const r = await execa('node', [BIN, 'nightly', '--plan', matrix, '--compare', 'last', '--store', store, '--out', join(dir, 'night')], { reject: false, env: { PLUGRIG_LOG: 'silent' }, timeout: 100_000 });
  t.equal(r.exitCode, 12, r.stderr);
  t.equal(r.exitCode, exitCodeOf('worse'), 'the README class `worse`');
  t.not(r.exitCode, exitCodeOf('internal'), 'a night that got worse is not a bug in plugrig');
  t.notMatch(r.stderr, /internal error/);
  t.match(r.stdout, /nightly-flash-only @ 1\.18\.42: running on .*virtual-1slot\.json/);
  t.match(r.stdout, /run [0-9a-f-]{36} {2}nightly-flash-only @ 1\.18\.42: 1 of 1 unit\(s\) passed/);
  for (const id of ['mainsVoltage', 'loadPower', 'powerFactor']) t.match(r.stdout, new RegExp(`WORSE {2}nightly-flash-only @ 1\\.18\\.42 {2}[^\\n]* / ${id}: no longer measured \\(1 value\\(s\\) -> none\\)`));
  t.notMatch(r.stdout, /flashTime:/, 'the flash time, measured both nights, did not get worse');
  t.match(r.stdout, /3 regression\(s\) in 4 measurement\(s\) compared/);
  const result = JSON.parse(readFileSync(join(dir, 'night', 'nightly.json'), 'utf8')) as { runs: string[]; previous: string[] };
  t.same(result.previous, [lastRun], 'the previous night is the stored run of the same variant and firmware');
  t.ok(existsSync(join(dir, 'night', '1.18.42', 'report.html')), 'the run wrote its reports');

  const bad = await plugrigInProcess(['nightly', '--plan', join(ROOT, 'fixtures/plans/factory.json'), '--store', store, '--out', join(dir, 'night-x')], { env: { PLUGRIG_LOG: 'silent' } });
  t.equal(bad.exitCode, 2);
  t.match(bad.stderr, /nightly matrix .*factory\.json: schema: Invalid literal value, expected "plugrig\.nightly\/1"/);
  t.notOk(existsSync(join(dir, 'night-x')), 'a refused matrix leaves no directory');
});
