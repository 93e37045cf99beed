import Database from 'better-sqlite3';

/**
 * Every connection ever opened, kept referenced until the process exits — on purpose, never pruned.
 *
 * Why: better-sqlite3 12 wraps its Statement and Database objects in node::ObjectWrap, and since
 * Node 24.19 ObjectWrap's destructor asserts that a JS context is current. A statement finalised by
 * a GC that runs outside one (an idle-time GC, or the teardown at exit) aborts the process with
 * `RemoveEnvironmentCleanupHook: Assertion failed: (env) != nullptr` — after the store's data is
 * safe, but with SIGABRT instead of the exit code. better-sqlite3 13 (N-API) fixes it and needs
 * Node 22, and we support 20. So no object of ours is ever left for the GC: statements are cached
 * per connection (bounded by the distinct SQL texts the code issues) and connections are retained;
 * at exit Node's cleanup hooks free them while the environment still exists.
 */
const retained = new Set<SqliteConnection>();

type TransactionBody = Parameters<Database.Database['transaction']>[0];

/** One better-sqlite3 connection whose statements are prepared once and never garbage-collected. */
export class SqliteConnection {
  readonly #raw: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(path: string, options?: Database.Options) {
    this.#raw = new Database(path, options);
    retained.add(this);
  }

  /** The cached statement for this SQL text; callers must not leave it bound or plucked. */
  prepare(sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#raw.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  exec(sql: string): void {
    this.#raw.exec(sql);
  }

  /** better-sqlite3's own pragma() prepares a fresh statement each call: go through the cache. */
  pragma(source: string, o: { simple?: boolean } = {}): unknown {
    const s = this.prepare(`PRAGMA ${source}`);
    if (!s.reader) return s.run();
    return o.simple ? s.pluck(true).get() : s.pluck(false).all();
  }

  /** better-sqlite3 caches BEGIN/COMMIT/ROLLBACK per connection, so these never reach the GC. */
  transaction<F extends TransactionBody>(fn: F): Database.Transaction<F> {
    return this.#raw.transaction(fn);
  }

  get open(): boolean {
    return this.#raw.open;
  }

  /** The number of statements cached, for the test that guards the cache. */
  get statementCount(): number {
    return this.#statements.size;
  }

  close(): void {
    if (this.#raw.open) this.#raw.close();
  }
}
