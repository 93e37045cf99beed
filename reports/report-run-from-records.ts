import type { ReportRun, ReportUnit } from './report-run.ts';
import type { UnitRecord } from './unit-record.ts';

/** A run as its unit records (slot-N.json) tell it; all records must belong to the same run. */
export function reportRunFromRecords(records: readonly UnitRecord[]): ReportRun {
  const first = records.find((r) => r.run)?.run;
  if (!first) throw new Error('no unit record names its run');
  const other = records.find((r) => r.run && r.run.runId !== first.runId);
  if (other) throw new Error(`unit records of two runs: ${first.runId} and ${other.run!.runId}`);
  const units = [...records].sort((a, b) => a.slot - b.slot).map(unitFromRecord);
  const finished = units.every((u) => u.verdict !== null) ? units.map((u) => u.finishedAt ?? '').sort().at(-1) : undefined;
  const instruments = new Map<string, ReportRun['instruments'][number]>();
  for (const r of records) {
    const ref = (r.unit.calibration as { reference?: { model?: string; serial?: string | null; calibrationDate?: string | null } } | undefined)?.reference;
    if (ref?.model) instruments.set(`${ref.model}/${ref.serial ?? ''}`, { model: ref.model, ...(ref.serial ? { serial: ref.serial } : {}), ...(ref.calibrationDate ? { calibrationDate: ref.calibrationDate } : {}) });
  }
  return {
    runId: first.runId,
    plan: { name: first.plan.name, sha256: first.plan.sha256 },
    jig: { name: first.jig.name },
    ...(first.image ? { image: { name: first.image.name, ...(first.image.sha256 ? { sha256: first.image.sha256 } : {}) } } : {}),
    instruments: [...instruments.values()].sort((a, b) => a.model.localeCompare(b.model) || (a.serial ?? '').localeCompare(b.serial ?? '')),
    startedAt: first.startedAt,
    ...(finished ? { finishedAt: finished } : {}),
    aborted: units.some((u) => u.verdict === null),
    units,
  };
}

function unitFromRecord(r: UnitRecord): ReportUnit {
  const ratios = (r.unit.calibration as { ratios?: Record<string, number> } | undefined)?.ratios;
  return {
    id: `slot-${r.slot}`,
    slot: r.slot,
    ...(typeof r.unit.mac === 'string' ? { mac: r.unit.mac } : {}),
    ...(typeof r.unit.serial === 'string' ? { serial: r.unit.serial } : {}),
    verdict: r.complete ? r.verdict : null,
    flagged: r.flagged,
    ...(r.reason ? { reason: r.reason } : {}),
    startedAt: r.startedAt,
    ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
    steps: [...r.steps].sort((a, b) => a.index - b.index),
    // Unit records keep no instrument events; the store does.
    waits: [],
    // Quantities in name order, as the store returns them.
    ...(ratios ? { calibration: Object.fromEntries(Object.entries(ratios).sort((a, b) => a[0].localeCompare(b[0]))) } : {}),
  };
}
