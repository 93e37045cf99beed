import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser } from 'playwright-core';
import { renderHtml } from '../reports/html/html-report.ts';
import { errorPoints, meteringPhase } from '../reports/html/plot-data.ts';
import { clone, fixtureRun } from './fixtures/reports/load.ts';

const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(join(tmpdir(), 'plugrig-html-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const failing = fixtureRun('calibrate-4slot');
const passing = fixtureRun('factory-1slot');
const factory = fixtureRun('factory-full-1slot');

t.test('self-contained and deterministic', async (t) => {
  const html = renderHtml(failing);
  t.equal(renderHtml(clone(failing)), html, 'same results, same bytes');
  t.notMatch(html, /<script\b/i, 'no script at all');
  t.notMatch(html, /\b(src|href)="(?!#)/i, 'no src or href leaving the document');
  t.notMatch(html, /url\((?!#)/i, 'no CSS url() but local pattern references');
  t.notMatch(html, /@import|@font-face/i, 'no external stylesheet or font');
  t.match(html, /<svg id="plot-powerErrorPct-calibrated"/);
  t.notMatch(html, /<svg id="plot-powerErrorPct-as-found"/, 'no as-found plot for a run that measured only after calibration');
  t.match(html, /<svg id="plot-calibration"/);
  t.match(html, /<svg id="plot-takt-step"/);
  t.match(html, /<svg id="plot-takt-slot"/);
  t.match(html, /<svg id="plot-timeline"/);
  t.match(html, />0 %<\/span> yield: 0 of 4 unit\(s\) passed, 4 failed/);
  t.match(renderHtml(passing), />100 %<\/span> yield: 1 of 1 unit\(s\) passed/);
});

t.test('the plots carry the stored numbers', async (t) => {
  const html = renderHtml(failing);
  const points = errorPoints(failing.units, 'powerErrorPct');
  t.equal(points.length, 12, '4 units x 3 load points');
  const plot = /<svg id="plot-powerErrorPct-calibrated"[\s\S]*?<\/svg>/.exec(html)![0];
  t.equal((plot.match(/<circle class="dot[^>]*><title>/g) ?? []).length, points.length, 'a dot per stored value');
  t.equal((plot.match(/<path class="limit"/g) ?? []).length, 2, 'low and high limit lines');
  t.equal((plot.match(/<path class="guard"/g) ?? []).length, 2, 'guard-band lines');
  const v = points[0]!;
  t.match(plot, `slot ${v.slot}, ${v.step}: ${Number(v.value.toPrecision(3))} ± ${Number(v.U.toPrecision(2))} %`, 'the tooltip says the value ± U');
  // limits differ per load point (re-verify at R25 allows ±3 %), so the limit line is not flat
  t.match(plot, /limits 25\.\d W: -3\.\.3, 59\.\d W: -1\.\.1, 100 W: -1\.\.1|limits [^<]*: -3\.\.3/);
  const cal = /<svg id="plot-calibration"[\s\S]*?<\/svg>/.exec(html)![0];
  t.equal((cal.match(/<circle class="dot[^>]*><title>/g) ?? []).length, 12, 'a dot per calibration factor (4 units x V, I, P)');
  t.match(cal, `slot 1: power factor ${Number(failing.units[0]!.calibration!.power!.toPrecision(5))}`);
  const tl = /<svg id="plot-timeline"[\s\S]*?<\/svg>/.exec(html)![0];
  t.equal((tl.match(/<g class="lane"/g) ?? []).length, 4);
  t.equal((tl.match(/<rect class="step (pass|fail)"[^>]*><title>/g) ?? []).length, failing.units.reduce((n, u) => n + u.steps.filter((s) => s.status !== 'skip').length, 0));
});

t.test('as-found and re-verify points are plotted apart, each against its own limits', async (t) => {
  const html = renderHtml(factory);
  t.equal(renderHtml(clone(factory)), html, 'same results, same bytes');
  const plotOf = (phase: string): string => new RegExp(`<svg id="plot-powerErrorPct-${phase}"[\\s\\S]*?</svg>`).exec(html)?.[0] ?? '';
  const asFound = plotOf('as-found');
  const calibrated = plotOf('calibrated');
  t.ok(asFound && calibrated, 'one plot per phase');
  const steps = factory.units[0]!.steps;
  const stored = (phase: 'as-found' | 'calibrated'): string[] => steps.filter((s) => meteringPhase(s) === phase && s.measurements.some((m) => m.id === 'powerErrorPct' && m.taken)).map((s) => s.name).filter((n) => !/creep/.test(n));
  const plotted = (svg: string): string[] => [...svg.matchAll(/<title>slot 1, (.+?): -?[\d.]+ ± /g)].map((m) => m[1]!);
  t.same(plotted(asFound).sort(), stored('as-found').sort(), 'the as-found plot holds the as-found points, nothing else');
  t.same(plotted(calibrated).sort(), stored('calibrated').sort(), 'the re-verify plot holds the points after calibration, nothing else');
  t.ok(stored('as-found').length >= 4 && stored('calibrated').length >= 4, `${stored('as-found').length} as-found and ${stored('calibrated').length} re-verify points`);
  // Each plot's limits are its own steps' stored limits.
  const limitsOf = (phase: 'as-found' | 'calibrated'): string[] => [...new Set(steps.filter((s) => meteringPhase(s) === phase).flatMap((s) => s.measurements.filter((m) => m.id === 'powerErrorPct' && m.limits).map((m) => `${m.limits!.low}..${m.limits!.high}`)))];
  t.ok(limitsOf('as-found').every((l) => asFound.includes(`: ${l}`)) && limitsOf('as-found').every((l) => !calibrated.includes(`: ${l}`)), `as-found limits ${limitsOf('as-found').join(', ')} on the as-found plot only`);
  t.ok(limitsOf('calibrated').every((l) => calibrated.includes(`: ${l}`)) && limitsOf('calibrated').every((l) => !asFound.includes(`: ${l}`)), `re-verify limits ${limitsOf('calibrated').join(', ')} on the re-verify plot only`);
  // The unit's own drill-down plots are split the same way.
  t.match(html, /<svg id="plot-unit-slot-1-powerErrorPct-as-found"/);
  t.match(html, /<svg id="plot-unit-slot-1-powerErrorPct-calibrated"/);
});

t.test('instrument waits are drawn on the timeline', async (t) => {
  const run = clone(passing);
  const step = run.units[0]!.steps.find((s) => s.measurements.length > 0)!;
  run.units[0]!.waits = [{ instrument: 'meter pzem-1', step: step.name, fromT: step.startedT, toT: step.startedT + 1500, timedOut: false }];
  const tl = /<svg id="plot-timeline"[\s\S]*?<\/svg>/.exec(renderHtml(run))![0];
  t.match(tl, `<title>slot 1, ${step.name}: waited 1.5 s for meter pzem-1</title>`);
  t.match(tl, /1 instrument wait\(s\)/);
});

t.test('in a real browser: renders, drills down without JS, screenshot, accessibility', { skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM}` }, async (t) => {
  const file = join(dir, 'report.html');
  writeFileSync(file, renderHtml(factory));
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  t.teardown(() => browser.close());
  const requests: string[] = [];
  // No JS: the report must work as plain HTML + SVG.
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1150, height: 900 } });
  const page = await context.newPage();
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`file://${file}`);
  t.same(requests, [`file://${file}`], 'the page loads nothing but itself');

  for (const phase of ['as-found', 'calibrated'] as const) {
    const p = page.locator(`#plot-powerErrorPct-${phase}`);
    t.ok(await p.isVisible(), `the ${phase} metering error plot is visible`);
    const box = (await p.boundingBox())!;
    t.ok(box.width > 600 && box.height > 250, `${phase} plot laid out at ${Math.round(box.width)}x${Math.round(box.height)}`);
    t.equal(await page.locator(`#plot-powerErrorPct-${phase} g.pt circle.dot`).count(), errorPoints(factory.units, 'powerErrorPct', phase).length, `a dot per ${phase} value`);
  }
  const plot = page.locator('#plot-powerErrorPct-as-found');

  const png = await page.screenshot({ path: join(dir, 'report.png'), fullPage: true });
  t.ok(png.length > 50_000, `full-page screenshot is not blank (${png.length} bytes)`);
  const plotPng = await plot.screenshot();
  const blank = await page.locator('h1').screenshot();
  // A blank 720x320 figure compresses to a few kB; the one-line title is the yardstick (the as-found plot has 5 points).
  t.ok(plotPng.length > 2 * blank.length && plotPng.length > 15_000, `the plot image has content (${plotPng.length} bytes, the title line ${blank.length})`);
  if (process.env.PLUGRIG_KEEP_SCREENSHOT) writeFileSync(process.env.PLUGRIG_KEEP_SCREENSHOT, png);

  // Drill-down: a closed <details> per unit, opened by its summary (native, no JS).
  const details = page.locator('details#unit-slot-1');
  t.equal(await details.getAttribute('open'), null);
  t.notOk(await details.locator('table.measurements').isVisible(), 'measurements hidden before the drill-down');
  await details.locator('summary').click();
  t.ok(await details.locator('table.measurements').isVisible(), 'measurements shown after clicking the unit');
  t.equal(await details.locator('table.measurements tbody tr').count(), factory.units[0]!.steps.reduce((n, s) => n + s.measurements.length, 0));

  // axe needs script in the page: a second context with JS on.
  const axePage = await (await browser.newContext()).newPage();
  await axePage.goto(`file://${file}`);
  await axePage.locator('details#unit-slot-1 summary').click();
  const axe = await new AxeBuilder({ page: axePage }).analyze();
  const bad = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  t.same(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`), [], 'no serious or critical accessibility violation');
  t.ok(axe.passes.length > 10, `axe ran its rules (${axe.passes.length} passed)`);
});
