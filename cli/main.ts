import type { Argv, CommandModule } from 'yargs';
import { reportFailure } from './failure.ts';
import { cliStdout, useCliStreams, type CliStreams } from './io.ts';
import { logToFile, logToStderr, resetLogDestination } from '../rig/core/log.ts';
import { englishLocale, renderTopHelp, type TopHelp } from './top-help.ts';

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
    command: 'forward',
    describe: "push the station store's finished units to the central PostgreSQL store now (idempotent; says what it sent)",
    load: async () => (await import('./commands/forward.ts')).forwardCommand,
  },
  {
    command: 'history <unit>',
    describe: "a unit's runs by MAC or serial from the store: verdicts, stations, slots, failed steps",
    load: async () => (await import('./commands/history.ts')).historyCommand,
  },
];

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  verbose: { type: 'boolean', global: true, describe: 'log lines (JSON) on stderr' },
  'log-file': { type: 'string', global: true, describe: 'append log lines (JSON) to this file (run: default <out>/plugrig.log)' },
} as const;

const SCRIPT_NAME = 'plugrig';
const USAGE = '$0 <command> [options]\n\nHardware-in-the-loop rig for Tuya CB2S (BK7231N) plugs running OpenBeken.';

/** The width yargs lays its help out to. */
function helpWidth(): number {
  return Math.min(110, process.stdout.columns || 100);
}

/** What `plugrig --help` lists: the commands, the global options and the two yargs adds (.help(), .version()). */
export const TOP_HELP: TopHelp = {
  scriptName: SCRIPT_NAME,
  usage: USAGE.replace(/\$0/g, SCRIPT_NAME),
  commands: COMMANDS,
  options: [
    ...Object.entries(GLOBAL_OPTIONS).map(([name, o]) => ({ name, describe: o.describe, type: o.type })),
    { name: 'help', describe: 'Show help', type: 'boolean' },
    { name: 'version', describe: 'Show version number', type: 'boolean' },
  ],
};

function applyLogOptions(args: Record<string, unknown>): void {
  if (args['log-file']) logToFile(String(args['log-file']));
  else if (args.verbose) logToStderr();
}

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

/**
 * yargs renders the chosen command's whole help text before its handler runs, only to keep it for
 * printing after a failed handler; our .fail() throws instead, so nothing ever prints it. Measured:
 * a third of `plugrig flash`'s start-up CPU (string-width over every option cell). `--help` renders
 * its own text and is unaffected. Internal yargs API: where it is missing nothing changes.
 */
function skipHelpCache(cli: Argv): void {
  const internal = cli as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = internal.getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

/** yargs' "Not enough non-option arguments: got 0, need at least 1" in words: which argument is missing. */
function explainUsage(msg: string, argv: readonly string[]): string {
  const m = /^Not enough non-option arguments: got (\d+), need at least \d+/.exec(msg);
  const entry = m ? COMMANDS.find((c) => c.command.split(' ')[0] === argv.find((a) => !a.startsWith('-'))) : undefined;
  if (!m || !entry) return msg;
  const missing = (entry.command.match(/<[^>]+>/g) ?? []).slice(Number(m[1]));
  return missing.length ? `plugrig ${entry.command}: missing ${missing.join(' ')}` : msg;
}

/** The CLI's yargs parser for `argv`; `exitProcess: false` keeps --help/--version from ending the process. */
export async function yargsCli(argv: readonly string[], o: { exitProcess: boolean }): Promise<Argv> {
  const { default: yargs } = await import('yargs');
  let cli = yargs([...argv]).scriptName(SCRIPT_NAME).usage(USAGE);
  for (const entry of COMMANDS) cli = cli.command(lazyCommand(entry));
  skipHelpCache(cli);
  return cli
    .options(GLOBAL_OPTIONS)
    .middleware(applyLogOptions)
    .demandCommand(1, 'name a command (plugrig --help lists them)')
    .strict()
    .recommendCommands()
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(explainUsage(msg, argv));
    })
    .help()
    .version()
    .exitProcess(o.exitProcess)
    .wrap(helpWidth());
}

/**
 * Run the CLI on `argv` (without node and the script) and return its exit code. With `streams`, every
 * line the CLI prints goes there instead of the process's stdout/stderr (the in-process test entry);
 * the process's exit code is left as it was.
 */
export async function runCli(argv: readonly string[], streams?: CliStreams): Promise<number> {
  const restoreStreams = streams ? useCliStreams(streams) : () => undefined;
  // Commands report a failed unit or check through process.exitCode; it is this run's, not the caller's.
  const callerExitCode = process.exitCode;
  process.exitCode = undefined;
  let code: number;
  try {
    // `plugrig --help` alone is rendered without loading yargs (cli/top-help.ts; yargs where that declines).
    const topHelp = argv.length === 1 && argv[0] === '--help' && englishLocale(process.env) ? renderTopHelp(TOP_HELP, helpWidth()) : undefined;
    if (topHelp !== undefined) {
      cliStdout().write(topHelp + '\n');
      return 0;
    }
    // A plain `plugrig flash …` does not load yargs at all (its start-up is part of every flash).
    const flash = argv[0] === 'flash' ? await import('./commands/flash.ts') : undefined;
    const plainFlash = flash?.flashArgsWithoutYargs(argv, GLOBAL_OPTIONS);
    if (flash && plainFlash) {
      applyLogOptions(plainFlash);
      await flash.flashCommand.handler(plainFlash);
      return Number(process.exitCode ?? 0);
    }
    await (await yargsCli(argv, { exitProcess: !streams })).parseAsync();
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    // Scanned from argv, not yargs' result: a usage error happens before any args object exists.
    code = reportFailure(e, { json: argv.includes('--json') });
  } finally {
    process.exitCode = callerExitCode;
    restoreStreams();
    if (streams) resetLogDestination(); // the next in-process run picks its own (run: its run directory's log)
  }
  return code;
}
