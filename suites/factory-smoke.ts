import { ConfigError } from '../rig/core/errors.ts';
import type { Quantity } from '../rig/meter/reference-meter.ts';
import type { UncertaintySpec } from './model/uncertainty.ts';
import { declareMeasurement, stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { SuiteEntry } from './plan/schema.ts';
import type { Step, StepContext } from './runner/step.ts';
import { waitFor, type SlotHardware } from './slot-hardware.ts';

export type SmokeSuiteEntry = Extract<SuiteEntry, { suite: 'smoke' }>;

/** The reference meter's stated accuracy is a bound with no known distribution: rectangular. */
const REFERENCE_BUDGET: UncertaintySpec = { k: 2, contributions: [{ name: 'reference accuracy', distribution: 'rectangular' }] };
/**
 * The load power's nominal is scaled by the measured voltage (P = rating·(V/Vn)²), so the voltage's
 * standard uncertainty enters too (as 2·P·u(V)/V, already a standard uncertainty). Both terms come
 * from one instrument and may correlate; adding them in quadrature is the smaller, stated choice.
 */
const LOAD_POWER_BUDGET: UncertaintySpec = { k: 2, contributions: [...REFERENCE_BUDGET.contributions, { name: 'nominal via measured voltage', distribution: 'normal' }] };

/**
 * The factory smoke test on mains: isolate the UART, switch mains on through the interlock, then
 * the Wi-Fi LED by the light sensor, the relay by the button, and the reference meter on a load.
 * Every limit comes from the plan entry; the nominals from the jig (mains voltage, load rating).
 */
export function factorySmokeSuite(entry: SmokeSuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const il = hw.io.interlock;
  const c = (): SlotHardware['io']['components'] => hw.io.components;
  const policy = stepPolicy(entry, defaults);
  const load = entry.load ? hw.spec.pins.loads.find((l) => l.name === entry.load) : hw.spec.pins.loads[0];
  if (entry.load && !load) throw new ConfigError(`smoke suite: slot ${hw.spec.id} has no load '${entry.load}' (loads: ${hw.spec.pins.loads.map((l) => l.name).join(', ') || 'none'})`, { slot: hw.spec.id, step: 'plan' });
  const declare = (id: 'mainsVoltage' | 'loadPower' | 'powerFactor', name: string, unit: string, uncertainty: UncertaintySpec) =>
    declareMeasurement({ id, name, unit, uncertainty }, entry.limits[id], defaults);
  const reference = (q: Quantity, v: number): Record<string, number> => ({ 'reference accuracy': hw.meter.uncertainty(q, v) });
  return [
    {
      name: 'isolate UART, then mains on (break-before-make)',
      critical: true,
      ...policy,
      run: async () => {
        await il.power3v3(false);
        await il.disconnectUart();
        await il.mainsOn();
      },
    },
    {
      name: 'firmware boots on mains: Wi-Fi LED lights',
      critical: true,
      ...policy,
      run: async (ctx) => {
        const lit = await waitFor(ctx.clock, entry.ledWithinMs, () => c().ledLit(), (v) => v, ctx.signal);
        ctx.check('LED lit (light sensor above threshold)', lit, { level: c().lightLevel(), threshold: hw.spec.pins.ledSensor.threshold, withinMs: entry.ledWithinMs });
      },
    },
    ...(hw.plug
      ? [
          {
            name: 'OpenBeken answers over HTTP: /api/info MAC = ROM MAC',
            critical: true,
            ...policy,
            // Boot, Wi-Fi join and DHCP take several seconds on a real network.
            timeoutMs: Math.max(policy.timeoutMs, 45_000),
            run: async (ctx: StepContext) => {
              const rom = hw.romSession?.mac;
              const client = await hw.plug!.connect(rom, ctx.signal);
              // On the station network, not just answering: an address from its DHCP (not none, not the AP's 192.168.4.1).
              const info = await client.waitOnline({
                timeoutMs: Math.max(policy.timeoutMs, 45_000) - 2000,
                what: 'online on the station network',
                until: (x) => (x.ip !== '0.0.0.0' && x.ip !== '' && x.ip !== '192.168.4.1' ? true : `answers, but has IP ${x.ip || 'none'} (not joined yet)`),
              });
              ctx.check('joined the station network (an IP from its DHCP)', true, { ip: info.ip });
              ctx.check('chipset BK7231N', info.chipset === 'BK7231N', { chipset: info.chipset });
              ctx.check('MAC from /api/info equals the one the ROM read', rom === undefined || info.mac.toLowerCase() === rom.toLowerCase(), { api: info.mac, rom: rom ?? null });
              ctx.unit({ plugUrl: client.url, build: info.build });
              return { url: client.url, ip: info.ip, mac: info.mac, build: info.build, uptime: info.uptime_s };
            },
          } satisfies Step,
        ]
      : []),
    {
      name: 'button toggles the relay',
      ...policy,
      run: async (ctx) => {
        const before = c().relayOn();
        await c().press(150);
        const on = await waitFor(ctx.clock, entry.relayWithinMs, () => c().relayOn(), (v) => v === !before, ctx.signal);
        ctx.check('relay changed after a press', on === !before, { before, after: on, withinMs: entry.relayWithinMs });
        if (on !== true) {
          await c().press(150);
          await waitFor(ctx.clock, entry.relayWithinMs, () => c().relayOn(), (v) => v === true, ctx.signal);
        }
        ctx.check('relay closed, sensed by the jig', c().relayOn() === true);
      },
    },
    ...(load
      ? [
          {
            name: `reference meter on load ${load.name} (${load.watts} W nominal)`,
            ...policy,
            needs: ['meter'] as const,
            measurements: [
              declare('mainsVoltage', 'mains voltage', 'V', REFERENCE_BUDGET),
              declare('loadPower', 'load power', 'W', LOAD_POWER_BUDGET),
              declare('powerFactor', 'power factor', '', REFERENCE_BUDGET),
            ],
            run: async (ctx) => {
              await il.setLoad(load.name, true);
              try {
                // PZEM-class meters show the mean of their last ~1 s update interval: wait two, so the
                // reading is a whole interval with the load on, not a blend of before and after.
                await ctx.clock.sleep(2200, ctx.signal);
                const r = await hw.meter.read();
                const vn = hw.mainsVolts;
                const volts = ctx.measure('mainsVoltage', r.volts, { nominal: vn, contributions: reference('volts', r.volts) });
                // A resistive load's power scales with V²; the bank's rating is at the nominal voltage.
                const expected = load.watts * (r.volts / vn) ** 2;
                const viaVolts = r.volts > 0 ? (2 * expected * volts.u) / r.volts : 0;
                ctx.measure('loadPower', r.watts, { nominal: expected, contributions: { ...reference('watts', r.watts), 'nominal via measured voltage': viaVolts } });
                ctx.measure('powerFactor', r.pf, { nominal: load.pf, contributions: reference('pf', r.pf) });
                return { volts: r.volts, amps: r.amps, watts: r.watts, pf: r.pf };
              } finally {
                await il.setLoad(load.name, false);
              }
            },
          } satisfies Step,
        ]
      : []),
  ];
}
