import { existsSync } from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../rig/core/errors.ts';
import { forwardOutbox } from '../../rig/store/forward.ts';
import { PostgresStore } from '../../rig/store/postgres-store.ts';
import { loadStationConfig } from '../../rig/store/station-config.ts';
import { checkStorePath, DEFAULT_STORE_PATH } from '../../rig/store/station-store.ts';
import { SqliteStore } from '../../rig/store/sqlite-store.ts';
import { isPostgresUrl, redactUrl } from '../../rig/store/store-location.ts';
import { cliStdout } from '../io.ts';
import { printJson } from '../output.ts';

interface ForwardArgs {
  station?: string;
  to?: string;
  store: string;
  json?: boolean;
}

/**
 * Push the station store's outbox (finished units, and units of aborted runs, not yet forwarded) to
 * the central PostgreSQL store now. Idempotent: a unit the server already has is not sent again, so
 * a second call sends nothing; an outage stops the pass and leaves the rest for the next one.
 */
export const forwardCommand: CommandModule<object, ForwardArgs> = {
  command: 'forward',
  builder: (y: Argv) =>
    y
      .option('station', { type: 'string', describe: 'station config file (fixtures/stations/*.json) naming the central store' })
      .option('to', { type: 'string', describe: 'central store URL (postgres://user@host/db); overrides the station config' })
      .option('store', { type: 'string', default: DEFAULT_STORE_PATH, describe: "the station's store (SQLite), the outbox" })
      .option('json', { type: 'boolean' }) as unknown as Argv<ForwardArgs>,
  handler: async (args: ArgumentsCamelCase<ForwardArgs>) => {
    const config = args.station ? loadStationConfig(args.station) : undefined;
    const url = args.to ?? config?.central;
    if (!url) throw new ConfigError(args.station ? `station config ${args.station} names no central store: add "central": "postgres://…" or give --to` : 'forward to where? give --station FILE (its "central" URL) or --to postgres://…', { step: 'args' });
    if (!isPostgresUrl(url)) throw new ConfigError(`--to ${redactUrl(url)}: not a postgres:// URL`, { step: 'args' });
    checkStorePath(args.store);
    if (!existsSync(args.store)) throw new ConfigError(`--store ${args.store}: no store there (plugrig run writes one)`, { step: 'args' });
    const local = SqliteStore.open(args.store);
    try {
      const central = await PostgresStore.open(url);
      try {
        const r = await forwardOutbox(local, central);
        if (args.json) printJson({ to: central.where, store: args.store, ...r });
        else cliStdout().write(`forwarded ${r.forwarded} unit(s) to ${central.where}${r.alreadyThere ? ` (${r.alreadyThere} were already there)` : ''}; ${r.runs} run status(es) sent; ${r.pending} unit(s) still in the outbox (unfinished)\n`);
      } finally {
        await central.close();
      }
    } finally {
      local.close();
    }
  },
};
