import { mkdir } from 'node:fs/promises';
import { writeFileAtomic } from '../rig/core/atomic-file.ts';
import { confinedPath } from '../rig/core/confined-path.ts';
import { renderHtml } from './html/html-report.ts';
import { renderJsonSummary } from './json-summary.ts';
import { renderJunit } from './junit.ts';
import type { ReportRun } from './report-run.ts';
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
 * rendered before the first is written: a rendering error leaves the directory as it was.
 */
export async function writeReports(run: ReportRun, dir: string, formats: readonly ReportFormat[] = REPORT_FORMATS): Promise<Map<ReportFormat, string>> {
  const rendered = new Map<ReportFormat, string>();
  for (const f of formats) rendered.set(f, await renderReport(run, f));
  await mkdir(dir, { recursive: true });
  const paths = new Map<ReportFormat, string>();
  for (const [f, text] of rendered) {
    const path = confinedPath(dir, REPORT_FILES[f], 'report');
    await writeFileAtomic(path, text);
    paths.set(f, path);
  }
  return paths;
}
