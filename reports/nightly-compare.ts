import { num } from './format.ts';
import type { MeasurementSummary, RunSummary } from './json-summary.ts';

/**
 * What got worse between two nights, per matrix entry (plan × firmware) and per measurement
 * (`<step> / <id>`), over all units of the entry's run. A measurement is worse when more units were
 * rejected, more were marginal, it went missing, or its worst guard margin shrank by more than
 * `marginDrop` of the limit span. The guard margin of one value is the distance of value ± U to the
 * nearest limit (negative once the interval crosses it) divided by the span between the limits (the
 * limit's magnitude when one-sided), so it is comparable across measurements.
 * Yield of an entry falling is reported too. Nothing is re-judged: rejects and marginals are the
 * stored decisions and verdicts.
 */

export interface MatrixKey {
  plan: string;
  firmware: string;
}

export function matrixKeyOf(s: RunSummary): MatrixKey {
  return { plan: s.plan.name, firmware: s.image?.version ?? s.image?.name ?? 'no image' };
}

function keyText(k: MatrixKey): string {
  return `${k.plan} @ ${k.firmware}`;
}

export interface MeasurementStats {
  n: number;
  rejected: number;
  marginal: number;
  /** Worst (smallest) relative guard margin over the units; undefined without limits or values. */
  worstMargin?: number;
}

export interface Regression {
  entry: string;
  measurement: string;
  what: string;
  before: string;
  after: string;
}

export interface NightlyComparison {
  /** Entries of tonight without a previous run to compare with. */
  firstRuns: string[];
  regressions: Regression[];
  /** Count of (entry, measurement) pairs compared. */
  compared: number;
}

export const DEFAULT_MARGIN_DROP = 0.1;

export function guardMargin(m: Pick<MeasurementSummary, 'value' | 'U' | 'low' | 'high' | 'taken'>): number | undefined {
  if (!m.taken || m.value === undefined) return undefined;
  const span = m.low !== undefined && m.high !== undefined ? m.high - m.low : Math.abs((m.low ?? m.high) as number);
  if (m.low === undefined && m.high === undefined) return undefined;
  const toLow = m.low !== undefined ? m.value - m.U - m.low : Infinity;
  const toHigh = m.high !== undefined ? m.high - (m.value + m.U) : Infinity;
  return Math.min(toLow, toHigh) / (span > 0 ? span : 1);
}

export function measurementStats(runs: readonly RunSummary[]): Map<string, MeasurementStats> {
  const out = new Map<string, MeasurementStats>();
  for (const r of runs) {
    for (const u of r.units) {
      for (const m of u.measurements) {
        const s = out.get(m.key) ?? { n: 0, rejected: 0, marginal: 0 };
        s.n++;
        if (m.decision === 'reject') s.rejected++;
        if (m.verdict === 'marginal') s.marginal++;
        const g = guardMargin(m);
        if (g !== undefined) s.worstMargin = s.worstMargin === undefined ? g : Math.min(s.worstMargin, g);
        out.set(m.key, s);
      }
    }
  }
  return out;
}

function yieldOf(runs: readonly RunSummary[]): { passed: number; units: number } {
  return runs.reduce((a, r) => ({ passed: a.passed + r.counts.passed, units: a.units + r.counts.units }), { passed: 0, units: 0 });
}

export function compareNights(tonight: readonly RunSummary[], previous: readonly RunSummary[], o: { marginDrop?: number } = {}): NightlyComparison {
  const drop = o.marginDrop ?? DEFAULT_MARGIN_DROP;
  const group = (runs: readonly RunSummary[]): Map<string, RunSummary[]> => {
    const g = new Map<string, RunSummary[]>();
    for (const r of runs) {
      const k = keyText(matrixKeyOf(r));
      g.set(k, [...(g.get(k) ?? []), r]);
    }
    return g;
  };
  const now = group(tonight);
  const before = group(previous);
  const regressions: Regression[] = [];
  const firstRuns: string[] = [];
  let compared = 0;
  for (const [entry, runs] of [...now.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    const prev = before.get(entry);
    if (!prev) {
      firstRuns.push(entry);
      continue;
    }
    const yNow = yieldOf(runs);
    const yPrev = yieldOf(prev);
    if (yPrev.units > 0 && yNow.units > 0 && yNow.passed / yNow.units < yPrev.passed / yPrev.units) {
      regressions.push({ entry, measurement: '(yield)', what: 'yield fell', before: `${yPrev.passed}/${yPrev.units}`, after: `${yNow.passed}/${yNow.units}` });
    }
    const sNow = measurementStats(runs);
    const sPrev = measurementStats(prev);
    for (const [key, p] of [...sPrev.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
      const c = sNow.get(key);
      compared++;
      if (!c) {
        regressions.push({ entry, measurement: key, what: 'no longer measured', before: `${p.n} value(s)`, after: 'none' });
        continue;
      }
      // Rates, not counts: the matrix may have run on fewer slots tonight.
      if (c.rejected / c.n > p.rejected / p.n) regressions.push({ entry, measurement: key, what: 'more units rejected', before: `${p.rejected}/${p.n}`, after: `${c.rejected}/${c.n}` });
      if (c.marginal / c.n > p.marginal / p.n) regressions.push({ entry, measurement: key, what: 'more marginal values', before: `${p.marginal}/${p.n}`, after: `${c.marginal}/${c.n}` });
      if (p.worstMargin !== undefined && c.worstMargin !== undefined && p.worstMargin - c.worstMargin > drop) {
        regressions.push({ entry, measurement: key, what: `worst guard margin shrank by more than ${num(100 * drop, 3)} % of the span`, before: `${num(100 * p.worstMargin, 3)} %`, after: `${num(100 * c.worstMargin, 3)} %` });
      }
    }
  }
  return { firstRuns, regressions, compared };
}

/** Human-readable lines of a comparison (what the nightly command prints). */
export function comparisonLines(c: NightlyComparison): string[] {
  const lines: string[] = [];
  for (const e of c.firstRuns) lines.push(`${e}: first run, nothing to compare with`);
  for (const r of c.regressions) lines.push(`WORSE  ${r.entry}  ${r.measurement}: ${r.what} (${r.before} -> ${r.after})`);
  lines.push(c.regressions.length ? `${c.regressions.length} regression(s) in ${c.compared} measurement(s) compared` : `nothing got worse (${c.compared} measurement(s) compared)`);
  return lines;
}
