import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { RealClock, VirtualClock, type Clock } from '../../rig/core/clock.ts';
import { ConfigError, PlugrigError } from '../../rig/core/errors.ts';
import { rootLogger, type Logger } from '../../rig/core/log.ts';
import { loadJigFile, type JigSpec } from '../../rig/jig/jig-config.ts';
import { installProcessGuard } from '../../rig/jig/process-guard.ts';
import { CommandChannel } from '../../rig/bk7231/command-channel.ts';
import { getBus } from '../../rig/bk7231/link.ts';
import { openStation, type OpenStation } from '../../station/open-station.ts';
import { describeMainsAtStart, type MainsAtStart } from '../../rig/jig/mains-at-start.ts';
import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import type { EndpointRegistry } from '../../rig/endpoints/registry.ts';
import { startVirtualJig, usesSim } from '../../sim/jig/in-process-jig.ts';
import { printJson } from '../output.ts';
import { virtualTwinOf } from '../virtual-twin.ts';
import { cliStderr, cliStdout } from '../io.ts';

interface JigArgs {
  action: 'check';
  file: string;
  sim?: boolean;
  json?: boolean;
  simTime?: 'real' | 'virtual';
}

interface CheckRow {
  slot: number;
  check: string;
  ok: boolean;
  detail: string;
  /** Passed, but the jig is less safe than it should be. */
  warn?: boolean;
}

/** Above this a meter sees mains (the virtual and real supplies are 100-240 V; an off plug reads ~0 V). */
const ENERGISED_VOLTS = 50;

export const jigCommand: CommandModule<object, JigArgs> = {
  command: 'jig <action> <file>',
  builder: (y: Argv) =>
    y
      .positional('action', { choices: ['check'] as const, demandOption: true })
      .positional('file', { type: 'string', demandOption: true, describe: 'jig file' })
      .option('sim', { type: 'boolean', describe: "check the file's virtual twin: every board, meter and UART replaced by an in-process virtual device" })
      .option('json', { type: 'boolean' })
      .option('sim-time', { choices: ['real', 'virtual'] as const, describe: 'virtual jig: wall time (the default) or model time (every wait and timeout exact, independent of the CPU)' }) as unknown as Argv<JigArgs>,
  handler: async (args: ArgumentsCamelCase<JigArgs>) => {
    const log = rootLogger().child({ cmd: 'jig check' });
    const file = loadJigFile(args.file);
    const jig = args.sim ? virtualTwinOf(file) : file;
    if (args.simTime === 'virtual' && !usesSim(jig)) throw new ConfigError(`--sim-time virtual needs a virtual jig (--sim, or a file of sim: devices)`, { step: 'args' });
    const clock: Clock = args.simTime === 'virtual' ? new VirtualClock() : new RealClock();
    const endpoints = nativeEndpoints();
    const sim = usesSim(jig) ? startVirtualJig(jig, { clock, endpoints }) : undefined;
    const rows: CheckRow[] = [];
    let station: OpenStation | undefined;
    let uninstall = (): void => undefined;
    try {
      // Before anything drives the outputs off: a jig that is live now was left energised (a station
      // killed with mains on and no watchdog, a welded contactor).
      await checkNotEnergised(jig, rows, { clock, log, endpoints });
      for (const [name, b] of Object.entries(jig.ioBoards)) {
        if (b.heartbeat === undefined) rows.push({ slot: 0, check: `mains watchdog ${name}`, ok: true, warn: true, detail: 'no heartbeat pin: mains stays on if the station process dies (fixtures/jigs/README.md, "Heartbeat watchdog")' });
      }
      station = await openStation(jig, { clock, log, endpoints });
      const st = station;
      uninstall = installProcessGuard(() => [...st.slots.values()].map((s) => s.io.interlock), { clock, log });
      for (const name of station.boards.keys()) rows.push({ slot: 0, check: `I/O board ${name}`, ok: true, detail: 'StandardFirmata handshake complete' });
      // Read by PIN_STATE before the interlocks drove anything off (openStation).
      for (const m of station.mainsAtStart) {
        for (const slot of m.slots) rows.push(m.energised ? { slot, check: 'mains relay at start', ok: false, detail: `jig found energised: ${describeMainsAtStart(m)}` } : pinStateOffRow(jig, slot, m, rows));
      }
      await Promise.all(jig.slots.map((s) => checkSlot(jig, s.id, st, rows, { clock, log, endpoints })));
    } catch (e) {
      rows.push({ slot: 0, check: 'open station', ok: false, detail: e instanceof Error ? e.message : String(e) });
    } finally {
      await station?.close();
      uninstall();
      await sim?.vj.dispose();
    }
    rows.sort((a, b) => a.slot - b.slot);
    const failed = rows.filter((r) => !r.ok).length;
    if (args.json) printJson({ jig: jig.name, file: args.file, virtual: sim !== undefined, passed: failed === 0, rows });
    else {
      const where = !sim ? '' : jig === file || usesSim(file) ? ' on the virtual jig' : ' on its virtual twin (--sim)';
      cliStdout().write(`jig ${jig.name} (${args.file})${where}: file valid, ${jig.slots.length} slot(s)\n`);
      let last = -1;
      for (const r of rows) {
        if (r.slot !== last) cliStdout().write(r.slot === 0 ? '\nstation\n' : `\nslot ${r.slot}\n`);
        last = r.slot;
        cliStdout().write(`  ${r.ok ? (r.warn ? 'warn' : 'ok  ') : 'FAIL'}  ${r.check.padEnd(30)} ${r.detail}\n`);
      }
      cliStdout().write(`\n${rows.length - failed} ok, ${failed} failed\n`);
    }
    if (failed > 0) {
      // The one message on stderr: the first failed check (the table or --json has them all).
      const first = rows.find((r) => !r.ok)!;
      cliStderr().write(`plugrig: jig check failed: ${first.slot ? `slot ${first.slot} ` : ''}${first.check}: ${first.detail}${failed > 1 ? ` (and ${failed - 1} more failed check(s))` : ''}\n`);
      process.exitCode = 9;
    }
  },
};

