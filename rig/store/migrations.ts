import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
// The one module that knows where the package lives, sources or dist/ (build-layout.test.ts).
import { PACKAGE_ROOT } from '../core/package-root.ts';
import { StoreError } from './store-error.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The .sql files are not compiled: the build in dist/ reads them from the package's rig/store/migrations. */
export const MIGRATIONS_DIR = join(PACKAGE_ROOT, 'rig/store/migrations');

/** `NNN-name.sql` files in version order; a gap or a duplicate version is a packaging error. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    const m = /^(\d+)-([\w-]+)\.sql$/.exec(file);
    if (!m) throw new StoreError(`migration file ${file} is not named NNN-name.sql`, { expected: 'NNN-name.sql' });
    out.push({ version: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, file), 'utf8') });
  }
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new StoreError(`migration ${m.version}-${m.name} is out of sequence (expected version ${i + 1})`, { expected: String(i + 1) });
  });
  return out;
}

export const SCHEMA_VERSION_DDL = 'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)';

/** A database newer than this code (a migration it does not know) is refused, not written. */
export function checkNotNewer(applied: number[], known: Migration[], where: string): void {
  const unknown = applied.filter((v) => !known.some((m) => m.version === v));
  if (unknown.length) throw new StoreError(`${where} has schema version ${Math.max(...unknown)}, newer than this plugrig knows (${known.length}): upgrade plugrig`, { expected: `schema <= ${known.length}` });
}
