import { confinedPath } from '../rig/core/confined-path.ts';
import type { ResultEvent, ResultSink, RunInfo } from '../suites/model/events.ts';
import type { StepResult } from '../suites/model/step-result.ts';
import { openTapReport, type TapReport, type TapReportFile, type TapVersion } from './tap-writer.ts';

/**
 * Renders each slot's results as `slot-N.tap` (one subtest per step) from the events it is given.
 * It judges nothing: every point is ok or not ok as the step result says, and a step's closing point
 * is checked against the step's status so a rendering bug cannot turn a failed unit green.
 */
export class TapListener implements ResultSink {
  readonly #dir: string;
  readonly #version: TapVersion;
  #run: RunInfo | undefined;
  readonly #open = new Map<number, TapReportFile>();
  /** Paths written, by slot. */
  readonly paths = new Map<number, string>();

  constructor(dir: string, o: { version?: TapVersion } = {}) {
    this.#dir = dir;
    this.#version = o.version ?? 14;
  }

  async emit(e: ResultEvent): Promise<void> {
    switch (e.type) {
      case 'run-started':
        this.#run = e.run;
        return;
      case 'slot-started': {
        const path = confinedPath(this.#dir, `slot-${e.slot}.tap`, 'TAP report');
        const run = this.#run;
        const title = run ? `plugrig run ${run.runId}, plan ${run.plan.name}, jig ${run.jig.name}, slot ${e.slot}` : `slot ${e.slot}`;
        const meta = run ? { plan: `${run.plan.name} sha256 ${run.plan.sha256}`, jig: run.jig.source, image: run.image?.name, sha256: run.image?.sha256 } : {};
        this.#open.set(e.slot, openTapReport(path, { title, meta, version: this.#version }));
        this.paths.set(e.slot, path);
        return;
      }
      case 'step-finished': {
        const report = this.#open.get(e.slot);
        if (report) await renderStep(report, e.result);
        return;
      }
      case 'slot-finished': {
        const report = this.#open.get(e.slot);
        if (!report) return;
        report.comment(`slot ${e.slot}: ${e.result.verdict.toUpperCase()}${e.result.flagged ? ' (flagged)' : ''}${e.result.reason ? `: ${e.result.reason}` : ''}`);
        this.#open.delete(e.slot);
        await report.close();
        return;
      }
      default:
        return;
    }
  }

  /** Close every report still open (a run that ended by an exception). */
  async close(): Promise<void> {
    const open = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(open.map((r) => r.close()));
  }
}

async function renderStep(report: TapReport, r: StepResult): Promise<void> {
  if (r.status === 'skip') {
    report.skip(r.name, r.reason ?? 'skipped');
    return;
  }
  const passed = await report.subtest(r.name, (st) => {
    for (const a of r.earlierAttempts) st.comment(`attempt ${a.attempt} of ${r.maxAttempts}: ${a.status} (${a.reason})`);
    for (const c of r.checks) {
      if (c.ok) st.ok(c.name, c.diag);
      else st.fail(c.name, c.diag);
    }
    for (const m of r.measurements) st.measurement(m);
    const diag = { ...(r.data ?? {}), ...(r.error ? { error: r.error } : {}), ...(r.attempt > 1 ? { attempt: r.attempt } : {}), ...(r.flagged ? { flagged: true } : {}), ms: Math.round(r.ms) };
    if (r.status === 'pass') st.ok(`${r.name} completed`, diag);
    else st.fail(`${r.name}: ${r.reason ?? 'failed'}`, diag);
  });
  if (passed !== (r.status === 'pass')) throw new Error(`TAP rendering of step '${r.name}' disagrees with its status ${r.status}`);
}
