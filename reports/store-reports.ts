import { ConfigError } from '../rig/core/errors.ts';
import type { RunReader } from '../rig/store/types.ts';
import { reportRunFromStore } from './report-run-from-store.ts';
import type { ReportRun } from './report-run.ts';
import { REPORT_FORMATS, writeReports, type ReportFormat } from './write-reports.ts';

/** `last` names the newest run in the store. */
export const LAST_RUN = 'last';

/** The run as the store holds it, ready to render; an unknown id is a ConfigError naming the store's newest runs. */
export async function readReportRun(reader: RunReader, runId: string, where: string): Promise<ReportRun> {
  const id = runId === LAST_RUN ? (await reader.listRuns({ limit: 1 }))[0]?.runId : runId;
  const stored = id ? await reader.readRun(id) : undefined;
  if (!stored) {
    const recent = (await reader.listRuns({ limit: 3 })).map((r) => `${r.runId} (${r.plan}, ${r.startedAt})`);
    throw new ConfigError(`no run ${runId} in ${where}${recent.length ? `; newest: ${recent.join(', ')}` : ' (the store holds no run)'}`, { step: 'args' });
  }
  return reportRunFromStore(stored);
}

/** Parse `--format`: one format, a comma list, or `all`. */
export function parseFormats(value: string): ReportFormat[] {
  if (value === 'all') return [...REPORT_FORMATS];
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.find((f) => !(REPORT_FORMATS as readonly string[]).includes(f));
  if (bad !== undefined || list.length === 0) throw new ConfigError(`--format ${value}: use all or one or more of ${REPORT_FORMATS.join(', ')}`, { step: 'args' });
  return [...new Set(list)] as ReportFormat[];
}

/** Render a stored run into `dir` (every format rendered before any file is replaced). */
export async function writeStoredRunReports(reader: RunReader, runId: string, where: string, dir: string, formats: readonly ReportFormat[] = REPORT_FORMATS): Promise<{ run: ReportRun; paths: Map<ReportFormat, string> }> {
  const run = await readReportRun(reader, runId, where);
  return { run, paths: await writeReports(run, dir, formats) };
}

/**
 * `plugrig run`'s reports at run end: the run read back from the station store (what `plugrig report`
 * re-renders later gives the same bytes) into the run directory. A failure is returned, not thrown:
 * the results are safe in the store and the caller reports it.
 */
export async function writeRunReportsFromStore(location: string, runId: string, dir: string): Promise<{ paths: Map<ReportFormat, string> } | { error: string }> {
  try {
    const { openStoreForReading } = await import('../rig/store/open-store.ts');
    const store = await openStoreForReading(location);
    let run: ReportRun;
    try {
      run = await readReportRun(store.reader, runId, store.where);
    } finally {
      await store.close();
    }
    return { paths: await writeReports(run, dir) };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}
