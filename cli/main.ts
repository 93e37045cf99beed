import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { reportFailure } from './failure.ts';
import { logToFile, logToStderr } from '../rig/core/log.ts';

class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Every command, by name and summary. A command's module (and with it the flasher, tap, johnny-five,
 * serialport …) is imported only when yargs picks that command, so `plugrig --help` loads yargs alone.
 */
// yargs' CommandModule<object, X> differs per command; `any` here only erases that per-command args type.
type AnyCommand = CommandModule<object, any>;
const COMMANDS: ReadonlyArray<{ command: string; describe: string; load: () => Promise<AnyCommand> }> = [
  {
    command: 'run',
    describe: 'station job on every slot of a jig: flash over the ROM, then on mains verify LED, relay by button and the reference meter; TAP per slot',
    load: async () => (await import('./commands/run.ts')).runCommand,
  },
  {
    command: 'flash <image>',
    describe: 'flash an OpenBeken image (or a raw binary with --offset) over the BK7231N ROM bootloader',
    load: async () => (await import('./commands/flash.ts')).flashCommand,
  },
  {
    command: 'backup <out>',
    describe: 'read the flash (default: all 2 MiB) into a file, CRC-verified',
    load: async () => (await import('./commands/backup.ts')).backupCommand,
  },
  {
    command: 'info',
    describe: 'link to the chip and print chip ID, flash ID/size, protection, MAC and bootloader CRC',
    load: async () => (await import('./commands/info.ts')).infoCommand,
  },
  {
    command: 'sim',
    describe: 'run a virtual BK7231N (or a whole virtual jig with --jig) on pseudo-terminals for any client, until killed',
    load: async () => (await import('./commands/sim.ts')).simCommand,
  },
  {
    command: 'jig <action> <file>',
    describe: 'check a jig: validate the file, open every instrument, read every input, exercise every output safely (mains stays off)',
    load: async () => (await import('./commands/jig.ts')).jigCommand,
  },
  {
    command: 'devices',
    describe: 'list serial ports, USB-UART adapters (with USB paths), relay boards, USBTMC meters and hubs',
    load: async () => (await import('./commands/devices.ts')).devicesCommand,
  },
  {
    command: 'image <action> <path>',
    describe: 'make a synthetic OpenBeken-like image into a directory, or classify an image file',
    load: async () => (await import('./commands/image.ts')).imageCommand,
  },
  {
    command: 'meter read <jig>',
    describe: "read the slot's reference meter (V, I, P, PF, f, energy) with the instrument's stated accuracy",
    load: async () => (await import('./commands/meter.ts')).meterCommand,
  },
  {
    command: 'dut',
    describe: "talk to the slot's plug once it runs OpenBeken (info, cmd)",
    load: async () => (await import('./commands/dut.ts')).dutCommand,
  },
  {
    command: 'report <run-id>',
    describe: 'render a stored run (or last) as TAP 14/13, JUnit XML, a self-contained HTML report and a JSON summary into runs/<run-id>/',
    load: async () => (await import('./commands/report.ts')).reportCommand,
  },
  {
    command: 'nightly',
    describe: 'run the nightly firmware matrix on every slot and print what got worse since the previous night (exit 10 when something did)',
    load: async () => (await import('./commands/nightly.ts')).nightlyCommand,
  },
  {
    command: 'provision <jig>',
    describe: "apply an OpenBeken device template to the slot's plug: offline over the ROM (default) or over HTTP",
    load: async () => (await import('./commands/provision.ts')).provisionCommand,
  },
  {
    command: 'history <unit>',
    describe: "a unit's runs by MAC or serial from the store: verdicts, stations, slots, failed steps",
    load: async () => (await import('./commands/history.ts')).historyCommand,
  },
];

/** A command whose module is imported by its (async) builder, which yargs calls only for the chosen command. */
function lazyCommand(entry: (typeof COMMANDS)[number]): AnyCommand {
  let loaded: AnyCommand | undefined;
  return {
    command: entry.command,
    describe: entry.describe,
    builder: async (y: Argv) => {
      loaded = await entry.load();
      const b = loaded.builder;
      if (typeof b === 'function') return (await b(y)) as Argv;
      return b ? y.options(b) : y;
    },
    handler: async (args) => {
      if (!loaded?.handler) throw new Error(`command ${entry.command} has no handler`);
      await loaded.handler(args);
    },
  };
}

try {
  let cli = yargs(hideBin(process.argv))
    .scriptName('plugrig')
    .usage('$0 <command> [options]\n\nHardware-in-the-loop rig for Tuya CB2S (BK7231N) plugs running OpenBeken.');
  for (const entry of COMMANDS) cli = cli.command(lazyCommand(entry));
  await cli
    .option('verbose', { type: 'boolean', global: true, describe: 'log lines (JSON) on stderr' })
    .option('log-file', { type: 'string', global: true, describe: 'append log lines (JSON) to this file (run: default <out>/plugrig.log)' })
    .middleware((argv) => {
      if (argv['log-file']) logToFile(String(argv['log-file']));
      else if (argv.verbose) logToStderr();
    })
    .demandCommand(1, 'name a command (plugrig --help lists them)')
    .strict()
    .recommendCommands()
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    })
    .help()
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parseAsync();
} catch (e) {
  // Scanned from argv, not yargs' result: a usage error happens before any args object exists.
  process.exitCode = reportFailure(e, { json: hideBin(process.argv).includes('--json') });
}
