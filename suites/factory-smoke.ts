import type { Bk7231Port } from '../rig/bk7231/port.ts';
import { Bk7231Flasher } from '../rig/bk7231/flasher.ts';
import { CallbackReset } from '../rig/bk7231/reset.ts';
import { InterlockError } from '../rig/core/errors.ts';
import type { Logger } from '../rig/core/log.ts';
import type { SlotSpec } from '../rig/jig/jig-config.ts';
import type { SlotIo } from '../rig/jig/slot-io.ts';
import type { ReferenceMeter } from '../rig/meter/reference-meter.ts';
import type { Step } from './step-runner.ts';

/** What the factory smoke suite needs from a slot. */
export interface SmokeSlot {
  spec: SlotSpec;
  io: SlotIo;
  meter: ReferenceMeter;
  /** Opens the slot's USB-UART (closed again after flashing, before mains comes on). */
  openUart(): Promise<Bk7231Port & { close(): Promise<void> }>;
  image: { bytes: Uint8Array; offset: number; name: string };
  baudRate: number;
  /** Nominal mains voltage of the station (limits are derived from it). */
  mainsVolts: number;
  log: Logger;
}

/** Per-unit facts the steps discover (MAC, flash result) for the unit record. */
export interface SmokeRecord {
  mac?: string;
  flashSeconds?: number;
  sectorsWritten?: number;
}

/** Wait until a condition holds or the budget runs out; returns the final value. */
async function waitFor<T>(clock: { now(): number; sleep(ms: number): Promise<void> }, ms: number, read: () => T, ok: (v: T) => boolean): Promise<T> {
  const end = clock.now() + ms;
  let v = read();
  while (!ok(v) && clock.now() < end) {
    await clock.sleep(20);
    v = read();
  }
  return v;
}

/**
 * Flash over the ROM with the UART side connected, then isolate it and verify the plug on mains:
 * LED, relay by the button, and the reference meter on a load. The mains/UART switching goes
 * through the slot's MainsInterlock only; the last step always returns the slot to its safe state.
 */
export function factorySmokeSteps(s: SmokeSlot, record: SmokeRecord): Step[] {
  const il = s.io.interlock;
  const c = (): SlotIo['components'] => s.io.components;
  const firstLoad = s.spec.pins.loads[0];
  return [
    {
      name: 'jig ready (lid closed, E-stop released, safe state)',
      critical: true,
      run: async (ctx) => {
        await il.safeState();
        const st = il.state();
        ctx.check('lid closed', c().lidClosed() === true, { lid: c().lidClosed() });
        ctx.check('E-stop released', c().estopPressed() === false, { estop: c().estopPressed() });
        if (c().lidClosed() !== true || c().estopPressed() !== false) throw new InterlockError('close the lid and release the E-stop', { slot: s.spec.id, step: 'jig ready' });
        return { interlock: st.fault ? `fault: ${st.fault.reason}` : 'ok' };
      },
    },
    {
      name: 'connect UART and 3V3 (mains off)',
      critical: true,
      run: async () => {
        await il.connectUart();
        await il.power3v3(true);
      },
    },
    {
      name: `flash ${s.image.name}`,
      critical: true,
      run: async (ctx) => {
        const port = await s.openUart();
        const cen = { assert: async () => c().setCen(false), release: async () => c().setCen(true) };
        const flasher = new Bk7231Flasher({ port, reset: new CallbackReset(cen, 50, 'jig CEN'), baudRate: s.baudRate, log: ctx.log });
        const t0 = ctx.clock.now();
        try {
          const info = await flasher.connect();
          ctx.check('chip is a BK7231N', info.chipName === 'BK7231N', { chipId: info.chipId });
          record.mac = info.mac ?? undefined;
          await flasher.unprotect();
          const w = await flasher.write(s.image.bytes, s.image.offset, { diff: true });
          await flasher.reboot();
          record.flashSeconds = (ctx.clock.now() - t0) / 1000;
          record.sectorsWritten = w.sectorsWritten;
          ctx.measure('flash time', record.flashSeconds, 's', { max: 60 });
          return { mac: info.mac, flash: info.flashIdHex, written: w.sectorsWritten, unchanged: w.sectorsUnchanged, crc: '0x' + w.crc.toString(16) };
        } finally {
          await port.close();
        }
      },
    },
    {
      name: 'isolate UART, then mains on (break-before-make)',
      critical: true,
      run: async () => {
        await il.power3v3(false);
        await il.disconnectUart();
        await il.mainsOn();
      },
    },
    {
      name: 'firmware boots on mains: Wi-Fi LED lights',
      critical: true,
      run: async (ctx) => {
        const lit = await waitFor(ctx.clock, 3000, () => c().ledLit(), (v) => v);
        ctx.check('LED lit (light sensor above threshold)', lit, { level: c().lightLevel(), threshold: s.spec.pins.ledSensor.threshold });
      },
    },
    {
      name: 'button toggles the relay',
      run: async (ctx) => {
        const before = c().relayOn();
        await c().press(150);
        const on = await waitFor(ctx.clock, 1000, () => c().relayOn(), (v) => v === !before);
        ctx.check('relay changed after a press', on === !before, { before, after: on });
        if (on !== true) {
          await c().press(150);
          await waitFor(ctx.clock, 1000, () => c().relayOn(), (v) => v === true);
        }
        ctx.check('relay closed, sensed by the jig', c().relayOn() === true);
      },
    },
    ...(firstLoad
      ? [
          {
            name: `reference meter on load ${firstLoad.name} (${firstLoad.watts} W nominal)`,
            run: async (ctx: Parameters<Step['run']>[0]) => {
              await il.setLoad(firstLoad.name, true);
              try {
                await ctx.clock.sleep(1200); // PZEM-class meters update about once a second
                const r = await s.meter.read();
                const v = s.mainsVolts;
                ctx.measure('mains voltage', r.volts, 'V', { min: v * 0.9, max: v * 1.1 });
                // A resistive load's power scales with V²; the bank's nominal is at the nominal voltage.
                const expected = firstLoad.watts * (r.volts / v) ** 2;
                ctx.measure('load power', r.watts, 'W', { min: expected * 0.9, max: expected * 1.1 + 2 });
                ctx.measure('power factor', r.pf, '', { min: firstLoad.pf - 0.1, max: Math.min(1, firstLoad.pf + 0.1) });
                return { volts: r.volts, amps: r.amps, watts: r.watts, pf: r.pf, uncertaintyW: s.meter.uncertainty('watts', r.watts) };
              } finally {
                await il.setLoad(firstLoad.name, false);
              }
            },
          } satisfies Step,
        ]
      : []),
    {
      name: 'safe state (mains off, loads off, UART isolated)',
      cleanup: true,
      run: async (ctx) => {
        await il.safeState();
        const st = il.state();
        ctx.check('mains off', st.mains === 'off', { mains: st.mains, uart: st.uart, power3v3: st.power3v3 });
      },
    },
  ];
}
