import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Bk7231Flasher, DEFAULT_BAUD } from '../../rig/bk7231/flasher.ts';
import { resetStrategyFromSpec } from '../../rig/bk7231/reset.ts';
import { ConfigError, DutError } from '../../rig/core/errors.ts';
import { loadDeviceTemplate, type DeviceTemplate } from '../../rig/dut/device-template.ts';
import { provisionOffline, type OfflineProvisionResult } from '../../rig/dut/provision-offline.ts';
import { provisionOverHttp } from '../../rig/dut/provision-http.ts';
import { printJson } from '../output.ts';
import { dutOptions, openDutSession, type DutArgs, type DutSession } from './dut.ts';
import { cliStdout } from '../io.ts';

interface ProvisionArgs extends DutArgs {
  template: string;
  device?: string;
  offline?: boolean;
  http?: boolean;
  verify: boolean;
  baud: number;
}

/**
 * Offline: connect the slot's UART and 3V3 (mains off), write the config sector over the ROM, reboot,
 * isolate; then (verify) mains on and read /api/info, whose MAC must be the one the ROM reported.
 */
async function offline(s: DutSession, template: DeviceTemplate, args: ProvisionArgs): Promise<{ rom: OfflineProvisionResult; online?: { url: string; mac: string; uptime: number } }> {
  const slot = s.station!.slots.get(s.spec.id)!;
  const il = slot.io.interlock;
  const c = slot.io.components;
  await il.safeState();
  await il.connectUart();
  await il.power3v3(true);
  let rom: OfflineProvisionResult;
  const port = await slot.uart.open({ baudRate: 115200, log: s.log });
  try {
    const cen = { assert: async () => c.setCen(false), release: async () => c.setCen(true) };
    const power = { assert: async () => il.power3v3(false), release: async () => il.power3v3(true) };
    const flasher = new Bk7231Flasher({ port, reset: resetStrategyFromSpec(s.spec.reset, { cen, power }), baudRate: args.baud, log: s.log });
    await flasher.connect();
    await flasher.unprotect();
    rom = await provisionOffline({
      session: flasher,
      template,
      ...(s.secrets.wifi ? { wifi: s.secrets.wifi } : {}),
      ...(s.secrets.webPassword ? { webPassword: s.secrets.webPassword } : {}),
      log: s.log,
      slot: s.spec.id,
    });
    await flasher.reboot();
  } finally {
    await port.close();
  }
  await il.power3v3(false);
  await il.disconnectUart();
  if (!args.verify) return { rom };
  await il.mainsOn();
  const { client } = await s.connect();
  const info = await client.waitOnline({ timeoutMs: args.timeout * 1000, what: 'online after offline provisioning' });
  if (info.mac.toLowerCase() !== rom.mac.toLowerCase()) {
    throw new DutError(`the plug at ${client.url} reports MAC ${info.mac}, the ROM read ${rom.mac}`, { slot: s.spec.id, step: 'provision-offline' });
  }
  return { rom, online: { url: client.url, mac: info.mac, uptime: info.uptime_s } };
}

export const provisionCommand: CommandModule<object, ProvisionArgs> = {
  command: 'provision <jig>',
  describe: "apply an OpenBeken device template to the slot's plug: offline over the ROM (default) or over HTTP",
  builder: (y: Argv) =>
    y
      .positional('jig', { type: 'string', demandOption: true, describe: 'jig file' })
      .options(dutOptions)
      .option('template', { type: 'string', demandOption: true, describe: 'device template (OpenBeken devices-list format), e.g. fixtures/devices/rmc021.json' })
      .option('device', { type: 'string', describe: 'model or name, when the template file lists several devices' })
      .option('offline', { type: 'boolean', describe: 'write the config sector at 0x1D1000 over the ROM (UART, mains off)' })
      .option('http', { type: 'boolean', describe: "send the web app's template import over HTTP to a plug running OpenBeken" })
      .option('verify', { type: 'boolean', default: true, describe: 'offline: power the plug afterwards and read /api/info (MAC must match the ROM)' })
      .option('baud', { type: 'number', default: DEFAULT_BAUD })
      .conflicts('offline', 'http') as unknown as Argv<ProvisionArgs>,
  handler: async (args: ArgumentsCamelCase<ProvisionArgs>) => {
    const template = loadDeviceTemplate(args.template, args.device);
    if (template.chip !== 'BK7231N') throw new ConfigError(`template ${args.template} is for ${template.chip}; this rig provisions BK7231N`, { step: 'args' });
    const mode = args.http ? 'http' : 'offline';
    const s = await openDutSession({ ...args, power: mode === 'http' ? args.power : false }, { openStation: mode === 'offline', simPlugs: 'unconfigured' });
    try {
      if (mode === 'offline') {
        const r = await offline(s, template, args);
        if (args.json) {
          printJson({ slot: s.spec.id, mode, template: template.label, ...r, secrets: s.secrets.sources });
          return;
        }
        cliStdout().write(`slot ${s.spec.id}: ${template.label} written offline at 0x${r.rom.address.toString(16)} (CRC 0x${r.rom.crc.toString(16)}, ${r.rom.sectorsWritten} sector(s) written)\n`);
        cliStdout().write(`  MAC ${r.rom.mac}, names ${r.rom.shortName} / ${r.rom.longName}, Wi-Fi ${r.rom.wifi}${s.secrets.sources.length ? ` (${s.secrets.sources.join(', ')})` : ''}\n`);
        if (r.online) cliStdout().write(`  online at ${r.online.url} after ${r.online.uptime} s, /api/info MAC ${r.online.mac} = ROM MAC\n`);
        return;
      }
      const { client } = await s.connect();
      await client.waitOnline({ timeoutMs: args.timeout * 1000 });
      const r = await provisionOverHttp({
        client,
        template,
        ...(s.secrets.wifi ? { wifi: s.secrets.wifi } : {}),
        ...(s.secrets.webPassword ? { webPassword: s.secrets.webPassword } : {}),
        relocate: async () => (await s.connect()).client,
        ...(args.mac ? { expectMac: args.mac } : {}),
        clock: s.clock,
        log: s.log,
        slot: s.spec.id,
        rebootTimeoutMs: args.timeout * 1000,
      });
      if (args.json) {
        printJson({ slot: s.spec.id, mode, template: template.label, url: r.url, commands: r.commands, warnings: r.warnings, info: r.info, secrets: s.secrets.sources });
        return;
      }
      cliStdout().write(`slot ${s.spec.id}: ${template.label} applied over HTTP at ${r.url} (${r.commands.length} requests, restarted, read back: pins, flags ${r.info.flags}, startcmd ${JSON.stringify(r.info.startcmd)}, MAC ${r.info.mac})\n`);
      for (const w of r.warnings) cliStdout().write(`  note: ${w}\n`);
    } finally {
      await s.close();
    }
  },
};
