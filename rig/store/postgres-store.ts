import pg from 'pg';
import { checkNotNewer, loadMigrations, SCHEMA_VERSION_DDL, type Migration } from './migrations.ts';
import { numberPlaceholders, type SqlDb, type SqlValue } from './sql-db.ts';
import { redactUrl } from './store-location.ts';
import { StoreError } from './store-error.ts';

/** Any number that serialises all migrating stations on one server (pg_advisory_xact_lock). */
const MIGRATION_LOCK = 72310009;

/**
 * The central store on PostgreSQL: the same schema (the same migration files) as a station's SQLite.
 * Stations write here only through the outbox forwarder (rig/store/forward.ts); reports and queries
 * read through sql().
 */
export class PostgresStore {
  readonly pool: pg.Pool;
  /** The URL without its password, for messages. */
  readonly where: string;

  private constructor(pool: pg.Pool, where: string) {
    this.pool = pool;
    this.where = where;
  }

  static async open(url: string, o: { migrations?: Migration[]; max?: number; connectTimeoutMs?: number } = {}): Promise<PostgresStore> {
    const where = redactUrl(url);
    const pool = new pg.Pool({ connectionString: url, max: o.max ?? 4, connectionTimeoutMillis: o.connectTimeoutMs ?? 5000 });
    // An idle client whose server went away must not crash the process; the next query reports it.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, where);
    try {
      await store.#migrate(o.migrations ?? loadMigrations());
    } catch (e) {
      await pool.end().catch(() => undefined);
      if (e instanceof StoreError) throw e;
      throw new StoreError(`cannot use the PostgreSQL store ${where}: ${(e as Error).message}`, { store: where }, { cause: e });
    }
    return store;
  }

  async #migrate(migrations: Migration[]): Promise<void> {
    await this.transaction(async (c) => {
      // Two stations starting at once on a fresh server: the second waits, then finds the work done.
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(SCHEMA_VERSION_DDL);
      const applied = (await c.query<{ version: number }>('SELECT version FROM schema_version')).rows.map((r) => Number(r.version));
      checkNotNewer(applied, migrations, this.where);
      for (const m of migrations) {
        if (applied.includes(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, new Date().toISOString()]);
      }
    });
  }

  /** Run `fn` in one transaction on one connection; rolled back (and the connection dropped) on any error. */
  async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    // A server that goes away mid-transaction emits 'error' on the checked-out client (besides
    // failing the query in flight): without a listener that would crash the process.
    const onError = (e: Error): void => void (broken ??= e);
    c.on('error', onError);
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (e) {
      broken = e as Error;
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.off('error', onError);
      // A connection that failed mid-transaction is not handed to the next caller.
      c.release(broken);
    }
  }

  async schemaVersion(): Promise<number> {
    const r = await this.pool.query<{ v: number }>('SELECT CAST(COALESCE(MAX(version), 0) AS INTEGER) AS v FROM schema_version');
    return Number(r.rows[0]!.v);
  }

  sql(): SqlDb {
    return {
      dialect: 'postgres',
      all: async <T>(sql: string, params: readonly SqlValue[] = []) => (await this.pool.query(numberPlaceholders(sql), params as SqlValue[])).rows as T[],
      close: () => this.close(),
    };
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}
