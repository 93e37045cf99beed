import { scaleBand, scaleLinear, scaleLog } from 'd3-scale';
import { line } from 'd3-shape';
import { num } from '../format.ts';
import type { CalibrationFactor, ErrorPoint, SlotTakt, StepTakt, TimelineLane } from './plot-data.ts';
import { esc, inner, legend, px, roundPath, svg, xAxis, yAxis, type Frame } from './svg.ts';

const WIDE: Frame = { width: 720, height: 320, left: 64, right: 16, top: 28, bottom: 44 };

/** Padded [min, max] of values (never an empty span). */
function extent(values: number[], pad = 0.08): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || Math.abs(hi) || 1;
  return [lo - span * pad, hi + span * pad];
}

/** Points sharing a load (within 5 %) are one load point: limits and the worst U are taken per point. */
function loadPoints(points: ErrorPoint[]): Array<{ x: number; low?: number; high?: number; maxU: number }> {
  const sorted = [...points].sort((a, b) => a.loadW - b.loadW);
  const groups: ErrorPoint[][] = [];
  for (const p of sorted) {
    const g = groups[groups.length - 1];
    if (g && p.loadW <= g[0]!.loadW * 1.05) g.push(p);
    else groups.push([p]);
  }
  return groups.map((g) => {
    const lows = g.flatMap((p) => (p.low !== undefined ? [p.low] : []));
    const highs = g.flatMap((p) => (p.high !== undefined ? [p.high] : []));
    return {
      x: g.reduce((s, p) => s + p.loadW, 0) / g.length,
      ...(lows.length ? { low: Math.max(...lows) } : {}),
      ...(highs.length ? { high: Math.min(...highs) } : {}),
      maxU: Math.max(...g.map((p) => p.U)),
    };
  });
}

/**
 * Metering error vs load: each unit's points (± U bars) joined per unit, the limits as solid lines and
 * the guard band (limit ∓ the largest U at that load: where acceptance ends) as dashed lines.
 */
export function errorVsLoadPlot(id: string, points: ErrorPoint[], o: { title: string; quantity: string; unit: string }): string {
  const f = WIDE;
  const { x0, x1, y0, y1 } = inner(f);
  if (points.length === 0) return '';
  const lp = loadPoints(points);
  const xs = points.map((p) => p.loadW);
  const x = scaleLog().domain([Math.min(...xs) / 1.5, Math.max(...xs) * 1.5]).range([x0, x1]);
  const ys = [...points.flatMap((p) => [p.value - p.U, p.value + p.U]), ...lp.flatMap((p) => [p.low, p.high].filter((v): v is number => v !== undefined))];
  const y = scaleLinear().domain(extent(ys)).nice().range([y0, y1]);
  const path = line<{ x: number; y: number }>().x((d) => x(d.x)).y((d) => y(d.y));
  const limitLine = (key: 'low' | 'high', cls: string, shift: (p: (typeof lp)[number]) => number): string => {
    const pts = lp.filter((p) => p[key] !== undefined).map((p) => ({ x: p.x, y: p[key]! + shift(p) }));
    if (pts.length === 0) return '';
    // A single load point still gets a visible line: ±20 % around it.
    const drawn = pts.length === 1 ? [{ x: pts[0]!.x / 1.2, y: pts[0]!.y }, { x: pts[0]!.x * 1.2, y: pts[0]!.y }] : pts;
    return `<path class="${cls}" d="${roundPath(path(drawn))}"/>`;
  };
  const limits = limitLine('high', 'limit', () => 0) + limitLine('low', 'limit', () => 0) + limitLine('high', 'guard', (p) => -p.maxU) + limitLine('low', 'guard', (p) => p.maxU);
  const bySlot = new Map<number, ErrorPoint[]>();
  for (const p of points) bySlot.set(p.slot, [...(bySlot.get(p.slot) ?? []), p]);
  const series = [...bySlot.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([slot, ps]) => {
      const sorted = [...ps].sort((a, b) => a.loadW - b.loadW);
      const joined = sorted.length > 1 ? `<path class="series s${slot % 8}" d="${roundPath(path(sorted.map((p) => ({ x: p.loadW, y: p.value }))))}"/>` : '';
      const dots = sorted
        .map((p) => `<g class="pt ${p.verdict}"><line class="ubar s${slot % 8}" x1="${px(x(p.loadW))}" x2="${px(x(p.loadW))}" y1="${px(y(p.value - p.U))}" y2="${px(y(p.value + p.U))}"/><circle class="dot s${slot % 8}" cx="${px(x(p.loadW))}" cy="${px(y(p.value))}" r="3.5"><title>slot ${slot}, ${esc(p.step)}: ${num(p.value, 3)} ± ${num(p.U, 2)} ${esc(o.unit)} (${p.verdict})</title></circle></g>`)
        .join('');
      return `<g class="unit-series" data-slot="${slot}">${joined}${dots}</g>`;
    })
    .join('');
  const body =
    legend(f, [
      { label: 'limit', cls: 'limit', kind: 'line' },
      { label: 'guard band (limit ∓ U)', cls: 'guard', kind: 'line' },
      { label: 'unit value ± U', cls: 'dot s1', kind: 'dot' },
    ]) +
    xAxis(f, x, 'reference power (W, log)', 6, '~s') +
    yAxis(f, y, `${o.quantity} (${o.unit})`) +
    `<g class="limits">${limits}</g>${series}`;
  const desc = `${points.length} values from ${bySlot.size} unit(s) at ${lp.length} load point(s); limits ${lp.map((p) => `${num(p.x, 3)} W: ${num(p.low)}..${num(p.high)}`).join(', ')}`;
  return svg(id, f, o.title, desc, body);
}

