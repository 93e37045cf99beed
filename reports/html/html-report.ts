import type { MeasurementResult } from '../../suites/model/measurement.ts';
import type { StepResult } from '../../suites/model/step-result.ts';
import { num } from '../format.ts';
import { runCounts, unitOutcome, type ReportRun, type ReportUnit } from '../report-run.ts';
import { unitName } from '../run-tap.ts';
import { calibrationFactors, errorPoints, METERING_PHASES, taktPerSlot, taktPerStep, timeline } from './plot-data.ts';
import { calibrationPlot, errorVsLoadPlot, taktPerSlotPlot, taktPerStepPlot, timelinePlot } from './plots.ts';
import { esc } from './svg.ts';

/** Metering errors plotted against load, in this order, when the run has them. */
const ERROR_QUANTITIES: ReadonlyArray<{ id: string; quantity: string; unit: string }> = [
  { id: 'powerErrorPct', quantity: 'power error', unit: '%' },
  { id: 'currentErrorPct', quantity: 'current error', unit: '%' },
  { id: 'voltageErrorPct', quantity: 'voltage error', unit: '%' },
];

/**
 * One self-contained HTML file for a run: no script, no external stylesheet, font or image, readable
 * without JS (drill-down through <details>), printable. Everything comes from the ReportRun, so the
 * same store renders the same bytes.
 */
export function renderHtml(run: ReportRun): string {
  const c = runCounts(run);
  const title = `plugrig run ${run.runId}`;
  const plots: Array<[string, string]> = [
    ...ERROR_QUANTITIES.flatMap((q) =>
      METERING_PHASES.map(({ phase, label }): [string, string] => {
        const title = `Metering ${q.quantity} vs load ${label}, all units`;
        return [`${title}, against the ${phase === 'as-found' ? 'as-found' : 're-verify'} limits`, errorVsLoadPlot(`plot-${q.id}-${phase}`, errorPoints(run.units, q.id, phase), { title, quantity: q.quantity, unit: q.unit })];
      }),
    ),
    ['Calibration factor distribution', calibrationPlot('plot-calibration', calibrationFactors(run))],
    ['Takt time per step (mean over units; a retried step counts its final attempt)', taktPerStepPlot('plot-takt-step', taktPerStep(run))],
    ['Takt time per slot', taktPerSlotPlot('plot-takt-slot', taktPerSlot(run))],
    ['Slot timeline with instrument waits (gaps before a step are its earlier attempts)', timelinePlot('plot-timeline', timeline(run))],
  ];
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${esc(title)}</h1>
${meta(run)}
</header>
<main>
<section aria-labelledby="summary-h">
<h2 id="summary-h">Summary</h2>
<p class="yield"><span class="big">${num(100 * c.yield, 4)} %</span> yield: ${c.passed} of ${c.units} unit(s) passed${c.flagged ? `, ${c.flagged} flagged` : ''}${c.failed ? `, ${c.failed} failed` : ''}${c.incomplete ? `, ${c.incomplete} never finished` : ''}${run.aborted ? ' (run aborted)' : ''}.</p>
</section>
<section aria-labelledby="units-h">
<h2 id="units-h">Units</h2>
${unitTable(run)}
</section>
<section aria-labelledby="plots-h">
<h2 id="plots-h">Plots</h2>
${plots.filter(([, svg]) => svg !== '').map(([caption, svg]) => `<figure>${svg}<figcaption>${esc(caption)}</figcaption></figure>`).join('\n')}
</section>
<section aria-labelledby="detail-h">
<h2 id="detail-h">Unit details</h2>
${run.units.map((u) => unitDetail(u)).join('\n')}
</section>
</main>
</body>
</html>
`;
}

function meta(run: ReportRun): string {
  const rows: Array<[string, string | undefined]> = [
    ['run', run.runId],
    ['station', run.station],
    ['plan', `${run.plan.name} (sha256 ${run.plan.sha256.slice(0, 16)}…)`],
    ['jig', run.jig.name],
    ['image', run.image ? `${run.image.name}${run.image.version ? ` ${run.image.version}` : ''}${run.image.sha256 ? ` (sha256 ${run.image.sha256.slice(0, 16)}…)` : ''}` : undefined],
    ['reference', run.instruments.length ? run.instruments.map((i) => `${i.model}${i.serial ? ` s/n ${i.serial}` : ''}${i.calibrationDate ? `, calibrated ${i.calibrationDate}` : ''}`).join('; ') : undefined],
    ['started', run.startedAt],
    ['finished', run.finishedAt ?? (run.aborted ? 'never (aborted)' : 'not yet')],
  ];
  return `<dl class="meta">${rows.filter((r) => r[1] !== undefined).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v!)}</dd>`).join('')}</dl>`;
}

