import { ConfigError } from '../rig/core/errors.ts';
import type { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import { resolveLimits } from './model/limits.ts';
import type { UncertaintySpec } from './model/uncertainty.ts';
import { declareMeasurement, stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { PlanLimit, SuiteEntry } from './plan/schema.ts';
import { plugOnline } from './plug-online.ts';
import type { Step, StepContext } from './runner/step.ts';
import { waitFor, type SlotHardware } from './slot-hardware.ts';

export type RelaySuiteEntry = Extract<SuiteEntry, { suite: 'relay' }>;

/** The reference meter's stated accuracy: a bound, rectangular. */
const METER_BUDGET: UncertaintySpec = { k: 2, contributions: [{ name: 'reference accuracy', distribution: 'rectangular' }] };
/** Times are taken by polling every POLL_MS: an event is seen up to one poll late (rectangular, half-width POLL_MS/2 around the midpoint). */
const POLL_MS = 20;
const TIMING_BUDGET: UncertaintySpec = { k: 2, contributions: [{ name: 'polling interval', distribution: 'rectangular' }] };
const METER_POLL_MS = 100;
/**
 * A meter that states no update interval: PZEM-class, the mean of its last ~1 s interval; two
 * intervals make a whole one at the new state.
 */
const METER_SETTLE_MS = 2200;

/**
 * From a switch until a reading shows only the new state: a reading shows the last interval the
 * meter completed, which ended up to one interval before the query, so a query two intervals after
 * the switch sees one that began after it.
 */
export function meterSettleMs(meter: { updateIntervalMs?: number }): number {
  return meter.updateIntervalMs !== undefined ? 2 * meter.updateIntervalMs : METER_SETTLE_MS;
}

type PowerCommand = 'ON' | 'OFF' | 'TOGGLE';

/**
 * POWER ON / OFF / TOGGLE / TOGGLE confirmed three ways: OpenBeken's reply, the jig's relay-sense
 * input (within switchTimeMs), and the reference meter seeing the load current appear or vanish
 * (within meterTimeMs, then on/off current within limits); and the relay OFF after a reboot: judged
 * on the boot before the suite (`offAfterReboot: 'boot'`, first) or after a `restart` (last).
 */
export function relaySuite(entry: RelaySuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const il = hw.io.interlock;
  const c = (): SlotHardware['io']['components'] => hw.io.components;
  const policy = stepPolicy(entry, defaults);
  const load = entry.load ? hw.spec.pins.loads.find((l) => l.name === entry.load) : hw.spec.pins.loads[0];
  if (!load) throw new ConfigError(`relay suite: slot ${hw.spec.id} has no load ${entry.load ? `'${entry.load}'` : 'at all'} for the reference meter to see`, { slot: hw.spec.id, step: 'plan' });
  const declare = (id: keyof RelaySuiteEntry['limits'], name: string, unit: string, uncertainty: UncertaintySpec) => declareMeasurement({ id, name, unit, uncertainty }, entry.limits[id], defaults);
  // How long to wait for an event: the plan's upper limit, twice (so a late event is measured, not timed out).
  const waitMs = (limit: PlanLimit, what: string): number => {
    const high = resolveLimits(limit, `relay suite ${what}`, 0).high;
    if (high === undefined) throw new ConfigError(`relay suite: ${what} needs an upper limit (high or a tolerance)`, { slot: hw.spec.id, step: 'plan' });
    return 2 * high;
  };
  const switchWait = waitMs(entry.limits.switchTimeMs, 'switchTimeMs');
  const meterWait = waitMs(entry.limits.meterTimeMs, 'meterTimeMs');
  const offHigh = resolveLimits(entry.limits.offCurrentA, 'relay suite offCurrentA', 0).high;
  if (offHigh === undefined) throw new ConfigError('relay suite: offCurrentA needs an upper limit', { slot: hw.spec.id, step: 'plan' });
  const ref = (v: number): Record<string, number> => ({ 'reference accuracy': hw.meter.uncertainty('amps', v) });
  const settleMs = meterSettleMs(hw.meter);
  // When the relay was last seen to switch (its contacts had moved by then): the current steps wait
  // from here, not from their own start, for a reading of the new state alone.
  let switchedAt: number | undefined;
  /** Sleep until a meter reading can show only what has been on since `since`. */
  const settledSince = async (ctx: StepContext, since: number): Promise<void> => {
    const left = since + settleMs - ctx.clock.now();
    if (left > 0) await ctx.clock.sleep(left, ctx.signal);
  };
  let client: ObkHttpClient | undefined;
  const plug = async (ctx: StepContext): Promise<ObkHttpClient> => (client ??= (await plugOnline(hw, ctx, Math.max(5000, policy.timeoutMs - 5000))).client);

  const commandStep = (cmd: PowerCommand, i: number, loadOffAfter = false): Step => ({
    name: `POWER ${cmd}${cmd === 'TOGGLE' ? ` (${i})` : ''}: API reply, relay sense, load current`,
    ...policy,
    needs: ['meter'],
    measurements: [
      declare('switchTimeMs', 'relay switch time (command to relay sense)', 'ms', TIMING_BUDGET),
      declare('meterTimeMs', 'load current change time (command to reference meter)', 'ms', TIMING_BUDGET),
    ],
    run: async (ctx) => {
      await il.power3v3(false);
      await il.disconnectUart();
      await il.mainsOn();
      await il.setLoad(load.name, true);
      const api = await plug(ctx);
      const before = c().relayOn() === true;
      const want = cmd === 'ON' ? true : cmd === 'OFF' ? false : !before;
      const word = want ? 'ON' : 'OFF';
      // From the moment the command leaves: OpenBeken switches before it replies.
      const t0 = ctx.clock.now();
      const reply = await api.cmnd(`POWER ${cmd}`);
      const res = reply.res as { POWER?: unknown } | undefined;
      ctx.check(`API replies {"POWER":"${word}"}`, res?.POWER === word, { reply: reply.res as Record<string, unknown> });
      switchedAt = undefined;
      const sensed = await waitFor(ctx.clock, switchWait, () => c().relayOn(), (v) => v === want, ctx.signal);
      const tSense = ctx.clock.now();
      if (ctx.check(`relay sense reads ${word}`, sensed === want, { sensed: sensed ?? null, withinMs: switchWait })) {
        switchedAt = tSense;
        ctx.measure('switchTimeMs', tSense - t0, { contributions: { 'polling interval': POLL_MS / 2 } });
      }
      const seen = await waitMeter(hw, ctx, meterWait, (amps) => (want ? amps > offHigh : amps <= offHigh));
      if (ctx.check(`reference meter sees the load current ${want ? 'appear' : 'vanish'}`, seen !== undefined, { withinMs: meterWait, offHighA: offHigh })) {
        ctx.measure('meterTimeMs', seen!.t - t0, { contributions: { 'polling interval': seen!.gapMs / 2 } });
      }
      if (loadOffAfter) await il.setLoad(load.name, false);
      return { reply: reply.res as Record<string, unknown>, sensed: sensed ?? null, ampsSeen: seen?.amps ?? null };
    },
  });
  const currentStep = (state: 'ON' | 'OFF'): Step => {
    const id = state === 'ON' ? 'onCurrentA' : 'offCurrentA';
    return {
      name: `load current with the relay ${state} (reference meter)`,
      ...policy,
      needs: ['meter'],
      measurements: [declare(id, `load current, relay ${state.toLowerCase()}`, 'A', METER_BUDGET)],
      run: async (ctx) => {
        // A whole meter interval after the switch (unknown: after this step began).
        await settledSince(ctx, switchedAt ?? ctx.clock.now());
        const r = await hw.meter.read();
        const vn = hw.mainsVolts;
        // A resistive (or fixed-PF) load's rating is at nominal voltage: I = P·(V/Vn)² / (V·PF).
        // No voltage reading (mains absent) falls back to the rating at nominal voltage: never a nominal of 0 A.
        const v = r.volts > 0 ? r.volts : vn;
        const nominal = state === 'ON' ? (load.watts * (v / vn) ** 2) / (v * load.pf) : 0;
        ctx.measure(id, r.amps, { nominal, contributions: ref(r.amps), diag: { volts: r.volts, watts: r.watts } });
        return { volts: r.volts, amps: r.amps, watts: r.watts };
      },
    };
  };
  const atBoot = entry.offAfterReboot === 'boot';
  /**
   * The relay as the boot left it, before anything switches it: sense, API and the meter with the
   * load connected (asked while the meter integrates: a closed relay would show as current).
   */
  const offAfterBoot: Step = {
    name: 'relay OFF after the boot (sense, API, meter)',
    ...policy,
    needs: ['meter'],
    timeoutMs: Math.max(policy.timeoutMs, entry.rebootWithinMs + 10_000),
    run: async (ctx) => {
      await il.power3v3(false);
      await il.disconnectUart();
      // Already on: the boot was the mains-on before this suite (the plan switches no relay in between).
      const booting = il.state().mains !== 'on';
      await il.mainsOn();
      await il.setLoad(load.name, true);
      const loadOn = ctx.clock.now();
      const api = await plug(ctx);
      const sensed = c().relayOn();
      ctx.check('relay sense reads OFF after the boot (default state)', sensed === false, { sensed: sensed ?? null });
      const info = await api.info();
      const state = (await api.cmnd('POWER')).res as { POWER?: unknown } | undefined;
      ctx.check('API reports POWER OFF after the boot', state?.POWER === 'OFF', { reply: state ?? null });
      await settledSince(ctx, loadOn);
      const r = await hw.meter.read();
      ctx.check('reference meter sees no load current after the boot (load connected)', r.amps <= offHigh, { amps: r.amps, offHighA: offHigh });
      ctx.check('relay sense still OFF', c().relayOn() === false);
      return { booted: booting ? 'in this step' : 'before this suite', uptime: info.uptime_s, amps: r.amps };
    },
  };
  const restartStep = (): Step => ({
    name: 'relay OFF after a restart (sense, API, meter)',
    ...policy,
    needs: ['meter'],
    timeoutMs: Math.max(policy.timeoutMs, entry.rebootWithinMs + 10_000),
    run: async (ctx) => {
      await il.mainsOn();
      const api = await plug(ctx);
      try {
        await il.setLoad(load.name, true);
        await api.cmnd('POWER ON');
        const on = await waitFor(ctx.clock, switchWait, () => c().relayOn(), (v) => v === true, ctx.signal);
        ctx.check('relay closed before the restart', on === true);
        const before = await api.info();
        await api.restart();
        const off = await waitFor(ctx.clock, entry.rebootWithinMs, () => c().relayOn(), (v) => v === false, ctx.signal);
        ctx.check('relay sense OFF across the restart', off === false);
        // Located again: after a reboot the plug may be at another address (a new lease), and a
        // client kept from before would knock on a closed port.
        const back = await plugOnline(hw, ctx, entry.rebootWithinMs, (i) => (i.uptime_s < before.uptime_s ? true : `still up for ${i.uptime_s} s`));
        client = back.client;
        const state = (await back.client.cmnd('POWER')).res as { POWER?: unknown } | undefined;
        ctx.check('API reports POWER OFF after the restart', state?.POWER === 'OFF', { reply: state ?? null });
        ctx.check('relay sense still OFF after the boot', c().relayOn() === false);
        const seen = await waitMeter(hw, ctx, meterWait, (amps) => amps <= offHigh);
        ctx.check('reference meter sees no load current after the boot', seen !== undefined, { offHighA: offHigh });
        return { uptimeBefore: before.uptime_s, uptimeAfter: back.info.uptime_s };
      } finally {
        await il.setLoad(load.name, false);
      }
    },
  });
  return [
    ...(atBoot ? [offAfterBoot] : []),
    commandStep('ON', 0),
    currentStep('ON'),
    commandStep('OFF', 0),
    currentStep('OFF'),
    commandStep('TOGGLE', 1),
    commandStep('TOGGLE', 2, atBoot),
    ...(atBoot ? [] : [restartStep()]),
  ];
}

/**
 * Poll the reference meter until its current satisfies ok, within ms: the reading, when it was
 * taken, and the gap since the reading before (the change happened somewhere in that gap).
 */
async function waitMeter(hw: SlotHardware, ctx: StepContext, ms: number, ok: (amps: number) => boolean): Promise<{ t: number; amps: number; gapMs: number } | undefined> {
  const start = ctx.clock.now();
  const end = start + ms;
  let prev = start;
  for (;;) {
    const r = await hw.meter.read();
    const t = ctx.clock.now();
    if (ok(r.amps)) return { t, amps: r.amps, gapMs: t - prev };
    if (t >= end) return undefined;
    prev = t;
    await ctx.clock.sleep(METER_POLL_MS, ctx.signal);
  }
}
