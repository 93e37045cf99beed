import { existsSync } from 'node:fs';
import { ConfigError } from '../core/errors.ts';
import { PostgresStore } from './postgres-store.ts';
import { StoreQueries } from './queries.ts';
import { SqlRunReader } from './run-reader.ts';
import { SqliteStore } from './sqlite-store.ts';
import { checkStorePath } from './station-store.ts';
import { isPostgresUrl, redactUrl } from './store-location.ts';
import type { RunReader } from './types.ts';

/** A store opened for reading: runs (for reports) and the queries (for history, yield, trends). */
export interface OpenedStore {
  reader: RunReader;
  queries: StoreQueries;
  /** The path, or the URL without its password. */
  where: string;
  dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

/**
 * Open a station's SQLite file or the central PostgreSQL store (a postgres:// URL) for reading.
 * A SQLite file must exist: reading never creates an empty store where the operator mistyped a path.
 */
export async function openStoreForReading(location: string, option = '--store'): Promise<OpenedStore> {
  if (isPostgresUrl(location)) {
    const pg = await PostgresStore.open(location);
    const db = pg.sql();
    return { reader: new SqlRunReader(db), queries: new StoreQueries(db), where: redactUrl(location), dialect: 'postgres', close: () => pg.close() };
  }
  checkStorePath(location, option);
  if (!existsSync(location)) throw new ConfigError(`${option} ${location}: no store there (plugrig run writes one; give --store PATH or a postgres:// URL)`, { step: 'args' });
  const store = SqliteStore.open(location);
  const db = store.sql();
  return { reader: new SqlRunReader(db), queries: new StoreQueries(db), where: location, dialect: 'sqlite', close: async () => store.close() };
}
