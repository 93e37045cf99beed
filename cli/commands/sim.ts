import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../rig/core/errors.ts';
import { RealClock } from '../../rig/core/clock.ts';
import { rootLogger } from '../../rig/core/log.ts';

interface SimArgs {
  pty?: boolean;
  link?: string;
  jig?: string;
  'link-dir'?: string;
  seed: number;
  mac?: string;
  'link-window'?: number;
  protected?: boolean;
}

export const simCommand: CommandModule<object, SimArgs> = {
  command: 'sim',
  describe: 'run a virtual BK7231N (or a whole virtual jig with --jig) on pseudo-terminals for any client, until killed',
  builder: (y: Argv) =>
    y
      .option('pty', { type: 'boolean', describe: 'expose the device(s) on ptys (required: the only transport for other processes)' })
      .option('link', { type: 'string', default: './plugrig-bk7231', describe: 'symlink to create for the chip pty' })
      .option('jig', { type: 'string', describe: 'jig file: run every sim: device it names (chip per slot, I/O board, meters)' })
      .option('link-dir', { type: 'string', describe: 'with --jig: directory for the pty symlinks and the generated jig file' })
      .option('seed', { type: 'number', default: 1, describe: 'seed for MACs and synthetic flash content' })
      .option('mac', { type: 'string', describe: 'MAC of the virtual chip, e.g. C8:47:8C:12:34:56' })
      .option('link-window', {
        type: 'number',
        describe: 'ms the ROM listens for LinkCheck after reset before booting the app (default: stay in the ROM, since a pty has no reset lines; the app also reboots on "reboot\\r\\n")',
      })
      .option('protected', { type: 'boolean', default: true, describe: 'start with SR 0x4004 (block-protected flash)' }) as unknown as Argv<SimArgs>,
  handler: async (args: ArgumentsCamelCase<SimArgs>) => {
    if (!args.pty) throw new ConfigError('plugrig sim needs --pty (the virtual devices are reached through pseudo-terminals)', { step: 'args' });
    if (args.jig) {
      const { runVirtualJigOnPtys } = await import('../sim-jig.ts');
      if (!args['link-dir']) throw new ConfigError('--jig needs --link-dir <dir> for the pty symlinks', { step: 'args' });
      await runVirtualJigOnPtys({ jigPath: args.jig, linkDir: resolve(args['link-dir']), seed: args.seed });
      return;
    }
    const { VirtualBk7231 } = await import('../../sim/bk7231/virtual-bk7231.ts');
    const { PtyBridge } = await import('../../sim/serial/pty-bridge.ts');
    const clock = new RealClock();
    const chip = new VirtualBk7231({
      seed: args.seed,
      ...(args.mac ? { mac: args.mac } : {}),
      linkWindowMs: args['link-window'] ?? Infinity,
      initialSr: args.protected === false ? 0 : 0x4004,
      cenWiring: 'none',
    });
    const bridge = await PtyBridge.start({ device: chip, link: resolve(args.link ?? './plugrig-bk7231'), clock, log: rootLogger() });
    chip.powerOn();
    process.stdout.write(
      `virtual BK7231N (TH25Q16HB 2 MiB, MAC ${Array.from(chip.mac, (b) => b.toString(16).padStart(2, "0")).join(":")}) on ${bridge.ptyPath}\n` +
        `link ${bridge.link} -> ${bridge.ptyPath}\n` +
        `${Number.isFinite(args['link-window'] ?? Infinity) ? `link window ${args['link-window']} ms after reset` : 'staying in the ROM bootloader'}; Ctrl-C to stop\n`,
    );
    await waitForSignal();
    await bridge.close();
  },
};

/** Resolve on SIGINT/SIGTERM so the bridge can remove its symlink and stop socat. */
export function waitForSignal(): Promise<void> {
  // Keep the listeners until the caller has cleaned up: with none left, a second signal (or
  // execa's forwarding) would kill the process before the bridge removed its symlink.
  return new Promise((res) => {
    const done = (): void => res();
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