/** Calibration factors per quantity: one row each, a dot per unit, the ideal 1.0 as a line. */
export function calibrationPlot(id: string, factors: CalibrationFactor[]): string {
  if (factors.length === 0) return '';
  const quantities = [...new Set(factors.map((c) => c.quantity))].sort();
  const f: Frame = { width: 720, height: 60 + quantities.length * 48, left: 80, right: 16, top: 28, bottom: 44 };
  const { x0, x1, y0, y1 } = inner(f);
  const x = scaleLinear().domain(extent([1, ...factors.map((c) => c.factor)])).nice().range([x0, x1]);
  const band = scaleBand<string>().domain(quantities).range([y1, y0]).padding(0.3);
  const rows = quantities
    .map((q) => {
      const cy = band(q)! + band.bandwidth() / 2;
      const fs = factors.filter((c) => c.quantity === q).sort((a, b) => a.slot - b.slot);
      const mean = fs.reduce((s, c) => s + c.factor, 0) / fs.length;
      const dots = fs.map((c, i) => `<circle class="dot s${c.slot % 8}" cx="${px(x(c.factor))}" cy="${px(cy + ((i % 3) - 1) * 5)}" r="4"><title>slot ${c.slot}: ${q} factor ${num(c.factor, 5)}</title></circle>`).join('');
      return `<g class="cal-row" data-quantity="${esc(q)}"><text x="${px(x0 - 6)}" y="${px(cy)}" dy="0.32em" text-anchor="end">${esc(q)}</text><line class="mean" x1="${px(x(mean))}" x2="${px(x(mean))}" y1="${px(cy - 14)}" y2="${px(cy + 14)}"/>${dots}</g>`;
    })
    .join('');
  const ideal = `<line class="limit" x1="${px(x(1))}" x2="${px(x(1))}" y1="${px(y0)}" y2="${px(y1)}"/>`;
  const body = legend(f, [{ label: 'factor 1 (no correction)', cls: 'limit', kind: 'line' }, { label: 'mean', cls: 'mean', kind: 'line' }, { label: 'unit', cls: 'dot s1', kind: 'dot' }]) + xAxis(f, x, 'correction factor (reference / plug)', 6) + ideal + rows;
  return svg(id, f, 'Calibration factor distribution', `${factors.length} factors over ${quantities.join(', ')}`, body);
}

/** Horizontal bars: mean step duration over the units, min..max as a whisker. */
export function taktPerStepPlot(id: string, takt: StepTakt[]): string {
  if (takt.length === 0) return '';
  const f: Frame = { width: 720, height: 60 + takt.length * 22, left: 290, right: 24, top: 28, bottom: 44 };
  const { x0, x1, y0, y1 } = inner(f);
  const x = scaleLinear().domain([0, Math.max(...takt.map((t) => t.maxMs)) / 1000]).nice().range([x0, x1]);
  const band = scaleBand<number>().domain(takt.map((_, i) => i)).range([y1, y0]).padding(0.2);
  const bars = takt
    .map((t, i) => {
      const yb = band(i)!;
      const h = band.bandwidth();
      const label = t.step.length > 46 ? `${t.step.slice(0, 45)}…` : t.step;
      return (
        `<g class="takt-step"><text x="${px(x0 - 6)}" y="${px(yb + h / 2)}" dy="0.32em" text-anchor="end">${esc(label)}</text>` +
        `<rect class="bar" x="${px(x0)}" y="${px(yb)}" width="${px(x(t.meanMs / 1000) - x0)}" height="${px(h)}"><title>${esc(t.step)}: mean ${num(t.meanMs / 1000, 3)} s over ${t.n} unit(s), ${num(t.minMs / 1000, 3)}..${num(t.maxMs / 1000, 3)} s</title></rect>` +
        `<line class="whisker" x1="${px(x(t.minMs / 1000))}" x2="${px(x(t.maxMs / 1000))}" y1="${px(yb + h / 2)}" y2="${px(yb + h / 2)}"/></g>`
      );
    })
    .join('');
  return svg(id, f, 'Takt time per step', `mean duration of ${takt.length} steps over the units, whiskers min..max`, legend(f, [{ label: 'mean', cls: 'bar', kind: 'box' }, { label: 'min..max', cls: 'whisker', kind: 'line' }]) + xAxis(f, x, 'seconds', 6) + bars);
}

