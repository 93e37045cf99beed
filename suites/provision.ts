import { Bk7231Flasher } from '../rig/bk7231/flasher.ts';
import { CallbackReset } from '../rig/bk7231/reset.ts';
import { ConfigError } from '../rig/core/errors.ts';
import { provisionOffline, type RomFlashSession } from '../rig/dut/provision-offline.ts';
import { stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { SuiteEntry } from './plan/schema.ts';
import type { Step, StepContext } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';
import { withRomPort } from './rom-port.ts';

export type ProvisionSuiteEntry = Extract<SuiteEntry, { suite: 'provision' }>;

/**
 * Offline provisioning: the plan's OpenBeken template, flags, startup command and the station's
 * Wi-Fi go into the config sector at 0x1D1000 over the ROM. When the run flashes, this happens in
 * the flash step's ROM session right after the image (no second link); otherwise in a ROM session
 * of its own, UART side connected and mains off. The first boot on mains is then provisioned.
 */
export function provisionSuite(entry: ProvisionSuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const template = hw.provisioning?.template;
  if (!template) throw new ConfigError(`plan provisions (suite 'provision') but names no device template (plan "device": {"template": ...})`, { slot: hw.spec.id, step: 'plan' });
  const wifi = hw.provisioning?.wifi;
  if (entry.wifiSsid && wifi && wifi.ssid !== entry.wifiSsid) {
    throw new ConfigError(`plan provisions Wi-Fi "${entry.wifiSsid}" but the station's credentials are for "${wifi.ssid}"`, { slot: hw.spec.id, step: 'plan' });
  }
  const write = async (session: RomFlashSession, ctx: StepContext): Promise<Record<string, unknown>> => {
    const r = await provisionOffline({
      session,
      template,
      ...(wifi ? { wifi } : {}),
      ...(hw.provisioning?.webPassword !== undefined ? { webPassword: hw.provisioning.webPassword } : {}),
      log: ctx.log,
      slot: hw.spec.id,
    });
    ctx.check(`OpenBeken config (${r.template}) at 0x${r.address.toString(16)}, CRC verified`, true, { crc: '0x' + r.crc.toString(16) });
    ctx.unit({ template: r.template, shortName: r.shortName, wifi: r.wifi });
    return { config: `0x${r.address.toString(16)}`, configCrc: '0x' + r.crc.toString(16), template: r.template, wifi: r.wifi };
  };
  if (hw.image && hw.romSession) {
    hw.romSession.afterWrite.push(write);
    return [];
  }
  const il = hw.io.interlock;
  const c = (): SlotHardware['io']['components'] => hw.io.components;
  return [
    {
      name: `provision ${template.label} offline over the ROM (mains off)`,
      critical: true,
      ...stepPolicy(entry, defaults),
      run: async (ctx) => {
        await il.connectUart();
        await il.power3v3(true);
        return withRomPort(hw, ctx, async (port) => {
          const cen = { assert: async () => c().setCen(false), release: async () => c().setCen(true) };
          const flasher = new Bk7231Flasher({ port, reset: new CallbackReset(cen, 50, 'jig CEN'), baudRate: hw.baudRate, log: ctx.log });
          const info = await flasher.connect();
          if (info.mac) ctx.unit({ mac: info.mac });
          if (hw.romSession) hw.romSession.mac = info.mac ?? undefined;
          await flasher.unprotect();
          const data = await write(flasher, ctx);
          await flasher.reboot();
          return data;
        });
      },
    },
  ];
}
