import { createHash } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Bk7231Flasher, DEFAULT_BAUD, type ChipInfo, type FlashProgress } from '../../rig/bk7231/flasher.ts';
import { ConfigError } from '../../rig/core/errors.ts';
import { rootLogger } from '../../rig/core/log.ts';
import { openTarget, parseSize, targetOptions, type TargetArgs } from '../target.ts';
import { PhaseProgress } from '../progress.ts';
import { printJson } from '../output.ts';
import { checkBaud, checkNewOutputFile } from '../args.ts';
import { cliStdout } from '../io.ts';

interface BackupArgs extends TargetArgs {
  out: string;
  baud: number;
  offset?: string;
  length?: string;
  overwrite?: boolean;
  json?: boolean;
}

/** Read [offset, offset+length) CRC-verified and write it atomically (temp file + rename: never a half file). */
export async function writeBackup(
  flasher: Bk7231Flasher,
  path: string,
  offset: number,
  length: number,
  onProgress?: (p: FlashProgress) => void,
): Promise<{ path: string; bytes: number; sha256: string; data: Uint8Array }> {
  const data = await flasher.read(offset, length, onProgress);
  const tmp = `${path}.part-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new ConfigError(`cannot write backup ${path}: ${(e as Error).message}`, { step: 'backup' }, { cause: e });
  }
  return { path, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), data };
}

export function chipSummary(c: ChipInfo): Record<string, unknown> {
  return {
    chip: c.chipName,
    chipId: c.chipId === null ? null : '0x' + c.chipId.toString(16),
    flashId: c.flashIdHex,
    flashPart: c.flashPart?.name ?? null,
    flashSize: c.flashSize,
    statusRegister: c.statusRegister === null ? null : '0x' + c.statusRegister.toString(16).padStart(4, '0'),
    protected: c.protected,
    mac: c.mac,
    bootloader: c.bootloader,
    bootloaderCrc: '0x' + (c.bootloaderCrc >>> 0).toString(16).padStart(8, '0'),
    baudRate: c.baudRate,
  };
}

export const backupCommand: CommandModule<object, BackupArgs> = {
  command: 'backup <out>',
  builder: (y: Argv) =>
    y
      .positional('out', { type: 'string', demandOption: true, describe: 'output file' })
      .options(targetOptions)
      .option('baud', { type: 'number', default: DEFAULT_BAUD })
      .option('offset', { type: 'string', describe: 'start address (default 0)' })
      .option('length', { type: 'string', describe: 'bytes to read (default: the whole flash)' })
      .option('overwrite', { type: 'boolean', describe: 'replace <out> if it exists (default: refuse; it may be the only stock dump)' })
      .option('json', { type: 'boolean' }) as unknown as Argv<BackupArgs>,
  handler: async (args: ArgumentsCamelCase<BackupArgs>) => {
    const offset = parseSize(args.offset, '--offset') ?? 0;
    const lengthArg = parseSize(args.length, '--length');
    if (lengthArg !== undefined && lengthArg <= 0) throw new ConfigError('--length must be positive', { step: 'args' });
    checkBaud(args.baud);
    await checkNewOutputFile(args.out, { option: 'backup file', overwrite: args.overwrite ?? false });
    const target = await openTarget(args);
    const flasher = new Bk7231Flasher({ port: target.link, reset: target.reset, baudRate: args.baud, log: rootLogger() });
    const progress = new PhaseProgress();
    const t0 = target.clock.now();
    try {
      const chip = await flasher.connect();
      const length = lengthArg ?? chip.flashSize - offset;
      if (offset + length > chip.flashSize) {
        throw new ConfigError(`--offset 0x${offset.toString(16)} + --length ${length} is past the end of the ${chip.flashSize}-byte flash`, { step: 'args' });
      }
      const { data: _bytes, ...b } = await writeBackup(flasher, args.out, offset, length, progress.update);
      progress.stop();
      const seconds = (target.clock.now() - t0) / 1000;
      if (args.json) printJson({ target: target.describe, chip: chipSummary(chip), backup: { ...b, offset }, seconds });
      else
        cliStdout().write(
          `read 0x${offset.toString(16)}..0x${(offset + length).toString(16)} from ${chip.chipName} (MAC ${chip.mac}) into ${b.path}\n` +
            `sha256 ${b.sha256}, ${seconds.toFixed(2)} s\n`,
        );
    } finally {
      progress.stop();
      await target.close();
    }
  },
};
