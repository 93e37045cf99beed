import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError } from '../core/errors.ts';
import type { JigSpec, MeterSpec } from '../jig/jig-config.ts';
import { SqliteStore, type AbortedRun } from './sqlite-store.ts';
import { StoreSink } from './store-sink.ts';
import { isPostgresUrl, redactUrl } from './store-location.ts';
import type { StoredFirmwareImage, StoredInstrument, StoredStation } from './types.ts';

/** Where `plugrig run` and `plugrig history` keep the station's store unless told otherwise. */
export const DEFAULT_STORE_PATH = 'runs/plugrig.sqlite';

const PSEUDO_FS = ['/proc', '/sys', '/dev'];

/** Refuse a store path that can never be a SQLite file, before anything is created. */
export function checkStorePath(path: string, option = '--store'): void {
  if (isPostgresUrl(path)) throw new ConfigError(`${option} ${redactUrl(path)}: a station writes its own SQLite file; give the PostgreSQL URL to --forward`, { step: 'args' });
  const abs = resolve(path);
  if (PSEUDO_FS.some((p) => abs === p || abs.startsWith(p + '/'))) throw new ConfigError(`${option} ${path} is on the ${abs.split('/')[1]} pseudo file system; name a file on a disk`, { step: 'args' });
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new ConfigError(`${option} ${path}: ${code === 'ENOTDIR' ? 'a parent is a file' : (e as Error).message}`, { step: 'args' });
  }
  if (st.isDirectory()) throw new ConfigError(`${option} ${path} is a directory; name the store file (e.g. ${path.replace(/\/$/, '')}/plugrig.sqlite)`, { step: 'args' });
}

/** The jig's reference meters as the store's instruments (what the jig file knows of them). */
export function instrumentsOfJig(jig: JigSpec): StoredInstrument[] {
  return Object.entries(jig.meters).map(([id, m]: [string, MeterSpec]) => ({
    id,
    kind: m.kind,
    ...(m.kind === 'pzem004t' ? { manufacturer: 'Peacefair', model: 'PZEM-004T' } : { model: m.model }),
    ...(m.serial ? { serial: m.serial } : {}),
    ...(m.calibrationDate ? { calibrationDate: m.calibrationDate } : {}),
  }));
}

/** Firmware identity from what `run` flashes: the version in an OpenBeken file name, the origin. */
export function firmwareOf(image: { name: string; sha256?: string }, origin: string): StoredFirmwareImage {
  const name = image.name.replace(/ \(synthetic\)$/, '');
  const version = /_(\d+\.\d+\.\d+)(?:_[\w]+)?\.bin$/i.exec(name)?.[1];
  return { name, ...(image.sha256 ? { sha256: image.sha256 } : {}), ...(version ? { version } : {}), origin };
}

export function defaultStation(jig: JigSpec): StoredStation {
  const host = hostname();
  return { id: `${host}:${jig.name}`, name: `${jig.name} on ${host}` };
}

/**
 * The station's store for one `plugrig run`: the SQLite file (opened, migrated) and the sink that
 * writes the run into it. Earlier runs of this station left unfinished are reported through onAborted.
 */
export function openStationStore(o: {
  path: string;
  jig: JigSpec;
  station?: StoredStation;
  image?: { name: string; sha256?: string; origin: string };
  onAborted?: (runs: AbortedRun[]) => void;
}): { store: SqliteStore; sink: StoreSink; station: StoredStation } {
  checkStorePath(o.path);
  const store = SqliteStore.open(o.path);
  const station = o.station ?? defaultStation(o.jig);
  const slotInstruments = new Map(o.jig.slots.map((s) => [s.id, s.meter.ref]));
  const sink = new StoreSink(store, {
    meta: { station, instruments: instrumentsOfJig(o.jig), ...(o.image ? { image: firmwareOf(o.image, o.image.origin) } : {}) },
    slotInstruments,
    ...(o.onAborted ? { onAborted: o.onAborted } : {}),
  });
  return { store, sink, station };
}
