import { join } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { openStoreForReading } from '../../rig/store/open-store.ts';
import { DEFAULT_STORE_PATH } from '../../rig/store/station-store.ts';
import { runCounts } from '../../reports/report-run.ts';
import { parseFormats, readReportRun } from '../../reports/store-reports.ts';
import { writeReports } from '../../reports/write-reports.ts';
import { cliStdout } from '../io.ts';
import { printJson } from '../output.ts';

interface ReportArgs {
  runId: string;
  store: string;
  format: string;
  out?: string;
  json?: boolean;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <run-id>',
  builder: (y: Argv) =>
    y
      .positional('run-id', { type: 'string', describe: 'run id (as plugrig run prints it), or last' })
      .option('store', { type: 'string', default: DEFAULT_STORE_PATH, describe: 'station store (SQLite file) or central store (postgres://...)' })
      .option('format', { type: 'string', default: 'all', describe: 'all, or one or more of tap,tap13,junit,html,json' })
      .option('out', { type: 'string', describe: 'directory for the reports (default runs/<run-id>)' })
      .option('json', { type: 'boolean' }) as unknown as Argv<ReportArgs>,
  handler: async (args: ArgumentsCamelCase<ReportArgs>) => {
    const formats = parseFormats(args.format);
    const store = await openStoreForReading(args.store);
    let run;
    try {
      run = await readReportRun(store.reader, String(args.runId), store.where);
    } finally {
      await store.close();
    }
    const paths = await writeReports(run, args.out ?? join('runs', run.runId), formats);
    const c = runCounts(run);
    if (args.json) printJson({ runId: run.runId, store: store.where, counts: c, files: Object.fromEntries(paths) });
    else {
      cliStdout().write(`run ${run.runId}, plan ${run.plan.name}: ${c.passed} of ${c.units} unit(s) passed${run.aborted ? ' (aborted)' : ''}\n`);
      for (const [format, path] of paths) cliStdout().write(`${format.padEnd(6)} ${path}\n`);
    }
  },
};
