import { readFile } from 'node:fs/promises';
import { basename, join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { RealClock } from '../../rig/core/clock.ts';
import { ConfigError, ImageError } from '../../rig/core/errors.ts';
import { rootLogger } from '../../rig/core/log.ts';
import { loadJigFile } from '../../rig/jig/jig-config.ts';
import { DEFAULT_BAUD } from '../../rig/bk7231/flasher.ts';
import { classifyImage } from '../../firmware/image.ts';
import { makeSyntheticImage } from '../../firmware/synthetic.ts';
import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import { startVirtualJig, usesSim } from '../../sim/jig/in-process-jig.ts';
import { runStation, type SlotResult } from '../../station/run-station.ts';
import { printJson } from '../output.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_SIM_JIG = resolve(HERE, '../../fixtures/jigs/virtual-1slot.json');

interface RunArgs {
  jig?: string;
  sim?: boolean;
  image?: string;
  baud: number;
  out?: string;
  slot?: number[];
  json?: boolean;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run',
  describe: 'station job on every slot of a jig: flash over the ROM, then on mains verify LED, relay by button and the reference meter; TAP per slot',
  builder: (y: Argv) =>
    y
      .option('jig', { type: 'string', describe: 'jig file (default with --sim: fixtures/jigs/virtual-1slot.json)' })
      .option('sim', { type: 'boolean', describe: 'run on the in-process virtual jig' })
      .option('image', { type: 'string', describe: 'OpenBeken image (default with --sim: a synthetic OpenBK7231N QIO image)' })
      .option('baud', { type: 'number', default: DEFAULT_BAUD })
      .option('slot', { type: 'array', number: true, describe: 'only these slot ids' })
      .option('out', { type: 'string', describe: 'directory for TAP reports and unit records (default runs/<timestamp>)' })
      .option('json', { type: 'boolean' }) as unknown as Argv<RunArgs>,
  handler: async (args: ArgumentsCamelCase<RunArgs>) => {
    const log = rootLogger().child({ cmd: 'run' });
    const jigPath = args.jig ?? (args.sim ? DEFAULT_SIM_JIG : undefined);
    if (!jigPath) throw new ConfigError('no jig: give --jig <file>, or --sim for the virtual jig', { step: 'args' });
    const jig = loadJigFile(jigPath);
    const virtual = usesSim(jig);
    if (args.sim && !virtual) throw new ConfigError(`--sim given, but jig ${jigPath} names real ports (no sim: devices)`, { step: 'args' });

    let image: { bytes: Uint8Array; offset: number; name: string; sha256?: string };
    if (args.image) {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(args.image));
      } catch (e) {
        throw new ImageError(`cannot read image ${args.image}: ${(e as Error).message}`, { step: 'image' });
      }
      const info = classifyImage({ name: basename(args.image), bytes, targetChip: 'BK7231N' });
      const plan = info.bytesToWrite(false);
      image = { bytes: plan.bytes, offset: plan.offset, name: info.name, sha256: info.sha256 };
    } else if (virtual) {
      const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 1 });
      const info = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' });
      const plan = info.bytesToWrite(false);
      image = { bytes: plan.bytes, offset: plan.offset, name: `${im.name} (synthetic)`, sha256: info.sha256 };
    } else throw new ConfigError('give --image <OpenBK7231N_QIO_*.bin> for a real jig', { step: 'args' });

    const clock = new RealClock(); // johnny-five keeps wall-clock timers: stations run in real time
    // The composition root: the machine's endpoints, plus the virtual jig's when the file names one.
    const endpoints = nativeEndpoints();
    const sim = virtual ? startVirtualJig(jig, { clock, endpoints }) : undefined;
    const outDir = args.out ?? join('runs', new Date().toISOString().replace(/[:.]/g, '-'));
    const t0 = clock.now();
    let results: SlotResult[];
    try {
      results = await runStation({ jig, jigPath, image, baudRate: args.baud, outDir, clock, log, endpoints, ...(args.slot ? { slots: args.slot } : {}) });
    } finally {
      sim?.vj.dispose();
    }
    const seconds = (clock.now() - t0) / 1000;
    const passed = results.filter((r) => r.passed).length;
    if (args.json) printJson({ jig: jig.name, image: image.name, seconds, passed, failed: results.length - passed, out: outDir, slots: results.map((r) => ({ slot: r.slot, passed: r.passed, mac: r.record.mac, flashSeconds: r.record.flashSeconds, tap: r.tap, steps: r.steps.map((x) => ({ name: x.name, status: x.status })) })) });
    else {
      process.stdout.write(`jig ${jig.name}${virtual ? ' (virtual)' : ''}, image ${image.name}\n\n`);
      for (const r of results) {
        process.stdout.write(`slot ${r.slot}  ${r.passed ? 'PASS' : 'FAIL'}  MAC ${r.record.mac ?? '?'}  flash ${r.record.flashSeconds?.toFixed(1) ?? '-'} s  report ${r.tap}\n`);
        for (const st of r.steps) process.stdout.write(`  ${st.status === 'pass' ? 'ok  ' : st.status === 'skip' ? 'skip' : 'FAIL'}  ${st.name}${st.error ? `: ${(st.error as Error).message}` : ''}\n`);
        for (const m of r.measurements) process.stdout.write(`        ${m.name} = ${Number(m.value.toFixed(3))} ${m.unit} [${m.limits.min?.toFixed(2) ?? '-'} .. ${m.limits.max?.toFixed(2) ?? '-'}] ${m.passed ? 'ok' : 'OUT OF LIMITS'}\n`);
      }
      process.stdout.write(`\n${passed} of ${results.length} slots passed in ${seconds.toFixed(1)} s\n`);
    }
    if (passed !== results.length) process.exitCode = 9;
  },
};
