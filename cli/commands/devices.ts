import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { printJson } from '../output.ts';
import { cliStdout } from '../io.ts';

interface DevicesArgs {
  json?: boolean;
}

export const devicesCommand: CommandModule<object, DevicesArgs> = {
  command: 'devices',
  builder: (y: Argv) => y.option('json', { type: 'boolean' }) as unknown as Argv<DevicesArgs>,
  handler: async (args: ArgumentsCamelCase<DevicesArgs>) => {
    const { collectDevicesReport, renderDevicesText, devicesReportJson } = await import('../../rig/usb/devices-report.ts');
    const { NodeUsbSource } = await import('../../rig/usb/node-usb-source.ts');
    const report = await collectDevicesReport({ usb: new NodeUsbSource() });
    if (args.json) printJson(devicesReportJson(report));
    else cliStdout().write(renderDevicesText(report));
  },
};
