import { ConfigError, DutError } from '../rig/core/errors.ts';
import type { ObkEnergy, ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import { beforeSwitch, declarePoint, measurePoint, plugWithRelayClosed, resolveLoad, windowSources } from './metering-point.ts';
import { meteringReadyStep } from './metering.ts';
import { commandText, commandValue, correctionRatios, type CalQuantity } from './metrology/calibration.ts';
import { expectHandOff, takeHandOff } from './calibration-hand-off.ts';
import { sampleAlignedWindows, emptyWindowPool, type AlignedWindow, type WindowRun } from './metrology/sample-windows.ts';
import { stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { SuiteEntry } from './plan/schema.ts';
import type { Step, StepContext } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';

export type CalibrateSuiteEntry = Extract<SuiteEntry, { suite: 'calibrate' }>;

const POLL_MS = 20;
const QUANTITIES: readonly CalQuantity[] = ['voltage', 'current', 'power'];

function same(a: ObkEnergy, b: ObkEnergy): boolean {
  return a.consumptionTotalWh === b.consumptionTotalWh && a.power === b.power && a.voltage === b.voltage && a.current === b.current;
}

/**
 * The length of the window `cur` in 2 ms ticks, from the energy it added: OpenBeken integrates
 * ΔWh = ticks·P/1 800 000 each window (openbeken-http.md §5.1). A late timer stretches a window
 * and the shown value is normalised by it while the raw count is not, so X needs it. 500 when the
 * counter cannot tell (no power, a large total, or a previous snapshot that is not the window before).
 */
export function windowTicks(before: ObkEnergy, cur: ObkEnergy): number {
  // The counter prints as float32: above ~50 Wh its step (>4e-6 Wh) blurs the tick count.
  if (!(cur.power > 0) || Math.abs(cur.consumptionTotalWh) > 50) return 500;
  const t = ((cur.consumptionTotalWh - before.consumptionTotalWh) * 1_800_000) / cur.power;
  return t > 250 && t < 1500 ? Math.round(t) : 500;
}

/** A window published this recently (ms) leaves time to send the three commands before the next boundary. */
const FRESH_WINDOW_MS = 400;

/**
 * Right after a window boundary (the one `last` saw, if it is fresh, else the next one), send the
 * three commands at once with X corrected for the window just published, and confirm no boundary
 * passed meanwhile (else the plug divided by a different window: the attempt is discarded and
 * repeated, up to `tries`). `last`: the final two windows of the averaging run and when the last
 * one was seen, so the commands can go out without waiting a window more.
 */
export async function applyCalibration(
  ctx: Pick<StepContext, 'clock' | 'signal'>,
  client: Pick<ObkHttpClient, 'energy' | 'cmnd'>,
  ratios: Record<CalQuantity, number>,
  tries = 3,
  last?: { before: ObkEnergy; window: ObkEnergy; seenAt: number },
): Promise<{ sent: Record<CalQuantity, string>; window: ObkEnergy; ticks: number; tries: number }> {
  const read = async (): Promise<ObkEnergy> => {
    const e = await client.energy();
    if (!e) throw new DutError('STATUS 8 has no ENERGY block during calibration', { step: 'calibrate' });
    return e;
  };
  for (let attempt = 1; attempt <= tries; attempt++) {
    let before: ObkEnergy;
    let cur: ObkEnergy;
    if (attempt === 1 && last && ctx.clock.now() - last.seenAt < FRESH_WINDOW_MS) {
      before = last.before;
      cur = last.window;
    } else {
      before = await read();
      cur = before;
      const deadline = ctx.clock.now() + 1500;
      while (same(cur, before) && ctx.clock.now() < deadline) {
        await ctx.clock.sleep(POLL_MS, ctx.signal);
        cur = await read();
      }
    }
    const ticks = windowTicks(before, cur);
    const sent = {} as Record<CalQuantity, string>;
    for (const q of QUANTITIES) {
      sent[q] = commandText(q, commandValue(ratios[q], cur[q], ticks));
      const reply = await client.cmnd(sent[q]);
      if (reply.code !== 200) throw new DutError(`${sent[q]} refused: ${reply.code} ${reply.msg}`, { step: 'calibrate' });
    }
    // The factors apply from the next window on; the one published now must still be `cur`.
    const after = await read();
    if (same(after, cur)) return { sent, window: cur, ticks, tries: attempt };
  }
  throw new DutError(`calibration: a window boundary passed while the commands were sent, ${tries} times`, { step: 'calibrate' });
}

/**
 * Production calibration: average the plug's windows against the reference at the high-power point,
 * set V/I/P so the factor reflects the average (synchronised to the window boundary, X corrected for
 * the window OpenBeken divides by), measure the cal point again (the factor the plug now applies, as
 * its result against the reference: OpenBeken at HEAD has no command that prints the factors), then
 * re-verify at the other points.
 */
export function calibrateSuite(entry: CalibrateSuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const policy = stepPolicy(entry, defaults);
  const calLoad = resolveLoad(hw, entry.load, 'calibrate');
  if (!calLoad) throw new ConfigError(`calibrate suite: the calibration point needs a load, not '${entry.load}'`, { slot: hw.spec.id, step: 'plan' });
  const reverify = entry.reverify.map((p) => ({ point: p, load: resolveLoad(hw, p.load, 'calibrate') }));
  let client: ObkHttpClient | undefined;
  const connected = async (ctx: StepContext): Promise<ObkHttpClient> => client ?? (client = await plugWithRelayClosed(ctx, hw));
  const calSpecs = declarePoint(calLoad, hw, entry.limits, undefined, defaults);
  // Each verification step's windows, kept across its attempts (a retest adds to them).
  const calPool = emptyWindowPool();
  expectHandOff(hw, calLoad.name);
  return [
    meteringReadyStep(hw, policy, (c) => (client = c)),
    {
      name: `calibrate at ${calLoad.name} (${calLoad.watts} W): ${entry.windows} windows averaged, VoltageSet/CurrentSet/PowerSet`,
      critical: true,
      ...policy,
      needs: ['meter'],
      run: async (ctx) => {
        const c = await connected(ctx);
        const il = hw.io.interlock;
        // The metering suite's as-found windows at this load, if it just took them and the load stayed on.
        const handed = takeHandOff(hw, calLoad.name, ctx.clock.now());
        if (!handed) {
          await beforeSwitch(ctx, hw, calLoad.name);
          await il.setLoad(calLoad.name, true);
        }
        let applied: Awaited<ReturnType<typeof applyCalibration>> | undefined;
        try {
          // The window the load came on in is thrown away; every averaged window is clean. Handed-over
          // windows count towards the plan's number (at least one is taken now: the commands go out
          // right after a boundary this step saw).
          const sources = windowSources(ctx, hw, c);
          const run: WindowRun = handed
            ? await sampleAlignedWindows(sources, Math.max(1, entry.windows - handed.length), { continues: handed[handed.length - 1]! })
            : await sampleAlignedWindows(sources, entry.windows, { cleanAfter: ctx.clock.now() });
          const ws: AlignedWindow[] = [...(handed ?? []), ...run.windows];
          const ratios = correctionRatios(ws);
          // The last window and the one published right before it (X is corrected for the window the plug divides by).
          const lastPrior = run.priors[run.priors.length - 1];
          const lastTwo = lastPrior?.adjacent ? { before: lastPrior.snapshot, window: run.windows[run.windows.length - 1]!.plug, seenAt: run.windows[run.windows.length - 1]!.seenAt } : undefined;
          applied = await applyCalibration(ctx, c, ratios, 3, lastTwo);
          const id = await hw.meter.identity();
          const readings = ws.map((w) => ({ t: w.seenAt, plug: { v: w.plug.voltage, i: w.plug.current, p: w.plug.power }, ref: { v: w.ref.volts, i: w.ref.amps, p: w.ref.watts } }));
          ctx.unit({
            calibration: {
              load: calLoad.name,
              ratios,
              commands: applied.sent,
              window: { voltage: applied.window.voltage, current: applied.window.current, power: applied.window.power },
              reference: { model: `${id.manufacturer} ${id.model}`, serial: id.serial ?? null, calibrationDate: id.calibrationDate ?? null },
              readings,
            },
          });
          return { ratios, commands: applied.sent, ticks: applied.ticks, tries: applied.tries, windows: ws.length, fromAsFound: handed?.length ?? 0, consecutive: run.consecutive };
        } finally {
          // Applied: the load stays on for the next step, which measures the new factor at once.
          if (!applied) await il.setLoad(calLoad.name, false);
        }
      },
    },
    {
      name: `after calibration at ${calLoad.name}: the factor the plug applies`,
      ...policy,
      needs: ['meter'],
      measurements: calSpecs,
      // The factors apply from the window after the commands: the next boundary's window already shows them.
      run: async (ctx) => ({ ...(await measurePoint(ctx, hw, await connected(ctx), calLoad, { settleMs: 0, specs: calSpecs, pool: calPool })) }),
    },
    ...reverify.map(({ point, load }): Step => {
      const specs = declarePoint(load, hw, entry.limits, point.limits, defaults);
      const pool = emptyWindowPool();
      return {
        name: load ? `re-verify at ${load.name} (${load.watts} W, PF ${load.pf})` : 're-verify creep (no load)',
        ...policy,
        needs: ['meter'],
        measurements: specs,
        run: async (ctx) => ({ ...(await measurePoint(ctx, hw, await connected(ctx), load, { settleMs: 0, specs, pool })) }),
      };
    }),
  ];
}
