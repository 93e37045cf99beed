import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../rig/core/errors.ts';
import { openStoreForReading } from '../../rig/store/open-store.ts';
import type { UnitHistoryEntry } from '../../rig/store/queries.ts';
import { DEFAULT_STORE_PATH } from '../../rig/store/station-store.ts';
import { cliStderr, cliStdout } from '../io.ts';
import { printJson } from '../output.ts';

interface HistoryArgs {
  unit: string;
  store: string;
  json?: boolean;
}

export const historyCommand: CommandModule<object, HistoryArgs> = {
  command: 'history <unit>',
  builder: (y: Argv) =>
    y
      .positional('unit', { type: 'string', demandOption: true, describe: 'MAC (c8:47:8c:00:01:01, c8478c000101, ...) or operator serial' })
      .option('store', { type: 'string', default: DEFAULT_STORE_PATH, describe: 'station store (SQLite file) or central store (postgres://...)' })
      .option('json', { type: 'boolean' }) as unknown as Argv<HistoryArgs>,
  handler: async (args: ArgumentsCamelCase<HistoryArgs>) => {
    const key = String(args.unit).trim();
    if (!key) throw new ConfigError('history: name a unit by MAC or serial', { step: 'args' });
    const store = await openStoreForReading(args.store);
    let entries: UnitHistoryEntry[];
    try {
      entries = await store.queries.unitHistory(key);
    } finally {
      await store.close();
    }
    if (args.json) printJson({ unit: key, store: store.where, entries });
    else if (entries.length) {
      cliStdout().write(`unit ${key}: ${entries.length} run(s) in ${store.where}\n`);
      for (const e of entries) {
        const verdict = e.verdict === null ? (e.aborted ? 'ABORTED' : 'UNFINISHED') : e.verdict === 'pass' ? (e.flagged ? 'PASS (flagged)' : 'PASS') : 'FAIL';
        const who = [e.mac ? `MAC ${e.mac}` : '', e.serial ? `serial ${e.serial}` : ''].filter(Boolean).join(', ');
        cliStdout().write(`${e.startedAt}  ${verdict.padEnd(14)} station ${e.stationId} slot ${e.slot}  plan ${e.plan}${e.firmware ? `  firmware ${e.firmware}` : ''}  ${who}${e.attempts > 1 ? `  (${e.attempts} slot attempts)` : ''}\n`);
        cliStdout().write(`    run ${e.runId}\n`);
        for (const s of e.failedSteps) cliStdout().write(`    FAIL  ${s.name}${s.reason ? `: ${s.reason}` : ''}\n`);
      }
    } else cliStderr().write(`plugrig: no unit with MAC or serial ${key} in ${store.where}\n`);
    if (!entries.length) process.exitCode = 1;
  },
};
