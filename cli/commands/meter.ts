import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { RealClock, VirtualClock, type Clock } from '../../rig/core/clock.ts';
import { ConfigError } from '../../rig/core/errors.ts';
import { loadJigFile } from '../../rig/jig/jig-config.ts';
import { rootLogger } from '../../rig/core/log.ts';
import { printJson } from '../output.ts';
import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import { checkCount } from '../args.ts';
import { startVirtualJig, usesSim } from '../../sim/jig/in-process-jig.ts';
import { cliStdout } from '../io.ts';

interface MeterArgs {
  jig: string;
  slot: number;
  count: number;
  json?: boolean;
  simTime?: 'real' | 'virtual';
}

export const meterCommand: CommandModule<object, MeterArgs> = {
  command: 'meter read <jig>',
  builder: (y: Argv) =>
    y
      .positional('jig', { type: 'string', demandOption: true, describe: 'jig file' })
      .option('slot', { type: 'number', default: 1, describe: 'slot id' })
      .option('count', { type: 'number', default: 1, describe: 'number of readings' })
      .option('json', { type: 'boolean' })
      .option('sim-time', { choices: ['real', 'virtual'] as const, describe: 'virtual jig: wall time (the default) or model time (every wait and timeout exact, independent of the CPU)' }) as unknown as Argv<MeterArgs>,
  handler: async (args: ArgumentsCamelCase<MeterArgs>) => {
    checkCount(args.count, '--count');
    checkCount(args.slot, '--slot');
    const jig = loadJigFile(args.jig);
    const slot = jig.slots.find((s) => s.id === args.slot);
    if (!slot) throw new ConfigError(`jig ${jig.name} has no slot ${args.slot} (slots: ${jig.slots.map((s) => s.id).join(', ')})`, { step: 'args' });
    const spec = jig.meters[slot.meter.ref]!;
    if (args.simTime === 'virtual' && !usesSim(jig)) throw new ConfigError(`--sim-time virtual needs a virtual jig (a file of sim: devices)`, { step: 'args' });
    const clock: Clock = args.simTime === 'virtual' ? new VirtualClock() : new RealClock();
    const endpoints = nativeEndpoints();
    const sim = usesSim(jig) ? startVirtualJig(jig, { clock, endpoints }) : undefined;
    const { openMeter } = await import('../../rig/meter/open-meter.ts');
    const meter = await openMeter(spec, { clock, channel: slot.meter.channel, log: rootLogger(), endpoints });
    try {
      const id = await meter.identity();
      const readings = [];
      for (let i = 0; i < args.count; i++) {
        if (i > 0) await clock.sleep(250);
        readings.push(await meter.read());
      }
      if (args.json) {
        printJson({ meter: id, readings: readings.map((r) => ({ ...r, uncertainty: uncertainties(meter, r) })) });
        return;
      }
      cliStdout().write(`${id.manufacturer} ${id.model}${id.serial ? ` s/n ${id.serial}` : ''}${id.calibrationDate ? `, calibrated ${id.calibrationDate}` : ''} (slot ${slot.id}, meter "${slot.meter.ref}")\n`);
      for (const r of readings) {
        const u = uncertainties(meter, r);
        const f = (v: number, d: number, unit: string, q: string): string => `${v.toFixed(d)} ${unit}${u[q] !== undefined ? ` ±${u[q]!.toFixed(d)}` : ''}`;
        cliStdout().write(
          `  U ${f(r.volts, 1, 'V', 'volts')}   I ${f(r.amps, 3, 'A', 'amps')}   P ${f(r.watts, 1, 'W', 'watts')}   PF ${f(r.pf, 2, '', 'pf')}   f ${f(r.hz, 1, 'Hz', 'hz')}${r.wh !== undefined ? `   E ${r.wh} Wh` : ''}\n`,
        );
      }
    } finally {
      await meter.close();
      await sim?.vj.dispose();
    }
  },
};

function uncertainties(meter: { uncertainty(q: 'volts' | 'amps' | 'watts' | 'pf' | 'hz', v: number): number }, r: { volts: number; amps: number; watts: number; pf: number; hz: number }): Record<string, number> {
  const out: Record<string, number> = {};
  for (const q of ['volts', 'amps', 'watts', 'pf', 'hz'] as const) {
    try {
      out[q] = meter.uncertainty(q, r[q]);
    } catch {
      // The instrument states no accuracy for this quantity.
    }
  }
  return out;
}