/** One bar per slot: first step start to last step end. */
export function taktPerSlotPlot(id: string, takt: SlotTakt[]): string {
  if (takt.length === 0) return '';
  const f: Frame = { width: 720, height: 60 + takt.length * 26, left: 80, right: 24, top: 28, bottom: 44 };
  const { x0, x1, y0, y1 } = inner(f);
  const x = scaleLinear().domain([0, Math.max(...takt.map((t) => t.ms)) / 1000]).nice().range([x0, x1]);
  const band = scaleBand<number>().domain(takt.map((t) => t.slot)).range([y1, y0]).padding(0.2);
  const bars = takt
    .map((t) => `<g class="takt-slot"><text x="${px(x0 - 6)}" y="${px(band(t.slot)! + band.bandwidth() / 2)}" dy="0.32em" text-anchor="end">slot ${t.slot}</text><rect class="bar s${t.slot % 8}" x="${px(x0)}" y="${px(band(t.slot)!)}" width="${px(x(t.ms / 1000) - x0)}" height="${px(band.bandwidth())}"><title>slot ${t.slot}: ${num(t.ms / 1000, 3)} s</title></rect></g>`)
    .join('');
  return svg(id, f, 'Takt time per slot', `time from the first step's start to the last step's end for ${takt.length} slot(s)`, xAxis(f, x, 'seconds', 6) + bars);
}

/** Slot lanes on the run's clock: each step a bar (colour and pattern by status), instrument waits hatched on top. */
export function timelinePlot(id: string, tl: { t0: number; t1: number; lanes: TimelineLane[] }): string {
  if (tl.lanes.length === 0) return '';
  const f: Frame = { width: 720, height: 70 + tl.lanes.length * 34, left: 80, right: 24, top: 28, bottom: 44 };
  const { x0, x1, y0, y1 } = inner(f);
  const x = scaleLinear().domain([0, Math.max(1, tl.t1 - tl.t0) / 1000]).nice().range([x0, x1]);
  const band = scaleBand<number>().domain(tl.lanes.map((l) => l.slot)).range([y1, y0]).padding(0.25);
  const at = (t: number): number => x((t - tl.t0) / 1000);
  const waits = tl.lanes.reduce((n, l) => n + l.waits.length, 0);
  const lanes = tl.lanes
    .map((l) => {
      const yb = band(l.slot)!;
      const h = band.bandwidth();
      const steps = l.steps.map((s) => `<rect class="step ${s.status}" x="${px(at(s.fromT))}" y="${px(yb)}" width="${px(Math.max(0.5, at(s.toT) - at(s.fromT)))}" height="${px(h)}"><title>slot ${l.slot}: ${esc(s.name)} (${s.status}, ${num((s.toT - s.fromT) / 1000, 3)} s)</title></rect>`).join('');
      const ws = l.waits.map((w) => `<rect class="wait" x="${px(at(w.fromT))}" y="${px(yb - 3)}" width="${px(Math.max(0.5, at(w.toT) - at(w.fromT)))}" height="${px(h + 6)}"><title>slot ${l.slot}, ${esc(w.step)}: waited ${num((w.toT - w.fromT) / 1000, 3)} s for ${esc(w.instrument)}${w.timedOut ? ' (timed out)' : ''}</title></rect>`).join('');
      return `<g class="lane" data-slot="${l.slot}"><text x="${px(x0 - 6)}" y="${px(yb + h / 2)}" dy="0.32em" text-anchor="end">slot ${l.slot}</text>${steps}${ws}</g>`;
    })
    .join('');
  const defs = '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff7d6"/><line x1="0" y1="0" x2="0" y2="6" stroke="#8a5a00" stroke-width="2"/></pattern></defs>';
  const body = defs + legend(f, [{ label: 'step passed', cls: 'step pass', kind: 'box' }, { label: 'step failed', cls: 'step fail', kind: 'box' }, { label: 'waiting for an instrument', cls: 'wait', kind: 'box' }]) + xAxis(f, x, 'seconds since the first step', 8) + lanes;
  return svg(id, f, 'Slot timeline', `${tl.lanes.length} slot lane(s), ${waits} instrument wait(s)`, body);
}
