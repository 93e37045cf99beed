import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { isPostgresUrl, redactUrl } from './store-location.ts';
import type { StoredStation } from './types.ts';

export const STATION_CONFIG_SCHEMA = 'plugrig.station/1';

/**
 * A station config file (fixtures/stations/*.json): who the station is on the factory floor — the id
 * its runs are stored under, a name, its line — and the central store it forwards finished units to.
 * `plugrig run --station FILE` and `plugrig forward --station FILE` read it. The central URL carries
 * no password: PostgreSQL's client takes it from PGPASSWORD or ~/.pgpass, never from this file.
 */
export interface StationConfig {
  schema: typeof STATION_CONFIG_SCHEMA;
  station: StoredStation;
  /** postgres://user@host[:port]/db of the central store. */
  central?: string;
  source: string;
}

const schema = z
  .object({
    schema: z.literal(STATION_CONFIG_SCHEMA),
    id: z.string().regex(/^[\w.:-]{1,64}$/, 'letters, digits and . _ : - only, at most 64'),
    name: z.string().min(1).max(120),
    line: z.string().min(1).max(64).optional(),
    central: z.string().optional(),
  })
  .strict();

export function loadStationConfig(path: string): StationConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`--station ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { step: 'station-config' });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`station config ${path} is not JSON: ${(e as Error).message}`, { step: 'station-config' });
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ConfigError(`station config ${path}: ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`, { step: 'station-config' });
  }
  const c = r.data;
  if (c.central !== undefined) {
    if (!isPostgresUrl(c.central)) throw new ConfigError(`station config ${path}: central ${redactUrl(c.central)} is not a postgres:// URL`, { step: 'station-config' });
    if (redactUrl(c.central) !== c.central) throw new ConfigError(`station config ${path}: central holds a password; leave it out (PGPASSWORD or ~/.pgpass supply it)`, { step: 'station-config' });
  }
  return { schema: STATION_CONFIG_SCHEMA, station: { id: c.id, name: c.name, ...(c.line ? { line: c.line } : {}) }, ...(c.central ? { central: c.central } : {}), source: path };
}
