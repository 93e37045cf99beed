import { makeDirectory } from '../rig/core/make-directory.ts';
import { writeFileAtomic } from '../rig/core/atomic-file.ts';
import { confinedPath } from '../rig/core/confined-path.ts';
import { renderHtml } from './html/html-report.ts';
import { renderJsonSummary } from './json-summary.ts';
import { renderJunit } from './junit.ts';
import type { ReportRun } from './report-run.ts';
import { writeRefused } from './write-refused.ts';
import { renderRunTap } from './run-tap.ts';

export type ReportFormat = 'tap' | 'tap13' | 'junit' | 'html' | 'json';
export const REPORT_FORMATS: readonly ReportFormat[] = ['tap', 'tap13', 'junit', 'html', 'json'];

/** File name of each format inside the run directory. */
export const REPORT_FILES: Readonly<Record<ReportFormat, string>> = {
  tap: 'report.tap',
  tap13: 'report-tap13.tap',
  junit: 'junit.xml',
  html: 'report.html',
  json: 'summary.json',
};

export async function renderReport(run: ReportRun, format: ReportFormat): Promise<string> {
  switch (format) {
    case 'tap':
      return renderRunTap(run, { version: 14 });
    case 'tap13':
      return renderRunTap(run, { version: 13 });
    case 'junit':
      return renderJunit(run);
    case 'html':
      return renderHtml(run);
    case 'json':
      return renderJsonSummary(run);
  }
}

/**
 * Render the formats and write each into `dir` atomically (rig/core/atomic-file.ts), so a
 * report on disk is always whole (an old one stays until the new one is complete). Every format is
 * rendered before the first is written: a rendering error leaves the directory as it was. A refused
 * write is a StoreError naming the file, the errno and the run.
 */
export async function writeReports(run: ReportRun, dir: string, formats: readonly ReportFormat[] = REPORT_FORMATS): Promise<Map<ReportFormat, string>> {
  const rendered = new Map<ReportFormat, string>();
  for (const f of formats) rendered.set(f, await renderReport(run, f));
  const where = { run: run.runId, step: 'report' };
  try {
    await makeDirectory(dir);
  } catch (e) {
    throw writeRefused('report directory', dir, e, where);
  }
  const paths = new Map<ReportFormat, string>();
  for (const [f, text] of rendered) {
    const path = confinedPath(dir, REPORT_FILES[f], 'report');
    try {
      await writeFileAtomic(path, text);
    } catch (e) {
      // Refused (disk full, permission, a directory in the way): the temporary is gone, an older
      // report under the name stays whole; the reports written before this one stay too.
      throw writeRefused(`${f} report`, path, e, { ...where, format: f });
    }
    paths.set(f, path);
  }
  return paths;
}