function verdictBadge(u: ReportUnit): string {
  const o = unitOutcome(u);
  const text = o === 'pass' ? (u.flagged ? '✔ PASS (flagged)' : '✔ PASS') : o === 'fail' ? '✘ FAIL' : '… INCOMPLETE';
  return `<span class="verdict ${o}">${text}</span>`;
}

function unitTable(run: ReportRun): string {
  const rows = run.units.map((u) => {
    const ran = u.steps.filter((s) => s.status !== 'skip');
    const ms = ran.reduce((s, x) => s + x.ms, 0);
    const failed = u.steps.filter((s) => s.status === 'fail').length;
    const skipped = u.steps.length - ran.length;
    return `<tr><th scope="row"><a href="#unit-${esc(u.id)}">slot ${u.slot}</a></th><td>${esc(u.mac ?? '-')}</td><td>${esc(u.serial ?? '-')}</td><td>${verdictBadge(u)}</td><td class="n">${u.steps.length - failed - skipped} / ${failed} / ${skipped}</td><td class="n">${num(ms / 1000, 4)} s</td><td>${esc(u.reason ?? '')}</td></tr>`;
  });
  return `<table class="units"><caption>Every unit of the run; the slot links to its details</caption><thead><tr><th scope="col">slot</th><th scope="col">MAC</th><th scope="col">serial</th><th scope="col">verdict</th><th scope="col">steps pass / fail / skip</th><th scope="col">step time</th><th scope="col">reason</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function unitDetail(u: ReportUnit): string {
  const measurements = u.steps.flatMap((s) => s.measurements.map((m) => ({ s, m })));
  const errPlots = METERING_PHASES.map(({ phase, label }) => errorVsLoadPlot(`plot-unit-${u.id}-powerErrorPct-${phase}`, errorPoints([u], 'powerErrorPct', phase), { title: `Slot ${u.slot}: power error vs load ${label}`, quantity: 'power error', unit: '%' })).filter((p) => p !== '');
  return `<details id="unit-${esc(u.id)}" class="unit"><summary>${esc(unitName(u))} ${verdictBadge(u)}</summary>
<table class="steps"><caption>Steps of slot ${u.slot}</caption><thead><tr><th scope="col">#</th><th scope="col">suite</th><th scope="col">step</th><th scope="col">status</th><th scope="col">attempt</th><th scope="col">time</th><th scope="col">reason</th></tr></thead><tbody>${u.steps.map(stepRow).join('')}</tbody></table>
${measurements.length ? `<table class="measurements"><caption>Measurements of slot ${u.slot}</caption><thead><tr><th scope="col">step</th><th scope="col">measurement</th><th scope="col">value</th><th scope="col">U (k)</th><th scope="col">limits</th><th scope="col">marginal band</th><th scope="col">verdict</th><th scope="col">decision</th></tr></thead><tbody>${measurements.map(({ s, m }) => measurementRow(s, m)).join('')}</tbody></table>` : ''}
${u.calibration ? `<p>Calibration factors: ${Object.entries(u.calibration).map(([q, f]) => `${esc(q)} ${num(f, 6)}`).join(', ')}</p>` : ''}
${errPlots.map((p) => `<figure>${p}</figure>`).join('\n')}
</details>`;
}

function stepRow(s: StepResult): string {
  const retry = s.earlierAttempts.length ? ` <span class="note">(${s.earlierAttempts.map((a) => `#${a.attempt} ${a.status}: ${esc(a.reason)}`).join('; ')})</span>` : '';
  return `<tr class="${s.status}"><td class="n">${s.index}</td><td>${esc(s.suite ?? '')}</td><td>${esc(s.name)}</td><td><span class="status ${s.status}">${s.status}${s.flagged ? ' (flagged)' : ''}</span></td><td class="n">${s.attempt} / ${s.maxAttempts}</td><td class="n">${num(s.ms / 1000, 4)} s</td><td>${esc(s.reason ?? '')}${retry}</td></tr>`;
}

function measurementRow(s: StepResult, m: MeasurementResult): string {
  const lim = m.limits;
  const band = lim && (lim.marginalLow !== undefined || lim.marginalHigh !== undefined) ? `${num(lim.marginalLow)} .. ${num(lim.marginalHigh)}` : '-';
  return `<tr><td>${esc(s.name)}</td><td>${esc(m.name)}</td><td class="n">${m.taken ? `${num(m.value)} ${esc(m.unit)}` : 'not taken'}</td><td class="n">${m.taken ? `${num(m.U, 3)} (k=${num(m.k)})` : '-'}</td><td class="n">${lim ? `${num(lim.low)} .. ${num(lim.high)}` : '-'}</td><td class="n">${band}</td><td><span class="status ${m.verdict}">${m.verdict}</span></td><td>${esc(m.decision)}${m.verdict === 'pass' ? '' : `: ${esc(m.reason)}`}</td></tr>`;
}

/** Series colours (one per slot modulo 8), each ≥ 3:1 against white. */
const PALETTE = ['#3b6ea8', '#c2410c', '#2e7d32', '#7b3fa0', '#a16207', '#0f766e', '#be185d', '#475569'];

/** Colours chosen for ≥ 4.5:1 text contrast on white; verdicts carry a symbol and a word, not colour alone. */
const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1b1b1b;background:#fff;margin:0 auto;max-width:1100px;padding:16px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}dl.meta dt{font-weight:600}dl.meta dd{margin:0;word-break:break-all}
.yield .big{font-size:28px;font-weight:700}
table{border-collapse:collapse;margin:8px 0;width:100%}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid #d0d0d0;padding:3px 6px;text-align:left;vertical-align:top}thead th{background:#f0f0f0}td.n{text-align:right;white-space:nowrap}
.verdict,.status{font-weight:700}.pass{color:#13622a}.fail,.reject{color:#a0211a}.incomplete,.marginal,.skip{color:#6b4a00}
tr.fail td{background:#fdf0ef}.note{color:#444;font-size:12px}
details.unit{border:1px solid #ccc;border-radius:4px;margin:8px 0;padding:4px 10px}details.unit summary{cursor:pointer;font-weight:600;padding:4px 0}
figure{margin:12px 0}figcaption{font-weight:600;font-size:13px}svg.plot{max-width:100%;height:auto;font-size:11px;background:#fff}
svg .grid{stroke:#e6e6e6}svg .axis-line{stroke:#555}svg text{fill:#222}svg .axis-label{font-weight:600}
svg .limit{stroke:#a0211a;stroke-width:2;fill:none}svg .guard{stroke:#8a5a00;stroke-width:1.5;stroke-dasharray:6 4;fill:none}svg .mean{stroke:#222;stroke-width:2}
svg .series{fill:none;stroke-width:1.2;opacity:.7}svg .ubar{stroke-width:1.2}svg .dot{stroke:#fff;stroke-width:.8}
svg .bar{fill:#3b6ea8}svg .whisker{stroke:#1b1b1b;stroke-width:1.5}
svg .step.pass{fill:#7fb98f}svg .step.fail{fill:#d9534f}svg .wait{fill:url(#hatch);stroke:#8a5a00}
svg rect.step.pass,svg rect.step.fail,svg rect.bar{stroke:#fff;stroke-width:.5}
svg .legend rect.wait{fill:#fff7d6}
${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `svg .s${i}{stroke:${PALETTE[i]}}svg circle.s${i},svg rect.s${i}{fill:${PALETTE[i]}}`).join('')}
@media print{details.unit{break-inside:avoid}details.unit:not([open])>*:not(summary){display:block}}
`;