async function checkSlot(jig: JigSpec, id: number, station: OpenStation, rows: CheckRow[], o: { clock: Clock; log: Logger; endpoints: EndpointRegistry }): Promise<void> {
  const s = station.slots.get(id)!;
  const spec = jig.slots.find((x) => x.id === id)!;
  const il = s.io.interlock;
  const c = s.io.components;
  const clock = o.clock;
  const add = (check: string, ok: boolean, detail: string): void => {
    rows.push({ slot: id, check, ok, detail });
  };
  const attempt = async (check: string, fn: () => Promise<string>): Promise<boolean> => {
    try {
      add(check, true, await fn());
      return true;
    } catch (e) {
      add(check, false, e instanceof PlugrigError ? `${e.message}` : String(e));
      return false;
    }
  };
  await clock.sleep(1200); // first analog and digital reports
  const lid = c.lidClosed();
  const estop = c.estopPressed();
  add('lid switch', lid !== undefined, lid === undefined ? 'no report from the board' : lid ? 'closed' : 'OPEN');
  add('E-stop', estop !== undefined, estop === undefined ? 'no report from the board' : estop ? 'PRESSED' : 'released');
  add('relay sense', c.relayOn() !== undefined, c.relayOn() === undefined ? 'no report' : c.relayOn() ? 'plug relay closed' : 'plug relay open');
  add('LED light sensor', c.lightLevel() !== undefined, `level ${c.lightLevel() ?? '-'} (threshold ${spec.pins.ledSensor.threshold})`);
  add('mains relay', il.state().mains === 'off', `${il.state().mains} (never switched by jig check)`);
  for (const load of spec.pins.loads) {
    await attempt(`load ${load.name}`, async () => {
      await il.dryTestLoad(load.name);
      return `dry-switched on/off, confirmed by PIN_STATE (${load.watts} W, PF ${load.pf}); mains off`;
    });
  }
  const uartOk = await attempt('UART isolation + 3V3', async () => {
    await il.connectUart();
    await il.power3v3(true);
    return 'connected, confirmed';
  });
  if (uartOk) {
    await attempt('UART + reset -> ROM LinkCheck', async () => {
      const link = await s.uart.open({ baudRate: 115200, log: o.log });
      try {
        const reset = s.io.resetStrategy();
        const r = await getBus(new CommandChannel(link, o.log), { reset, resetAttempts: 2, timeoutMs: 5000, log: o.log });
        return `${link.path}${link.adapter ? ` (${s.uart.describe()}, ${link.adapter.chip})` : ''}, reset ${reset.name}: bootloader answered after ${r.linkChecks} LinkChecks, ${r.elapsedMs.toFixed(0)} ms`;
      } finally {
        await link.close();
      }
    });
    await attempt('button actuator', async () => {
      const before = c.relayOn();
      await c.press(150);
      await clock.sleep(300);
      return `pressed 150 ms; relay sense ${String(before)} -> ${String(c.relayOn())}`;
    });
  }
  await attempt('back to safe state', async () => {
    await il.safeState();
    const st = il.state();
    if (st.mains !== 'off' || st.uart !== 'off' || st.power3v3 !== 'off') throw new Error(`outputs not off: ${JSON.stringify(st)}`);
    return 'mains, loads, UART, 3V3 off';
  });
  await attempt(`meter ${spec.meter.ref}`, async () => {
    const id = await s.meter.identity();
    const r = await s.meter.read();
    if (r.volts > ENERGISED_VOLTS) throw new Error(`jig energised: ${r.volts.toFixed(1)} V at meter ${spec.meter.ref} with the mains relay off (welded contactor? mains wired past the relay?)`);
    return `${id.model}${id.serial ? ` s/n ${id.serial}` : ''}: ${r.volts.toFixed(1)} V ${r.amps.toFixed(3)} A ${r.watts.toFixed(1)} W (mains off)`;
  });
}

