/**
 * The little the readers and queries need from a database, the same for SQLite and PostgreSQL.
 * Statements use `?` placeholders; the PostgreSQL adapter numbers them ($1, $2, ...). Values come
 * back as plain JS numbers and strings (the adapters cast PostgreSQL's bigint/numeric).
 */
export type SqlValue = string | number | null;

export interface SqlDb {
  readonly dialect: 'sqlite' | 'postgres';
  all<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  close(): Promise<void>;
}

/** `?` → `$n`; the store's statements never put a `?` inside a string literal. */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
