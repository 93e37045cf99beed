import type { Clock } from '../../rig/core/clock.ts';
import { TimeoutError } from '../../rig/core/errors.ts';
import { VirtualBk7231 } from '../bk7231/virtual-bk7231.ts';
import { MainsNetwork, type MainsBranch } from '../mains/mains-network.ts';
import { StationNetwork } from '../net/station-network.ts';
import { obkFirmwareFactory } from './obk-firmware-factory.ts';
import { ObkPlug } from './obk-plug.ts';
import { buildConfigSector, OBK_CONFIG_ADDR } from './obk-config-sector.ts';
import { provisionedConfig, type SimTemplate } from './obk-template.ts';
import { parsePlugDefects } from './plug-defects.ts';
import { syntheticOpenBekenApp } from '../bk7231/factory-content.ts';

export interface StandalonePlugOptions {
  clock: Clock;
  seed?: number;
  mac?: string | Uint8Array;
  /** Template to provision; null = a blank OpenBeken config with the station's Wi-Fi only (no pins). */
  template: SimTemplate | null;
  /** Resistive load on the plug's output, W (default 60). */
  loadW?: number;
  /** HTTP port on loopback (0: a free one). */
  httpPort?: number;
  wifi: { ssid: string; pass: string };
  leasesFile?: string;
  /** Address the plug is leased (default 127.0.0.1: one plug, one loopback address). */
  ip?: string;
  defects?: readonly string[];
  /** OpenBeken version the synthetic image reports. */
  version?: string;
}

export interface StandalonePlug {
  readonly plug: ObkPlug;
  readonly chip: VirtualBk7231;
  readonly network: StationNetwork;
  readonly mains: MainsNetwork;
  readonly branch: MainsBranch;
  /** Resolves with the URL once the plug has joined the station network and serves HTTP. */
  waitForHttp(timeoutMs: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * One virtual plug on its own bench: flashed with a synthetic OpenBeken image, provisioned as the
 * offline fast path leaves it (template + the station's Wi-Fi in the config sector), on mains with a
 * resistive load behind its relay, on a station network whose one lease is a loopback address.
 * What `plugrig sim --plug` runs.
 */
export function startStandalonePlug(o: StandalonePlugOptions): StandalonePlug {
  const seed = o.seed ?? 1;
  const mains = new MainsNetwork({ clock: o.clock, volts: 230, hz: 50 });
  const branch = mains.branch('plug');
  branch.addLoad('load', { watts: o.loadW ?? 60, pf: 1 });
  branch.setLoadRelay('load', true);
  const network = new StationNetwork({
    clock: o.clock,
    ssid: o.wifi.ssid,
    pass: o.wifi.pass,
    firstIp: o.ip ?? '127.0.0.1',
    httpPort: o.httpPort ?? 0,
    ...(o.leasesFile ? { leasesFile: o.leasesFile } : {}),
  });
  const defects = parsePlugDefects(o.defects ?? [], 'plug');
  const chip = new VirtualBk7231({ seed, ...(o.mac ? { mac: o.mac } : {}), ...(defects.appDoesNotBoot ? { appDoesNotBoot: true } : {}), cenWiring: 'none' });
  // "Flashed": the synthetic OpenBeken app over the stock one, then the config sector.
  chip.flash.load(0x11000, syntheticOpenBekenApp(o.version ?? '1.18.42'));
  chip.flash.load(OBK_CONFIG_ADDR, buildConfigSector(provisionedConfig(chip.mac, o.template ?? undefined, o.wifi)));
  const errors: unknown[] = [];
  const plug = new ObkPlug({
    chip,
    clock: o.clock,
    branch,
    network,
    seed,
    defects: defects.plug,
    firmware: obkFirmwareFactory({ onError: (e) => errors.push(e) }),
  });
  // A pty-less bench: the UART is not connected, the chip boots after the ROM's link window.
  chip.connect({ send: () => {} }, o.clock);
  mains.onChange(() => plug.mainsPresent(branch.inputEnergised()));
  branch.setMainsRelay(true);

  const url = (): string | undefined => {
    const a = plug.obkFirmware()?.httpAddress();
    return a && network.lease(chip.mac) ? `http://${a.host}:${a.port}` : undefined;
  };
  return {
    plug,
    chip,
    network,
    mains,
    branch,
    async waitForHttp(timeoutMs: number): Promise<string> {
      const end = o.clock.now() + timeoutMs;
      for (;;) {
        if (errors.length > 0) throw errors[0];
        const u = url();
        if (u) return u;
        if (o.clock.now() >= end) {
          throw new TimeoutError(`the virtual plug did not join "${o.wifi.ssid}" and serve HTTP within ${timeoutMs} ms`, { step: 'sim-plug', running: plug.running() });
        }
        await o.clock.sleep(50);
      }
    },
    async close(): Promise<void> {
      await plug.dispose();
    },
  };
}
