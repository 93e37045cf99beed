import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Bk7231Flasher, DEFAULT_BAUD, checkWriteRequest, type ChipInfo, type FlashCopy, type FlashProgress, type WriteResult } from '../../rig/bk7231/flasher.ts';
import { ConfigError, FlashError, ImageError, PlugrigError } from '../../rig/core/errors.ts';
import { rootLogger } from '../../rig/core/log.ts';
import { classifyImage, type ImageInfo } from '../../firmware/image.ts';
import type { TapReportFile } from '../../reports/tap-writer.ts';
import { openTarget, parseSize, targetOptions, type TargetArgs } from '../target.ts';
import { PhaseProgress } from '../progress.ts';
import { chipSummary, writeBackup } from './backup.ts';
import { printJson } from '../output.ts';
import { checkBaud, checkNewOutputFile } from '../args.ts';
import { FlashState, onInterrupt } from '../flash-state.ts';
import { BK7231N_PARTITIONS, FLASH_LAYOUTS } from '../../firmware/flash-layout.ts';
import { cliStdout, cliStderr } from '../io.ts';
import { parsePlainArgv, type PlainOption } from '../plain-argv.ts';

interface FlashArgs extends TargetArgs {
  image: string;
  baud: number;
  offset?: string;
  backup?: string;
  full?: boolean;
  diff?: boolean;
  force?: boolean;
  raw?: boolean;
  overwrite?: boolean;
  json?: boolean;
  tap?: string;
  reboot?: boolean;
}

/** The options of `plugrig flash` besides the target's (one table: yargs' builder and the plain parser read it). */
const flashOptions = {
  baud: { type: 'number', default: DEFAULT_BAUD, describe: 'transfer baud rate (falls back to lower rates on failure)' },
  offset: { type: 'string', describe: 'write the file as raw bytes at this flash address (e.g. 0x11000)' },
  backup: { type: 'string', describe: 'first read the whole flash (2 MiB) into this file (a new file, see --overwrite)' },
  overwrite: { type: 'boolean', describe: 'let --backup replace an existing file (never the image itself)' },
  full: { type: 'boolean', describe: 'QIO image: write the bootloader too (from 0x0); default starts at 0x11000' },
  diff: { type: 'boolean', describe: 'compare CRCs first and rewrite only the 4 KiB sectors that differ' },
  force: { type: 'boolean', describe: 'allow writing the bootloader / RF calibration (MAC) regions' },
  raw: { type: 'boolean', describe: 'accept an image whose content is not in Beken CRC-block format' },
  reboot: { type: 'boolean', default: true, describe: 'reboot the chip into the new firmware when done' },
  json: { type: 'boolean', describe: 'print the result as JSON on stdout' },
  tap: { type: 'string', describe: 'write the flash steps as a TAP 14 report to this file' },
} as const;

/**
 * `plugrig flash …` parsed without yargs when every argument is a plain one (cli/plain-argv.ts),
 * else undefined (yargs parses it). `globalOptions` are the CLI's own (--verbose, --log-file).
 */
export function flashArgsWithoutYargs(argv: readonly string[], globalOptions: Readonly<Record<string, PlainOption>>): ArgumentsCamelCase<FlashArgs> | undefined {
  return parsePlainArgv(argv, 'flash', 'image', { ...targetOptions, ...flashOptions, ...globalOptions }) as ArgumentsCamelCase<FlashArgs> | undefined;
}

