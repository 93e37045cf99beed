import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { parseJig, type JigSpec, type ResetSpec } from '../rig/jig/jig-config.ts';
import { runStation } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { syntheticStationImage, virtualStationWiring } from './fixtures/virtual-station.ts';

const JIG_TEXT = readFileSync(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url), 'utf8');
const CEN_PIN = 2;
const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;

function jigWithReset(reset: ResetSpec | undefined): JigSpec {
  const raw = JSON.parse(JIG_TEXT) as { slots: Array<{ reset?: unknown }> };
  if (reset) raw.slots[0]!.reset = reset;
  else delete raw.slots[0]!.reset;
  return parseJig(raw, 'virtual-1slot (test)');
}

/** One slot's whole factory smoke session on the VirtualClock; the CEN pin's active spans and the slot's physical history. */
async function smoke(jig: JigSpec, appBytes: number, planName: 'smoke' | 'flash-only' = 'smoke') {
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock });
  const { vj } = sim;
  const board = vj.boards.get('io0')!;
  // CEN is active-high here (the pin drives the pull-down transistor): record when it was held.
  const cenSpans: number[] = [];
  let cenSince: number | undefined;
  board.onOutput((pin, level) => {
    if (pin !== CEN_PIN) return;
    if (level === true && cenSince === undefined) cenSince = clock.now();
    if (level !== true && cenSince !== undefined) {
      cenSpans.push(Math.round(clock.now() - cenSince));
      cenSince = undefined;
    }
  });
  const wall0 = performance.now();
  try {
    const results = await runStation({
      jig,
      jigPath: 'virtual-1slot (test)',
    plan: loadPlan(planName, PLANS),
      image: syntheticStationImage({ seed: 5, appBytes }),
      baudRate: 2_000_000,
      outDir: mkdtempSync(join(tmpdir(), 'plugrig-vt-')),
      clock,
      log: createLogger({}, 'silent'),
      ...virtualStationWiring(sim),
    });
    return { results, cenSpans, modelMs: clock.now(), wallMs: performance.now() - wall0, history: vj.history(1) };
  } finally {
    await vj.dispose();
  }
}

t.test('a whole slot session (flash, interlock, button, LED, meter) runs on the VirtualClock', async (t) => {
  const r = await smoke(jigWithReset({ method: 'jig-cen', pulseMs: 50 }), 400_000);
  const slot = r.results[0]!;
  t.equal(slot.verdict, 'pass', `every step passed: ${slot.steps.map((s) => `${s.name}=${s.status}`).join('; ')}`);
  t.ok(slot.steps.some((s) => s.name.startsWith('flash')) && slot.steps.some((s) => s.name.startsWith('reference meter')), 'flash and meter steps ran');
  t.ok(r.history.some((e) => e.state.plugRelayClosed && e.state.mainsEnergised), 'the relay was closed by the button with mains on');
  t.same(r.history.filter((e) => e.state.mainsEnergised && e.state.uartConnected), [], 'never mains and UART at once');
  // The 1.15 MB stock-app backup read and 400 kB written at 2 Mbaud plus the settle, LED, button and
  // meter waits: about 20 s of model time. Far more means time ran on while files were written (Clock.hold).
  t.ok(r.modelMs > 9000 && r.modelMs < 28000, `modelled ${r.modelMs.toFixed(0)} ms`);
  t.comment(`one slot's factory smoke: ${(r.modelMs / 1000).toFixed(2)} s of modelled time in ${(r.wallMs / 1000).toFixed(2)} s wall`);
});

t.test("a slot's reset setting in the jig file is honoured by the flash suite", async (t) => {
  const cen = await smoke(jigWithReset({ method: 'jig-cen', pulseMs: 180 }), 32 * 1024, 'flash-only');
  t.equal(cen.results[0]!.verdict, 'pass');
  t.ok(cen.cenSpans.length >= 1, 'the jig pulsed CEN');
  t.same([...new Set(cen.cenSpans)], [180], `every CEN pulse lasted the jig file's 180 ms (saw ${cen.cenSpans.join(', ')})`);

  // Wired like bk7231tools: the adapter's RTS pulls CEN; the jig's CEN pin must stay idle.
  const modem = await smoke(jigWithReset({ method: 'modem-lines', sequence: 'R1|W120|R0' }), 32 * 1024, 'flash-only');
  t.equal(modem.results[0]!.verdict, 'pass', `passed: ${modem.results[0]!.steps.map((s) => `${s.name}=${s.status}`).join('; ')}`);
  t.same(modem.cenSpans, [], 'the jig CEN pin was never driven');
  t.ok(modem.history.some((e) => e.changed.includes('cenLow') && e.state.cenLow), 'the chip was reset through RTS');

  // Power-cycle: the jig's 3V3 goes off for offMs while the UART side is connected (mains off).
  const power = await smoke(jigWithReset({ method: 'power-cycle', offMs: 400 }), 32 * 1024, 'flash-only');
  t.equal(power.results[0]!.verdict, 'pass', `passed: ${power.results[0]!.steps.map((s) => `${s.name}=${s.status}`).join('; ')}`);
  t.same(power.cenSpans, [], 'no CEN pulse');
  const h = power.history;
  const offs = h.flatMap((e, i) => (i > 0 && h[i - 1]!.state.supply3v3 && !e.state.supply3v3 && e.state.uartConnected ? [i] : []));
  const gaps = offs.flatMap((i) => {
    const on = h.slice(i + 1).find((e) => e.state.supply3v3);
    return on ? [on.at - h[i]!.at] : [];
  });
  t.ok(gaps.length >= 1 && gaps.every((g) => g >= 400 && g < 500), `3V3 off for offMs before the link (gaps ${gaps.map((g) => g.toFixed(0)).join(', ')} ms)`);
});