/**
 * A mains relay output whose PIN_STATE reads off. That is StandardFirmata's stored level, not the pin:
 * a SET_PIN_MODE (or SYSTEM_RESET) since the last write resets it to 0 while the AVR keeps driving
 * the output, so a board another host re-moded after a station died with mains on reads 0 and is
 * live. Only this slot's own meter, read before anything was switched, can confirm it off; without
 * that reading the row says what it cannot prove (a warning), against it the row fails.
 */
function pinStateOffRow(jig: JigSpec, slot: number, m: MainsAtStart, rows: readonly CheckRow[]): CheckRow {
  const check = 'mains relay at start';
  const read = `pin ${m.pin} of ${m.board} reads ${String(m.state)} (PIN_STATE)`;
  const caveat = "PIN_STATE is Firmata's stored level: a pin-mode set since the last write resets it to 0 while the output keeps driving";
  const spec = jig.slots.find((s) => s.id === slot);
  const meter = rows.find((r) => r.slot === slot && r.check === 'not energised at start');
  if (meter && !meter.ok && /jig found energised/.test(meter.detail)) return { slot, check, ok: false, detail: `${read}, but the meter saw mains before anything was switched: the relay output was re-moded since it was driven (${caveat}), or the contactor is welded / mains bypasses it` };
  if (spec && spec.meter.select === undefined && meter?.ok) return { slot, check, ok: true, detail: `off: ${read}, and meter ${spec.meter.ref} (this slot's own) saw no mains before anything was switched` };
  const why = spec?.meter.select !== undefined ? `meter ${spec.meter.ref} is shared through select relays (which slot it saw is not known before they are driven)` : 'the meter could not be read';
  return { slot, check, ok: true, warn: true, detail: `${read}: not proof the relay is off (${caveat}); no reading of this slot's own meter confirms it: ${why}` };
}

/** Read every slot's meter before the station opens; mains present there is a failed check. */
async function checkNotEnergised(jig: JigSpec, rows: CheckRow[], o: { clock: Clock; log: Logger; endpoints: EndpointRegistry }): Promise<void> {
  const { openMeter } = await import('../../rig/meter/open-meter.ts');
  for (const slot of jig.slots) {
    const check = 'not energised at start';
    try {
      const meter = await openMeter(jig.meters[slot.meter.ref]!, { clock: o.clock, channel: slot.meter.channel, log: o.log, endpoints: o.endpoints });
      try {
        const r = await meter.read();
        const live = r.volts > ENERGISED_VOLTS;
        rows.push({
          slot: slot.id,
          check,
          ok: !live,
          detail: live
            ? `jig found energised: ${r.volts.toFixed(1)} V at meter ${slot.meter.ref} before jig check switched anything (mains relay left on by a station that died? welded contactor?); the outputs are driven off next`
            : `${r.volts.toFixed(1)} V at meter ${slot.meter.ref}`,
        });
      } finally {
        await meter.close();
      }
    } catch (e) {
      rows.push({ slot: slot.id, check, ok: false, detail: `could not read meter ${slot.meter.ref}: ${e instanceof Error ? e.message : String(e)}` });
    }
  }
}
