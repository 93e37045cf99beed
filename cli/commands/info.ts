import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Bk7231Flasher, DEFAULT_BAUD } from '../../rig/bk7231/flasher.ts';
import { rootLogger } from '../../rig/core/log.ts';
import { openTarget, targetOptions, type TargetArgs } from '../target.ts';
import { chipSummary } from './backup.ts';
import { printJson } from '../output.ts';
import { checkBaud } from '../args.ts';
import { cliStdout } from '../io.ts';

interface InfoArgs extends TargetArgs {
  baud: number;
  json?: boolean;
}

export const infoCommand: CommandModule<object, InfoArgs> = {
  command: 'info',
  builder: (y: Argv) => y.options(targetOptions).option('baud', { type: 'number', default: DEFAULT_BAUD }).option('json', { type: 'boolean' }) as unknown as Argv<InfoArgs>,
  handler: async (args: ArgumentsCamelCase<InfoArgs>) => {
    checkBaud(args.baud);
    const target = await openTarget(args);
    const flasher = new Bk7231Flasher({ port: target.link, reset: target.reset, baudRate: args.baud, log: rootLogger() });
    try {
      const chip = await flasher.connect();
      const s = chipSummary(chip);
      if (args.json) {
        printJson({ target: target.describe, ...s });
        return;
      }
      const rows: [string, unknown][] = [
        ['target', target.describe],
        ['chip', `${s.chip ?? 'unknown'} (ID ${s.chipId ?? 'n/a'})`],
        ['flash', `${s.flashId} ${s.flashPart ?? 'unknown part'}, ${chip.flashSize / 1048576} MiB`],
        ['status reg', `${s.statusRegister ?? 'n/a'} (${chip.protected === null ? 'unknown' : chip.protected ? 'block-protected' : 'unprotected'})`],
        ['MAC', s.mac ?? 'not found in RF sector'],
        ['bootloader', `CRC ${s.bootloaderCrc}${chip.bootloader ? ` = ${chip.bootloader}` : ' (unknown)'}`],
        ['link baud', chip.baudRate],
      ];
      cliStdout().write(rows.map(([k, v]) => `${k.padEnd(11)} ${String(v)}`).join('\n') + '\n');
    } finally {
      await target.close();
    }
  },
};
