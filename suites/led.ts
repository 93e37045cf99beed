import { ConfigError } from '../rig/core/errors.ts';
import type { UncertaintySpec } from './model/uncertainty.ts';
import { blinkPeriod, edges, litPercent, sampleLight, type LightSample } from './light-samples.ts';
import { declareMeasurement, stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { PlanLimit, SuiteEntry } from './plan/schema.ts';
import { plugOnline } from './plug-online.ts';
import type { Step, StepContext } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';

export type LedSuiteEntry = Extract<SuiteEntry, { suite: 'led' }>;

/** Edge times are quantised by the sampling interval (light-samples.ts blinkPeriod). */
const PERIOD_BUDGET: UncertaintySpec = { k: 2, contributions: [{ name: 'sampling interval', distribution: 'triangular' }] };
/** Mains off long enough for the plug's supply to collapse before the next power-on. */
const POWER_OFF_MS = 1000;
/** OpenBeken opens its AP ~5 ticks after the 1 s timer starts; before that it blinks the not-connected pattern (§3). */
const AP_START_MS = 6500;

/**
 * The Wi-Fi LED as the jig's light sensor sees it: after a power-on the not-connected blink (period
 * from the sampled levels, not just "lit"), solid once connected, and in AP mode (when the plan
 * asks) the AP blink. Limits from the plan.
 */
export function ledSuite(entry: LedSuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const il = hw.io.interlock;
  const c = (): SlotHardware['io']['components'] => hw.io.components;
  const policy = stepPolicy(entry, defaults);
  if (entry.apMode && !entry.limits.apBlinkPeriodMs) throw new ConfigError('led suite: apMode needs limits.apBlinkPeriodMs', { slot: hw.spec.id, step: 'plan' });
  const read = (): { level: number | undefined; lit: boolean } => ({ level: c().lightLevel(), lit: c().ledLit() });
  const powerCycle = async (ctx: StepContext): Promise<void> => {
    await il.power3v3(false);
    await il.disconnectUart();
    await il.mainsOff();
    await ctx.clock.sleep(POWER_OFF_MS, ctx.signal);
    await il.mainsOn();
  };
  const measurePeriod = async (ctx: StepContext, id: string, skipMs: number): Promise<Record<string, unknown>> => {
    const s = sampleLight(ctx.clock, read, entry.sampleMs, ctx.signal);
    await ctx.clock.sleep(skipMs + entry.blinkWindowMs, ctx.signal);
    await s.stop();
    const from = s.samples[0] ? s.samples[0].t + skipMs : 0;
    const window = s.samples.filter((x) => x.t >= from);
    const e = edges(window);
    const p = blinkPeriod(e, entry.sampleMs);
    if (ctx.check('LED blinks (at least 3 edges in the window)', p !== undefined, { edges: e.length, litPct: litPercent(window), windowMs: entry.blinkWindowMs })) {
      ctx.measure(id, p!.periodMs, { contributions: { 'sampling interval': p!.samplingHalfWidthMs }, diag: { halfPeriods: p!.halfPeriods } });
    }
    return { edges: e.length, periodMs: p?.periodMs ?? null, ...levels(window) };
  };
  const periodStep = (id: 'connectingBlinkPeriodMs' | 'apBlinkPeriodMs', limit: PlanLimit, name: string, skipMs: number): Step => ({
    name,
    ...policy,
    timeoutMs: Math.max(policy.timeoutMs, POWER_OFF_MS + skipMs + entry.blinkWindowMs + 10_000),
    measurements: [declareMeasurement({ id, name: id === 'apBlinkPeriodMs' ? 'AP-mode blink period' : 'not-connected blink period', unit: 'ms', uncertainty: PERIOD_BUDGET }, limit, defaults)],
    run: async (ctx) => {
      await powerCycle(ctx);
      return measurePeriod(ctx, id, skipMs);
    },
  });
  return [
    ...(entry.limits.connectingBlinkPeriodMs
      ? [periodStep('connectingBlinkPeriodMs', entry.limits.connectingBlinkPeriodMs, 'LED blinks the not-connected pattern after power-on', 0)]
      : []),
    {
      name: 'LED solid while connected to the station network',
      ...policy,
      measurements: [declareMeasurement({ id: 'connectedLitPct', name: 'LED lit while connected', unit: '%' }, entry.limits.connectedLitPct, defaults)],
      run: async (ctx) => {
        await il.power3v3(false);
        await il.disconnectUart();
        await il.mainsOn();
        if (hw.plug) await plugOnline(hw, ctx, Math.max(5000, policy.timeoutMs - entry.solidWindowMs - 2000));
        const s = sampleLight(ctx.clock, read, entry.sampleMs, ctx.signal);
        await ctx.clock.sleep(entry.solidWindowMs, ctx.signal);
        await s.stop();
        ctx.measure('connectedLitPct', litPercent(s.samples), { diag: { samples: s.samples.length, edges: edges(s.samples).length } });
        return { samples: s.samples.length, edges: edges(s.samples).length, ...levels(s.samples) };
      },
    },
    ...(entry.apMode && entry.limits.apBlinkPeriodMs ? [periodStep('apBlinkPeriodMs', entry.limits.apBlinkPeriodMs, 'LED blinks the AP pattern (unit without Wi-Fi credentials)', AP_START_MS)] : []),
  ];
}

function levels(samples: readonly LightSample[]): { minLevel: number | null; maxLevel: number | null } {
  const v = samples.flatMap((s) => (s.level === undefined ? [] : [s.level]));
  return { minLevel: v.length ? Math.min(...v) : null, maxLevel: v.length ? Math.max(...v) : null };
}
