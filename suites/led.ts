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
 * asks) the AP blink. Limits from the plan. `samplesFrom: 'boot'`: the not-connected blink is judged
 * on the samples of the boot identity watched, the same phase a power cycle would show again.
 */
export function ledSuite(entry: LedSuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const il = hw.io.interlock;
  const c = (): SlotHardware['io']['components'] => hw.io.components;
  const policy = stepPolicy(entry, defaults);
  if (entry.apMode && !entry.limits.apBlinkPeriodMs) throw new ConfigError('led suite: apMode needs limits.apBlinkPeriodMs', { slot: hw.spec.id, step: 'plan' });
  const read = (): { level: number | undefined; lit: boolean } => ({ level: c().lightLevel(), lit: c().ledLit() });
  // Asked for now, filled in by the boot step (identity) that runs before this suite.
  if (entry.samplesFrom === 'boot') hw.bootLight = { sampleMs: entry.sampleMs, connectedMs: entry.solidWindowMs };
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
    return judgePeriod(ctx, id, s.samples.filter((x) => x.t >= from), entry.sampleMs);
  };
  const judgePeriod = (ctx: StepContext, id: string, window: readonly LightSample[], sampleMs: number): Record<string, unknown> => {
    const e = edges(window);
    const p = blinkPeriod(e, sampleMs);
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
      const boot = id === 'connectingBlinkPeriodMs' && entry.samplesFrom === 'boot' ? bootWindow(hw.bootLight?.boot, entry.blinkWindowMs) : undefined;
      if (boot) return { from: 'boot', ...judgePeriod(ctx, id, boot.window, boot.sampleMs) };
      await powerCycle(ctx);
      return { from: 'power cycle', ...(await measurePeriod(ctx, id, skipMs)) };
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
        const judge = (samples: readonly LightSample[], from: string): Record<string, unknown> => {
          ctx.measure('connectedLitPct', litPercent(samples), { diag: { samples: samples.length, edges: edges(samples).length, from } });
          return { from, samples: samples.length, edges: edges(samples).length, ...levels(samples) };
        };
        // Sampled in the background from the moment the plug answered after the boot, while the steps since ran.
        const boot = entry.samplesFrom === 'boot' ? hw.bootLight?.boot : undefined;
        const connected = boot?.connected ? await boot.connected : undefined;
        if (connected && connected.length > 1 && connected.at(-1)!.t - connected[0]!.t >= entry.solidWindowMs) return judge(connected, 'after the boot');
        await il.power3v3(false);
        await il.disconnectUart();
        await il.mainsOn();
        if (hw.plug) await plugOnline(hw, ctx, Math.max(5000, policy.timeoutMs - entry.solidWindowMs - 2000));
        const s = sampleLight(ctx.clock, read, entry.sampleMs, ctx.signal);
        await ctx.clock.sleep(entry.solidWindowMs, ctx.signal);
        await s.stop();
        return judge(s.samples, 'this step');
      },
    },
    ...(entry.apMode && entry.limits.apBlinkPeriodMs ? [periodStep('apBlinkPeriodMs', entry.limits.apBlinkPeriodMs, 'LED blinks the AP pattern (unit without Wi-Fi credentials)', AP_START_MS)] : []),
  ];
}

/**
 * The boot's samples in [mains on, mains on + windowMs], when they show that phase and nothing else:
 * sampled past the window's end, and the LED toggled again after it (so it did not join, and turn
 * solid, inside the window) — or never toggled at all (dark or stuck: a power cycle would show the
 * same). Undefined otherwise: the caller power-cycles.
 */
export function bootWindow(boot: NonNullable<SlotHardware['bootLight']>['boot'], windowMs: number): { window: LightSample[]; sampleMs: number } | undefined {
  if (!boot) return undefined;
  const end = boot.mainsOnT + windowMs;
  const last = boot.samples.at(-1);
  if (!last || last.t < end) return undefined;
  const all = edges(boot.samples);
  if (all.length > 0 && !all.some((t) => t > end)) return undefined;
  return { window: boot.samples.filter((x) => x.t >= boot.mainsOnT && x.t <= end), sampleMs: boot.sampleMs };
}

function levels(samples: readonly LightSample[]): { minLevel: number | null; maxLevel: number | null } {
  const v = samples.flatMap((s) => (s.level === undefined ? [] : [s.level]));
  return { minLevel: v.length ? Math.min(...v) : null, maxLevel: v.length ? Math.max(...v) : null };
}
