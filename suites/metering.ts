import type { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import { dropHandOff, handOffWanted, leaveHandOff } from './calibration-hand-off.ts';
import { declarePoint, measurePoint, plugWithRelayClosed, resolveLoad } from './metering-point.ts';
import { stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { SuiteEntry } from './plan/schema.ts';
import { emptyWindowPool } from './metrology/sample-windows.ts';
import type { Step } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';

export type MeteringSuiteEntry = Extract<SuiteEntry, { suite: 'metering' }>;

/** Boot, Wi-Fi join and DHCP after mains on. */
const ONLINE_MS = 45_000;

/**
 * The plug's BL0937 metering against the reference meter: mains on (UART isolated first), the plug
 * online with its relay closed, then one step per load point of the plan ('none' = creep).
 */
export function meteringSuite(entry: MeteringSuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const policy = stepPolicy(entry, defaults);
  // Resolve every load before anything runs: a plan naming a load the slot lacks is refused at build.
  const points = entry.loadPoints.map((p) => ({ point: p, load: resolveLoad(hw, p.load, 'metering') }));
  let client: ObkHttpClient | undefined;
  return [
    meteringReadyStep(hw, policy, (c) => (client = c)),
    ...points.map(({ point, load }, index): Step => {
      const specs = declarePoint(load, hw, entry.limits, point.limits, defaults);
      // The point's windows, kept across the step's attempts (a retest adds to them).
      const pool = emptyWindowPool();
      return {
        name: load ? `metering at ${load.name} (${load.watts} W, PF ${load.pf})` : 'metering creep (no load)',
        ...policy,
        needs: ['meter'],
        measurements: specs,
        run: async (ctx) => {
          const c = client ?? (await plugWithRelayClosed(ctx, hw));
          // The suite's last point at the calibration load: the load stays on and the windows go on to
          // the calibration, which averages them instead of taking them again (calibration-hand-off.ts).
          const handOff = index === points.length - 1 && handOffWanted(hw, load?.name);
          if (handOff) dropHandOff(hw);
          const r = await measurePoint(ctx, hw, c, load, { settleMs: entry.settleMs, specs, pool, ...(handOff ? { keepLoadOn: true } : {}) });
          if (handOff) leaveHandOff(hw, pool.windows, ctx.clock.now());
          return { ...r, ...(handOff ? { handedToCalibration: pool.windows.length } : {}) };
        },
      };
    }),
  ];
}

/** Mains on through the interlock (break-before-make), the plug online, its relay closed. */
export function meteringReadyStep(hw: SlotHardware, policy: { suite: string; retries: number; timeoutMs: number }, got: (c: ObkHttpClient) => void): Step {
  return {
    name: 'mains on, plug online, relay closed',
    critical: true,
    ...policy,
    timeoutMs: Math.max(policy.timeoutMs, ONLINE_MS + 5000),
    run: async (ctx) => {
      const il = hw.io.interlock;
      await il.power3v3(false);
      await il.disconnectUart();
      await il.mainsOn();
      if (!hw.plug) {
        ctx.check('the plug answers over HTTP (the jig file has a plug section)', false);
        return;
      }
      const c = await hw.plug.connect(hw.romSession?.mac, ctx.signal);
      await c.waitOnline({ timeoutMs: ONLINE_MS, what: 'online for metering' });
      const client = await plugWithRelayClosed(ctx, hw);
      const e = await client.energy();
      ctx.check('the BL0937 driver runs (STATUS 8 has ENERGY)', e !== undefined);
      got(client);
    },
  };
}