export const flashCommand: CommandModule<object, FlashArgs> = {
  command: 'flash <image>',
  builder: (y: Argv) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'OpenBK7231N_QIO_*.bin / _UA_*.bin, or a raw binary with --offset' })
      .options(targetOptions)
      .options(flashOptions) as unknown as Argv<FlashArgs>,
  handler: async (args: ArgumentsCamelCase<FlashArgs>) => {
    const log = rootLogger().child({ cmd: 'flash' });
    const offsetArg = parseSize(args.offset, '--offset');
    checkBaud(args.baud);
    let fileBytes: Uint8Array;
    try {
      fileBytes = new Uint8Array(await readFile(args.image));
    } catch (e) {
      throw new ImageError(`cannot read image ${args.image}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { step: 'image' });
    }
    // Validate everything about the input before touching the chip.
    let info: ImageInfo | undefined;
    let plan: { offset: number; bytes: Uint8Array };
    if (offsetArg !== undefined) {
      if (fileBytes.length === 0) throw new ImageError(`image ${args.image} is empty`, { step: 'image' });
      plan = { offset: offsetArg, bytes: fileBytes };
    } else {
      info = classifyImage({ name: basename(args.image), bytes: fileBytes, targetChip: 'BK7231N', allowRaw: args.raw ?? false });
      plan = info.bytesToWrite(args.full ?? false);
    }
    const writeBootloader = Boolean(args.full) || (offsetArg !== undefined && offsetArg < BK7231N_PARTITIONS.bootloader.end && Boolean(args.force));
    // Alignment and protected regions are refused here, before the port is opened or the chip unprotected.
    try {
      // The CB2S's 2 MiB (as backup assumes): an address past it is refused before linking, not after.
      checkWriteRequest(plan.bytes.length, plan.offset, { force: args.force ?? false, writeBootloader, flashSize: FLASH_LAYOUTS.BK7231N.flashSize });
    } catch (e) {
      throw refusedRequest(e, args.offset);
    }
    if (args.backup) {
      const inputs = [{ path: args.image, what: 'image being flashed' }, ...(args.tap ? [{ path: args.tap, what: 'TAP report' }] : [])];
      await checkNewOutputFile(args.backup, { option: '--backup', overwrite: args.overwrite ?? false, inputs });
    }

    // The TAP writer pulls in the whole tap framework (about a second of start-up on a busy machine): only for --tap.
    const tap: TapReportFile | undefined = args.tap
      ? (await import('../../reports/tap-writer.ts')).openTapReport(args.tap, { title: `plugrig flash ${basename(args.image)}`, meta: { image: args.image, sha256: info?.sha256, offset: '0x' + plan.offset.toString(16) } })
      : undefined;
    const progress = new PhaseProgress();
    const state = new FlashState(plan.offset, plan.bytes.length, args.diff ?? false);
    const onProgress = (p: FlashProgress): void => {
      state.progress(p);
      progress.update(p);
    };
    const uninstall = onInterrupt(async (signal) => {
      progress.stop();
      const where = state.describe();
      cliStderr().write(`plugrig: interrupted by ${signal} ${where}\n`);
      tap?.fail(`interrupted by ${signal}`, { state: where });
      await tap?.close();
    });
    let target: Awaited<ReturnType<typeof openTarget>>;
    try {
      target = await openTarget(args);
    } catch (e) {
      // The port could not be opened: the chip was never touched. The TAP file says so and ends with its plan.
      uninstall();
      tap?.fail(`open ${args.port ?? 'the virtual chip'}`, { error: e instanceof Error ? e.message : String(e), chip: 'untouched' });
      await tap?.close();
      throw e;
    }
    const flasher = new Bk7231Flasher({ port: target.link, reset: target.reset, baudRate: args.baud, log, guardOutsideImage: true });
    const t0 = target.clock.now();
    let chip: ChipInfo | undefined;
    let result: WriteResult | undefined;
    let backupInfo: { path: string; bytes: number; sha256: string } | undefined;
    let original: FlashCopy | undefined;
    try {
      state.stage = 'link';
      chip = await step(tap, 'link and identify', () => flasher.connect(), (c) => chipSummary(c));
      state.stage = 'unprotect';
      await step(tap, 'unprotect flash', () => flasher.unprotect(), (u) => ({ before: hex4(u.before), after: hex4(u.after), changed: u.changed }));
      if (args.backup) {
        state.stage = 'backup';
        const { data, ...saved } = await step(tap, `backup ${chip.flashSize} bytes`, () => writeBackup(flasher, args.backup!, 0, chip!.flashSize, progress.update), ({ data: _bytes, ...b }) => b);
        backupInfo = saved;
        // The CRC-checked dump is the copy the outside-image guard restores a stray write from (as the factory flash suite does).
        original = { offset: 0, data };
        progress.stop();
      }
      state.stage = 'write';
      result = await step(
        tap,
        `write ${plan.bytes.length} bytes at 0x${plan.offset.toString(16)}${args.diff ? ' (diff)' : ''} and verify`,
        () => flasher.write(plan.bytes, plan.offset, { diff: args.diff ?? false, force: args.force ?? false, writeBootloader, onProgress, ...(original ? { original } : {}) }),
        (r) => ({ ...r, crc: hex8(r.crc) }),
      );
      progress.stop();
      state.stage = 'reboot';
      if (args.reboot) await step(tap, 'reboot into firmware', () => flasher.reboot(), () => ({}));
      state.stage = 'done';
    } finally {
      uninstall();
      progress.stop();
      await target.close();
      const summary = await tap?.close();
      if (summary && args.tap) cliStderr().write(`TAP report: ${args.tap} (${summary.pass} ok, ${summary.fail} not ok)\n`);
    }
    if (!chip || !result) throw new Error('flash finished without a result');
    const seconds = (target.clock.now() - t0) / 1000;
    const out = {
      target: target.describe,
      image: { file: args.image, kind: info?.kind ?? 'raw', version: info?.version, sha256: info?.sha256, warnings: info?.warnings ?? [] },
      chip: chipSummary(chip),
      write: { ...result, crc: hex8(result.crc), offset: '0x' + result.offset.toString(16) },
      backup: backupInfo,
      seconds: Number(seconds.toFixed(2)),
    };
    if (args.json) {
      printJson(out);
      return;
    }
    const w = result;
    cliStdout().write(
      [
        `target    ${target.describe}`,
        `chip      ${chip.chipName ?? 'unknown'} flash ${chip.flashIdHex} (${chip.flashPart?.name ?? 'unknown part'}, ${chip.flashSize / 1048576} MiB), MAC ${chip.mac ?? '?'}, ${chip.baudRate} baud`,
        `image     ${args.image} (${info ? `${info.kind.toUpperCase()}${info.version ? ' ' + info.version : ''}` : 'raw'}, ${fileBytes.length} bytes${info ? `, sha256 ${info.sha256.slice(0, 16)}…` : ''})`,
        ...(info?.warnings ?? []).map((x) => `warning   ${x}`),
        ...(backupInfo ? [`backup    ${backupInfo.path} (${backupInfo.bytes} bytes, sha256 ${backupInfo.sha256.slice(0, 16)}…)`] : []),
        `written   0x${w.offset.toString(16)}..0x${(w.offset + w.length).toString(16)}: ${w.sectorsWritten} sectors written, ${w.sectorsSkippedBlank} blank skipped, ${w.sectorsAlreadyBlank} already blank, ${w.sectorsUnchanged} unchanged, ${w.sectorsRepaired} repaired, ${w.erasedBytes / 1024} KiB erased`,
        `verified  chip CRC ${hex8(w.crc)} of 0x${w.offset.toString(16)}..0x${(w.offset + w.verifiedLength).toString(16)} matches the image`,
        `time      ${seconds.toFixed(2)} s`,
        '',
      ].join('\n'),
    );
  },
};

/** Run one flash step, recording it in the TAP report (ok with diag, or not ok with the error). */
async function step<T>(tap: TapReportFile | undefined, name: string, fn: () => Promise<T>, diag: (v: T) => object): Promise<T> {
  try {
    const v = await fn();
    tap?.ok(name, diag(v) as Record<string, unknown>);
    return v;
  } catch (e) {
    tap?.fail(name, { error: e });
    throw e;
  }
}

const hex4 = (n: number): string => '0x' + n.toString(16).padStart(4, '0');
const hex8 = (n: number): string => '0x' + (n >>> 0).toString(16).padStart(8, '0');

/**
 * A write request the flasher refuses before any contact (alignment, flash size, bootloader or RF
 * sector) in the CLI's words: with `--offset` it is a bad argument (class config), without it the image
 * itself does not fit (its class stays). The hint names the CLI option, not the API's.
 */
function refusedRequest(e: unknown, offset: string | undefined): unknown {
  if (!(e instanceof PlugrigError)) return e;
  const message = e.message.replace(/ \(use force( or writeBootloader)?\)/, ' (add --force to write it anyway)');
  if (offset === undefined) return message === e.message ? e : new (e.constructor as typeof FlashError)(message, e.context, { cause: e });
  return new ConfigError(`--offset ${offset}: ${message}`, { step: 'args', ...(e.context.address !== undefined ? { address: e.context.address } : {}) }, { cause: e });
}
