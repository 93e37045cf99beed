import { confinedPath } from '../rig/core/confined-path.ts';
import type { ResultEvent, ResultSink, RunInfo } from '../suites/model/events.ts';
import { renderStepTap, tapContradictionError } from './run-tap.ts';
import { openTapReport, type TapReportFile, type TapVersion } from './tap-writer.ts';

/**
 * Writes each slot's results live as `slot-N.tap` (one subtest per step, as the steps finish: a killed
 * run's file holds every finished step) with the run report's step rendering (run-tap.ts). It judges
 * nothing, and a step whose points disagree with its status is refused, so a rendering bug cannot turn
 * a failed unit green.
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
        this.#open.set(e.slot, openTapReport(path, { title, meta, version: this.#version, where: { slot: e.slot, ...(run ? { run: run.runId } : {}) } }));
        this.paths.set(e.slot, path);
        return;
      }
      case 'step-finished': {
        const report = this.#open.get(e.slot);
        if (!report) return;
        const contradiction = await renderStepTap(report, e.result);
        if (contradiction) throw tapContradictionError(contradiction, { slot: e.slot, ...(this.#run ? { run: this.#run.runId } : {}), path: this.paths.get(e.slot) });
        // A write refused since (disk full): the file stops there; the slot hears it, typed.
        if (report.failure) throw report.failure;
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

  /**
   * Close every report still open (a run that ended by an exception). A refusal here is not thrown:
   * the run is ending already, and the slot heard of it at its step (each open file is whole up to it).
   */
  async close(): Promise<void> {
    const open = [...this.#open.values()];
    this.#open.clear();
    await Promise.allSettled(open.map((r) => r.close()));
  }
}
