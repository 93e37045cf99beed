import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { PostgresStore } from '../rig/store/postgres-store.ts';
import { usePgServer } from './store-pg-server.ts';

// The central store selected by the station config's URL, as a user runs it: `plugrig run --station`
// stores the run under the config's station and forwards at the end (here into an outage: the units
// wait in the outbox), then `plugrig forward --station` pushes them on demand, idempotently.
const { bin, dir, server } = usePgServer(t, { skipWhy: 'the central store tests', tmpPrefix: 'plugrig-forward-cli-' });

const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const JIG = new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname;
const ENV = { PLUGRIG_LOG: 'silent', TAP: '', NODE_OPTIONS: '', PGPASSWORD: '' };
const plugrig = (...args: string[]) => execa('node', [BIN, ...args], { reject: false, env: ENV, timeout: 100_000, cwd: dir });

const store = join(dir, 'station.sqlite');
const config = join(dir, 'station.json');

if (bin) t.test('run --station stores under the config station; forward pushes the outbox once, and says what it sent', async (t) => {
  writeFileSync(config, JSON.stringify({ schema: 'plugrig.station/1', id: 'line9-st01', name: 'Line 9, station 1', line: 'line-9', central: server.url }));
  server.stop(); // the central store is down while the station runs
  const run = await plugrig('run', '--sim', '--jig', JIG, '--plan', 'flash-only', '--station', config, '--store', store, '--out', join(dir, 'run-1'));
  t.equal(run.exitCode, 0, `the run passes though the central store is down: ${run.stderr}`);
  t.match(run.stdout, /forwarded 0 unit\(s\) to postgres:\/\/plugrig@127\.0\.0\.1:\d+\/postgres \(stopped: /, 'the run says its forward stopped');
  server.start();

  const first = await plugrig('forward', '--station', config, '--store', store);
  t.equal(first.exitCode, 0, first.stderr);
  t.equal(first.stdout, `forwarded 1 unit(s) to ${server.url}; 1 run status(es) sent; 0 unit(s) still in the outbox (unfinished)`);
  const again = await plugrig('forward', '--station', config, '--store', store, '--json');
  t.equal(again.exitCode, 0, again.stderr);
  t.match(JSON.parse(again.stdout), { to: server.url, forwarded: 0, alreadyThere: 0, runs: 0, pending: 0 }, 'a second forward sends nothing');

  const pg = await PostgresStore.open(server.url);
  t.teardown(() => pg.close());
  const q = async (sql: string): Promise<unknown[]> => (await pg.pool.query(sql)).rows;
  t.same(await q('SELECT station_id, name, line FROM stations'), [{ station_id: 'line9-st01', name: 'Line 9, station 1', line: 'line-9' }], "the config's station");
  t.same(await q("SELECT status, station_id FROM runs"), [{ status: 'finished', station_id: 'line9-st01' }]);
  t.same(await q('SELECT slot, complete, verdict FROM units'), [{ slot: 1, complete: 1, verdict: 'pass' }], 'the unit, once');
  const [steps] = (await q('SELECT CAST(COUNT(*) AS INTEGER) AS n FROM steps')) as Array<{ n: number }>;
  t.ok(steps!.n > 0, `with its ${steps!.n} steps`);
});

if (bin) t.test('forward refusals and failures: one clear message, their class, no password shown', async (t) => {
  const noCentral = join(dir, 'no-central.json');
  writeFileSync(noCentral, JSON.stringify({ schema: 'plugrig.station/1', id: 'line9-st02', name: 'Line 9, station 2' }));
  const withPassword = join(dir, 'with-password.json');
  writeFileSync(withPassword, JSON.stringify({ schema: 'plugrig.station/1', id: 'line9-st03', name: 'x', central: 'postgres://plugrig:hunter2@127.0.0.1:1/x' }));
  const [missing, unknownKey] = await Promise.all([
    plugrig('forward', '--station', noCentral, '--store', store),
    plugrig('forward', '--station', withPassword, '--store', store),
  ]);
  const [down, noStore] = await Promise.all([
    plugrig('forward', '--to', 'postgres://plugrig:hunter2@127.0.0.1:1/postgres', '--store', store),
    plugrig('forward', '--station', config, '--store', join(dir, 'nope.sqlite')),
  ]);
  t.equal(missing.exitCode, 2);
  t.match(missing.stderr, /station config .*no-central\.json names no central store/);
  t.equal(unknownKey.exitCode, 2);
  t.match(unknownKey.stderr, /central holds a password; leave it out/);
  t.equal(down.exitCode, 11, 'an unreachable central store is a store failure');
  t.match(down.stderr, /^plugrig: cannot use the PostgreSQL store postgres:\/\/plugrig:\*\*\*@127\.0\.0\.1:1\/postgres: /);
  t.equal(noStore.exitCode, 2);
  t.match(noStore.stderr, /--store .*nope\.sqlite: no store there/);
  for (const r of [missing, unknownKey, down, noStore]) {
    t.notMatch(r.stderr + r.stdout, /hunter2/, 'no password');
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});
