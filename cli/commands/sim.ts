import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../rig/core/errors.ts';
import { RealClock } from '../../rig/core/clock.ts';
import { rootLogger } from '../../rig/core/log.ts';
import { cliStdout } from '../io.ts';

interface SimArgs {
  pty?: boolean;
  link?: string;
  jig?: string;
  'link-dir'?: string;
  seed: number;
  mac?: string;
  'link-window'?: number;
  protected?: boolean;
  plug?: boolean;
  template?: string;
  'http-port'?: number;
  'load-w'?: number;
  leases?: string;
  defect?: string[];
}

export const simCommand: CommandModule<object, SimArgs> = {
  command: 'sim',
  describe: 'run a virtual BK7231N (or a whole virtual jig with --jig) on pseudo-terminals, or one virtual OpenBeken plug on HTTP (--plug), for any client, until killed',
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
      .option('protected', { type: 'boolean', default: true, describe: 'start with SR 0x4004 (block-protected flash)' })
      .option('plug', { type: 'boolean', describe: 'one virtual plug flashed with OpenBeken, on mains with a load, joined to a virtual station network, serving its HTTP API on loopback' })
      .option('template', { type: 'string', describe: 'with --plug: device template JSON (devices-list format), or "none" for a blank config (default: RMC021)' })
      .option('http-port', { type: 'number', default: 0, describe: 'with --plug: loopback port of the HTTP API (0: a free one)' })
      .option('load-w', { type: 'number', default: 60, describe: 'with --plug: resistive load on the output, W' })
      .option('leases', { type: 'string', describe: 'with --plug: keep a dnsmasq-format leases file here' })
      .option('defect', { type: 'string', array: true, describe: 'with --plug: inject a defect (e.g. relay-stuck-open, shunt-off-10, http-stalls)' }) as unknown as Argv<SimArgs>,
  handler: async (args: ArgumentsCamelCase<SimArgs>) => {
    if (args.plug) {
      await runVirtualPlug(args);
      return;
    }
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
    cliStdout().write(
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

/** `plugrig sim --plug`: one virtual OpenBeken plug on HTTP until SIGINT/SIGTERM. */
async function runVirtualPlug(args: ArgumentsCamelCase<SimArgs>): Promise<void> {
  const { loadSimTemplate, RMC021_TEMPLATE } = await import('../../sim/plug/obk-template.ts');
  const { startStandalonePlug } = await import('../../sim/plug/standalone-plug.ts');
  const { virtualStationWifi } = await import('../../sim/jig/pty-jig.ts');
  const port = args['http-port'] ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--http-port ${port} is not a TCP port`, { step: 'args' });
  const loadW = args['load-w'] ?? 60;
  if (!(loadW >= 0)) throw new ConfigError(`--load-w ${loadW} must be >= 0`, { step: 'args' });
  const template = args.template === 'none' ? null : args.template ? loadSimTemplate(resolve(args.template)) : RMC021_TEMPLATE;
  const wifi = virtualStationWifi();
  const clock = new RealClock();
  const sp = startStandalonePlug({
    clock,
    seed: args.seed,
    ...(args.mac ? { mac: args.mac } : {}),
    template,
    loadW,
    httpPort: port,
    wifi,
    ...(args.leases ? { leasesFile: resolve(args.leases) } : {}),
    defects: args.defect ?? [],
  });
  const done = waitForSignal();
  const mac = Array.from(sp.chip.mac, (b) => b.toString(16).padStart(2, '0')).join(':');
  cliStdout().write(
    `virtual OpenBeken plug: OpenBK7231N 1.18.42 (synthetic) flashed, MAC ${mac}, template ${template ? template.name : 'none (blank config)'}\n` +
      `mains 230 V, ${loadW} W resistive load on the output; joining "${wifi.ssid}"...\n`,
  );
  try {
    const url = await Promise.race([sp.waitForHttp(30_000), done.then(() => undefined)]);
    if (url) {
      cliStdout().write(`HTTP ${url}  (e.g. curl '${url}/cm?cmnd=STATUS%208')${args.leases ? `\nleases ${resolve(args.leases)}` : ''}\nCtrl-C to stop\n`);
      await done;
    }
  } finally {
    await sp.close();
  }
}
