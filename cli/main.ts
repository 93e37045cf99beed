import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { reportFailure } from './failure.ts';
import { flashCommand } from './commands/flash.ts';
import { backupCommand } from './commands/backup.ts';
import { infoCommand } from './commands/info.ts';
import { simCommand } from './commands/sim.ts';
import { jigCommand } from './commands/jig.ts';
import { devicesCommand } from './commands/devices.ts';
import { meterCommand } from './commands/meter.ts';
import { runCommand } from './commands/run.ts';
import { imageCommand } from './commands/image.ts';
import { dutCommand } from './commands/dut.ts';
import { provisionCommand } from './commands/provision.ts';

class UsageError extends Error {
  override name = 'UsageError';
}

try {
  await yargs(hideBin(process.argv))
    .scriptName('plugrig')
    .usage('$0 <command> [options]\n\nHardware-in-the-loop rig for Tuya CB2S (BK7231N) plugs running OpenBeken.')
    .command(runCommand)
    .command(flashCommand)
    .command(backupCommand)
    .command(infoCommand)
    .command(simCommand)
    .command(jigCommand)
    .command(devicesCommand)
    .command(imageCommand)
    .command(meterCommand)
    .command(dutCommand)
    .command(provisionCommand)
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
  process.exitCode = reportFailure(e);
}
