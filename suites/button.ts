import { InterlockError } from '../rig/core/errors.ts';
import { resolveLimits } from './model/limits.ts';
import type { UncertaintySpec } from './model/uncertainty.ts';
import { declareMeasurement, stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { SuiteEntry } from './plan/schema.ts';
import { plugOnline } from './plug-online.ts';
import type { Step, StepContext } from './runner/step.ts';
import { waitFor, type SlotHardware } from './slot-hardware.ts';

export type ButtonSuiteEntry = Extract<SuiteEntry, { suite: 'button' }>;

/** waitFor polls every 20 ms: the toggle is seen up to one poll late. */
const POLL_MS = 20;
const TIMING_BUDGET: UncertaintySpec = { k: 2, contributions: [{ name: 'polling interval', distribution: 'rectangular' }] };
/** OpenBeken clears Wi-Fi on a double click within 5 s of uptime (openbeken-http.md §2): wait past it. */
const DOUBLE_CLICK_SAFE_UPTIME_S = 6;

/**
 * The jig's actuator on the plug's button: a single click toggles the relay within OpenBeken's
 * click window (measured from the physical release); a double click and a long press do not toggle
 * channel 1. The button is P10, which is also RX1: every step asserts from the interlock's state
 * that the UART side is isolated (a connected adapter's TX would hold or drive the line).
 */
export function buttonSuite(entry: ButtonSuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const il = hw.io.interlock;
  const c = (): SlotHardware['io']['components'] => hw.io.components;
  const policy = stepPolicy(entry, defaults);
  const high = resolveLimits(entry.limits.toggleTimeMs, 'button suite toggleTimeMs', 0).high;
  const toggleWait = 2 * (high ?? entry.quietMs);
  const isolated = (ctx: StepContext, when: string): void => {
    const st = il.state();
    const ok = st.uart === 'off' && st.power3v3 === 'off' && st.mains === 'on';
    ctx.check(`UART isolated, 3V3 off, mains on (interlock state, ${when})`, ok, { uart: st.uart, power3v3: st.power3v3, mains: st.mains });
    if (!ok) throw new InterlockError(`button suite: P10 is RX1, the UART must be isolated ${when} (interlock says uart ${st.uart}, 3V3 ${st.power3v3}, mains ${st.mains})`, { slot: hw.spec.id, step: 'button' });
  };
  const noToggle = (what: string, act: () => Promise<void>): Step => ({
    name: `${what} does not toggle channel 1`,
    ...policy,
    run: async (ctx) => {
      isolated(ctx, 'before');
      const before = c().relayOn();
      await act();
      const after = await waitFor(ctx.clock, entry.quietMs, () => c().relayOn(), (v) => v !== before, ctx.signal);
      ctx.check(`relay unchanged ${entry.quietMs} ms after the ${what}`, after === before, { before: before ?? null, after: after ?? null });
      isolated(ctx, 'after');
      return { relay: after ?? null };
    },
  });
  return [
    {
      name: 'UART isolated, mains on, plug up past its double-click Wi-Fi reset window',
      critical: true,
      ...policy,
      run: async (ctx) => {
        await il.power3v3(false);
        await il.disconnectUart();
        await il.mainsOn();
        isolated(ctx, 'during this suite');
        const up = hw.plug
          ? (await plugOnline(hw, ctx, Math.max(5000, policy.timeoutMs - 2000), (i) => (i.uptime_s >= DOUBLE_CLICK_SAFE_UPTIME_S ? true : `up for ${i.uptime_s} s only`))).info.uptime_s
          : undefined;
        if (!hw.plug) await ctx.clock.sleep(DOUBLE_CLICK_SAFE_UPTIME_S * 1000, ctx.signal);
        return { uptime: up ?? null };
      },
    },
    {
      name: 'single click toggles the relay within the click window',
      ...policy,
      measurements: [declareMeasurement({ id: 'toggleTimeMs', name: 'click release to relay toggle', unit: 'ms', uncertainty: TIMING_BUDGET }, entry.limits.toggleTimeMs, defaults)],
      run: async (ctx) => {
        isolated(ctx, 'before');
        const before = c().relayOn();
        await c().press(entry.pressMs);
        const released = ctx.clock.now();
        const after = await waitFor(ctx.clock, toggleWait, () => c().relayOn(), (v) => v !== before, ctx.signal);
        const t = ctx.clock.now();
        if (ctx.check('relay toggled after the click', after !== before && after !== undefined, { before: before ?? null, after: after ?? null, withinMs: toggleWait })) {
          ctx.measure('toggleTimeMs', t - released, { contributions: { 'polling interval': POLL_MS / 2 } });
        }
        isolated(ctx, 'after');
        return { before: before ?? null, after: after ?? null };
      },
    },
    noToggle('double click', () => c().doubleClick()),
    noToggle('long press', () => c().press(entry.longPressMs)),
  ];
}
