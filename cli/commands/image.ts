import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ConfigError, ImageError } from '../../rig/core/errors.ts';
import { classifyImage } from '../../firmware/image.ts';
import { makeSyntheticImage } from '../../firmware/synthetic.ts';
import { printJson } from '../output.ts';
import { prepareOutputDir } from '../args.ts';
import { cliStdout } from '../io.ts';

interface ImageArgs {
  action: 'make' | 'info';
  path: string;
  kind: 'qio' | 'ua';
  'fw-version': string;
  seed: number;
  json?: boolean;
}

export const imageCommand: CommandModule<object, ImageArgs> = {
  command: 'image <action> <path>',
  builder: (y: Argv) =>
    y
      .positional('action', { choices: ['make', 'info'] as const, demandOption: true })
      .positional('path', { type: 'string', demandOption: true, describe: 'make: output directory; info: image file' })
      .option('kind', { choices: ['qio', 'ua'] as const, default: 'qio' as const })
      .option('fw-version', { type: 'string', default: '1.18.42', describe: 'version for the file name' })
      .option('seed', { type: 'number', default: 1 })
      .option('json', { type: 'boolean' }) as unknown as Argv<ImageArgs>,
  handler: async (args: ArgumentsCamelCase<ImageArgs>) => {
    if (args.action === 'make') {
      const im = makeSyntheticImage({ chip: 'BK7231N', kind: args.kind, version: args['fw-version'], seed: args.seed });
      await prepareOutputDir(args.path, { option: 'image make' });
      const file = join(args.path, im.name);
      try {
        await writeFile(file, im.bytes);
      } catch (e) {
        throw new ConfigError(`image make: cannot write ${file}: ${(e as Error).message}`, { step: 'args' }, { cause: e });
      }
      if (args.json) printJson({ file, bytes: im.bytes.length });
      else cliStdout().write(`${file} (${im.bytes.length} bytes, synthetic: CRC16 block format of a real release, content is not a runnable firmware)\n`);
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(args.path));
    } catch (e) {
      throw new ImageError(`cannot read image ${args.path}: ${(e as Error).message}`, { step: 'image' });
    }
    const info = classifyImage({ name: basename(args.path), bytes, targetChip: 'BK7231N' });
    const plan = info.bytesToWrite(false);
    const summary = {
      file: args.path,
      kind: info.kind,
      chip: info.chip ?? null,
      version: info.version ?? null,
      size: info.size,
      sha256: info.sha256,
      writes: `0x${plan.offset.toString(16)}..0x${plan.end.toString(16)}`,
      crcBlocksValid: `${info.appBlocks.valid}/${info.appBlocks.blocks}`,
      warnings: info.warnings,
    };
    if (args.json) printJson(summary);
    else cliStdout().write(Object.entries(summary).map(([k, v]) => `${k.padEnd(15)} ${Array.isArray(v) ? v.join('; ') || '-' : String(v)}`).join('\n') + '\n');
  },
};
