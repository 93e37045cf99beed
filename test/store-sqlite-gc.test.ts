import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SqliteConnection } from '../rig/store/sqlite-connection.ts';

// better-sqlite3 12 + Node >= 24.19: a Statement finalised by the GC outside a JS context aborts
// the process (see rig/store/sqlite-connection.ts). The child guards that on the Node that runs it
// (CI runs Node 20 and 24); the cache test guards the mechanism on every version.
t.test('statements are prepared once per connection and SQL text', async (t) => {
  const db = new SqliteConnection(':memory:');
  t.teardown(() => db.close());
  db.exec('CREATE TABLE t (a INTEGER)');
  for (let i = 0; i < 50; i++) db.prepare('INSERT INTO t VALUES (?)').run(i);
  db.pragma('foreign_keys = ON');
  db.pragma('foreign_keys = ON');
  t.same(db.prepare('SELECT COUNT(*) AS n FROM t').get(), { n: 50 });
  t.equal(db.statementCount, 3, 'one INSERT, one PRAGMA, one SELECT');
  t.equal(db.prepare('INSERT INTO t VALUES (?)'), db.prepare('INSERT INTO t VALUES (?)'), 'the same object');
  t.equal(db.pragma('foreign_keys', { simple: true }), 1, 'a simple pragma reads one value');
  t.same(db.pragma('foreign_keys'), [{ foreign_keys: 1 }], 'a full pragma reads rows');
});

t.test('a process that used SQLite and made garbage exits 0, not SIGABRT', async (t) => {
  const child = fileURLToPath(new URL('./fixtures/sqlite-gc-child.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import=tsx', child], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.signal, null, `no signal (${process.version}); stderr: ${r.stderr.slice(0, 300)}`);
  t.equal(r.status, 0);
  t.equal(r.stdout, 'done\n');
});
