import { dirname, join, resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { RealClock, VirtualClock, type Clock } from '../../rig/core/clock.ts';
import { ConfigError } from '../../rig/core/errors.ts';
import { rootLogger, type Logger } from '../../rig/core/log.ts';
import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import type { EndpointRegistry } from '../../rig/endpoints/registry.ts';
import { loadJigFile, type JigSpec, type SlotSpec } from '../../rig/jig/jig-config.ts';
import { ObkHttpClient, type ObkInfo, type ObkPins } from '../../rig/dut/obk-http-client.ts';
import { roleName } from '../../rig/dut/obk-roles.ts';
import { locatePlug, type HttpAddressResolver, type PlugLocation } from '../../rig/dut/plug-locator.ts';
import { effectiveFlags, loadDeviceTemplate, resolveDeviceTemplate, templatePinArrays, type DeviceTemplate } from '../../rig/dut/device-template.ts';
import { buildObkConfigSector, OBK_CONFIG_ADDRESS } from '../../rig/obk/config-sector.ts';
import { classifyImage } from '../../firmware/image.ts';
import { makeSyntheticImage } from '../../firmware/synthetic.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../../sim/jig/virtual-jig.ts';
import { loadProvisioningSecrets, type ProvisioningSecrets } from '../../rig/dut/provisioning-secrets.ts';
import type { OpenStation } from '../../station/open-station.ts';
import type { InProcessJig } from '../../sim/jig/in-process-jig.ts';
import { printJson } from '../output.ts';
import { PACKAGE_ROOT } from '../../rig/core/package-root.ts';
import { cliStderr, cliStdout } from '../io.ts';

export const DEVICES_DIR = join(PACKAGE_ROOT, 'fixtures/devices');

/** Options shared by `dut info`, `dut cmd` and `provision`. */
export interface DutArgs {
  jig: string;
  slot: number;
  sim?: boolean;
  mac?: string;
  power?: boolean;
  timeout: number;
  json?: boolean;
  simTime?: 'real' | 'virtual';
}

export const dutOptions = {
  slot: { type: 'number', default: 1, describe: 'slot id' },
  sim: { type: 'boolean', describe: 'the jig is the in-process virtual jig (its sim: devices run in this process)' },
  mac: { type: 'string', describe: "the plug's MAC (as `plugrig info` reads it over the ROM), for slots that find their plug by DHCP lease" },
  power: { type: 'boolean', describe: "switch the slot's mains on through the interlock for the command (default with the in-process virtual jig)" },
  timeout: { type: 'number', default: 30, describe: 'seconds to wait for the plug (DHCP lease, boot)' },
  json: { type: 'boolean', describe: 'machine-readable output on stdout' },
  'sim-time': { choices: ['real', 'virtual'] as const, describe: 'in-process virtual jig: wall time (the default) or model time (exact modelled durations, independent of the CPU)' },
} as const;

/** Everything a DUT command works with; close() leaves the slot in its safe state. */
export interface DutSession {
  jig: JigSpec;
  jigPath: string;
  spec: SlotSpec;
  clock: Clock;
  log: Logger;
  endpoints: EndpointRegistry;
  sim?: InProcessJig;
  /** Open when the command powers the slot (or provisions it over the ROM). */
  station?: OpenStation;
  secrets: ProvisioningSecrets;
  /** Locate the plug (again: its address may change after a restart) and return a client for it. */
  connect(): Promise<{ client: ObkHttpClient; location: PlugLocation }>;
  close(): Promise<void>;
}

/** Load the jig, start its in-process virtual devices if it has any, and prepare to reach the slot's plug. */
export async function openDutSession(args: DutArgs, o: { openStation?: boolean; simPlugs?: SimPlugState } = {}): Promise<DutSession> {
  const jig = loadJigFile(args.jig);
  const spec = jig.slots.find((s) => s.id === args.slot);
  if (!spec) throw new ConfigError(`jig ${jig.name} has no slot ${args.slot} (slots: ${jig.slots.map((s) => s.id).join(', ')})`, { step: 'args' });
  // Loaded on demand: the virtual jig and the station (johnny-five) cost seconds to import.
  const { usesSim, startVirtualJig, simPlugAddress } = await import('../../sim/jig/in-process-jig.ts');
  const virtual = usesSim(jig);
  if (args.sim && !virtual) throw new ConfigError(`--sim given, but jig ${args.jig} names real ports (no sim: devices)`, { step: 'args' });
  if (args.simTime === 'virtual' && !virtual) throw new ConfigError('--sim-time virtual needs the virtual jig (--sim)', { step: 'args' });
  // Model time keeps a stalled host (a loaded machine) from looking like a dead one to the virtual
  // jig's heartbeat watchdog, which would drop mains; wall time stays the default a user pokes at.
  const clock: Clock = args.simTime === 'virtual' ? new VirtualClock() : new RealClock();
  const log = rootLogger().child({ cmd: 'dut', slot: spec.id });
  const endpoints = nativeEndpoints();
  const secretsFile = jig.provisioning?.secrets ? resolve(dirname(args.jig), jig.provisioning.secrets) : undefined;
  const loaded = loadProvisioningSecrets({ ...(secretsFile ? { secretsFile } : {}), ...(jig.provisioning?.wifiSsid ? { wifiSsid: jig.provisioning.wifiSsid } : {}) });
  // The virtual station network is the station's network: the credentials the plugs are given (or its own).
  const wifi = loaded.wifi ?? DEFAULT_VIRTUAL_WIFI;
  const sim = virtual ? startVirtualJig(jig, { clock, endpoints, wifi, chipOptions: (id) => preloadedOpenBeken(id, o.simPlugs ?? 'provisioned', wifi) }) : undefined;
  let station: OpenStation | undefined;
  const close = async (): Promise<void> => {
    await station?.close();
    sim?.vj.dispose();
  };
  try {
    // The in-process virtual jig's station network has its own (non-secret) credentials.
    const secrets: ProvisioningSecrets =
      sim && !loaded.wifi ? { ...loaded, wifi: { ...DEFAULT_VIRTUAL_WIFI }, secrets: [...loaded.secrets, DEFAULT_VIRTUAL_WIFI.pass], sources: [...loaded.sources, 'the virtual station network'] } : loaded;
    const power = args.power ?? sim !== undefined;
    if (power || o.openStation) {
      const { openStation } = await import('../../station/open-station.ts');
      // A slot on a shared mains relay (jig `mainsGroups`) is opened with every slot the relay feeds: the
      // relay is only judged safe with each of those plugs under its interlock (UART and 3V3 held off).
      const [groupName, group] = Object.entries(jig.mainsGroups ?? {}).find(([, g]) => g.slots.includes(spec.id)) ?? [];
      const partners = group ? group.slots.filter((id) => id !== spec.id) : [];
      station = await openStation(jig, { clock, log, endpoints, slots: [spec.id, ...partners] });
      if (power && !o.openStation) {
        for (const id of partners) {
          await station.slots.get(id)!.io.interlock.safeState();
          // Nothing runs on the partners: the relay's barrier does not wait for them to ask.
          station.mainsGroups.get(groupName!)?.leave(id);
        }
        if (partners.length) cliStderr().write(`mains group ${groupName}: slot ${partners.join(', ')} ${partners.length > 1 ? 'share' : 'shares'} slot ${spec.id}'s mains relay and get${partners.length > 1 ? '' : 's'} mains too (UART and 3V3 held off)\n`);
        const il = station.slots.get(spec.id)!.io.interlock;
        await il.safeState();
        await il.mainsOn();
      }
    }
    const connect = async (): Promise<{ client: ObkHttpClient; location: PlugLocation }> => {
      const location = await locatePlug(spec.plug ?? (sim ? { url: simPlugAddress(spec.id) } : undefined), {
        slot: spec.id,
        ...(args.mac ? { mac: args.mac } : {}),
        resolveHttp: plugResolver(sim, endpoints),
        clock,
        timeoutMs: args.timeout * 1000,
      });
      const client = new ObkHttpClient({ url: location.url, clock, log, slot: spec.id, secrets: secrets.secrets, ...(secrets.webPassword ? { webPassword: secrets.webPassword } : {}) });
      return { client, location };
    };
    return { jig, jigPath: args.jig, spec, clock, log, endpoints, ...(sim ? { sim } : {}), ...(station ? { station } : {}), secrets, connect, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * On the in-process virtual jig the DUT commands meet plugs that already run OpenBeken (a plug from
 * the factory runs the stock Tuya app and has no OpenBeken API): 'provisioned' with the RMC021
 * template on the virtual station network, or 'unconfigured' (first boot opens its AP).
 */
export type SimPlugState = 'provisioned' | 'unconfigured';

function preloadedOpenBeken(slotId: number, state: SimPlugState, wifi: { ssid: string; pass: string }): { mac: Uint8Array; initialImages: Array<{ address: number; data: Uint8Array }> } {
  const mac = Uint8Array.from([0xc8, 0x47, 0x8c, 0x00, 0x01, slotId & 0xff]);
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: '1.18.42', seed: 1 });
  const plan = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' }).bytesToWrite(false);
  const images = [{ address: plan.offset, data: plan.bytes }];
  if (state === 'provisioned') {
    const t = loadDeviceTemplate(resolve(DEVICES_DIR, 'rmc021.json'));
    const { roles, channels, channels2 } = templatePinArrays(t);
    images.push({ address: OBK_CONFIG_ADDRESS, data: buildObkConfigSector({ mac, pins: { roles, channels, channels2 }, flags: effectiveFlags(t), startupCommand: t.command, wifi }) });
  }
  return { mac, initialImages: images };
}

/** Set flag numbers of the signed low word /api/info prints. */
export function flagBits(flags: string): number[] {
  const n = Number(flags);
  if (!Number.isInteger(n)) return [];
  const word = n >>> 0;
  return Array.from({ length: 32 }, (_, i) => i).filter((i) => (word >>> i) & 1);
}

export function describePins(pins: ObkPins): string[] {
  const out: string[] = [];
  pins.roles.forEach((r, p) => {
    if (r === 0) return;
    const ch2 = pins.channels2?.[p] ?? 0;
    out.push(`P${p} ${roleName(r)} ch ${pins.channels[p] ?? 0}${ch2 ? `/${ch2}` : ''}`);
  });
  return out;
}

interface InfoArgs extends DutArgs {}

const dutInfo: CommandModule<object, InfoArgs> = {
  command: 'info <jig>',
  describe: "the slot's plug over HTTP: identity, build, MAC, pins, flags, energy block",
  builder: (y: Argv) => y.positional('jig', { type: 'string', demandOption: true, describe: 'jig file' }).options(dutOptions) as unknown as Argv<InfoArgs>,
  handler: async (args: ArgumentsCamelCase<InfoArgs>) => {
    const s = await openDutSession(args);
    try {
      const { client, location } = await s.connect();
      const info: ObkInfo = await client.waitOnline({ timeoutMs: args.timeout * 1000 });
      const pins = await client.pins();
      const status2 = await client.status(2);
      const fwr = (status2.StatusFWR ?? {}) as Record<string, unknown>;
      const energy = await client.energy();
      if (args.json) {
        printJson({ slot: s.spec.id, url: location.url, via: location.via, info, firmware: fwr, pins: { roles: pins.roles, channels: pins.channels, ...(pins.channels2 ? { channels2: pins.channels2 } : {}) }, flags: flagBits(info.flags), energy: energy ?? null });
        return;
      }
      const w = (k: string, v: string): void => void cliStdout().write(`${k.padEnd(10)}${v}\n`);
      w('plug', `${location.url} (${location.via})`);
      w('name', info.shortName);
      // STATUS 2 without StatusFWR (or without its Version) is said, not shown as "?".
      const version = status2.StatusFWR === undefined ? 'STATUS 2 has no StatusFWR' : fwr.Version === undefined ? 'StatusFWR has no Version' : String(fwr.Version);
      w('build', `${version}, ${info.build}`);
      w('chipset', info.chipset);
      w('MAC', info.mac);
      w('IP', info.ip);
      w('uptime', `${info.uptime_s} s`);
      w('flags', `${info.flags}${flagBits(info.flags).length ? ` (flags ${flagBits(info.flags).join(', ')})` : ''}`);
      w('startcmd', info.startcmd === '' ? '(none)' : info.startcmd);
      w('pins', describePins(pins).join(', ') || '(none)');
      w(
        'energy',
        energy
          ? `${energy.voltage.toFixed(1)} V  ${energy.current.toFixed(3)} A  ${energy.power.toFixed(2)} W  PF ${energy.factor.toFixed(2)}  total ${energy.consumptionTotalWh.toFixed(3)} Wh`
          : 'no metering driver running (no ENERGY block in STATUS 8)',
      );
    } finally {
      await s.close();
    }
  },
};

interface CmdArgs extends DutArgs {
  command: string;
  cm?: boolean;
}

const dutCmd: CommandModule<object, CmdArgs> = {
  command: 'cmd <jig> <command>',
  describe: 'run one OpenBeken console command on the slot\'s plug (POST /api/cmnd: a refusal is an error)',
  builder: (y: Argv) =>
    y
      .positional('jig', { type: 'string', demandOption: true, describe: 'jig file' })
      .positional('command', { type: 'string', demandOption: true, describe: 'e.g. "POWER ON", "STATUS 8"' })
      .options(dutOptions)
      .option('cm', { type: 'boolean', describe: 'send it Tasmota-style over /cm instead (always HTTP 200: failures are invisible)' }) as unknown as Argv<CmdArgs>,
  handler: async (args: ArgumentsCamelCase<CmdArgs>) => {
    const s = await openDutSession(args);
    try {
      const { client } = await s.connect();
      await client.waitOnline({ timeoutMs: args.timeout * 1000 });
      if (args.cm) {
        const r = await client.cm(args.command);
        if (args.json) printJson({ body: r.json ?? r.text });
        else cliStdout().write(`${r.text}\n`);
        return;
      }
      const r = await client.cmnd(args.command);
      if (args.json) printJson(r);
      else cliStdout().write(`${JSON.stringify(r.res ?? {})}\n`);
    } finally {
      await s.close();
    }
  },
};

export const dutCommand: CommandModule = {
  command: 'dut',
  describe: "talk to the slot's plug once it runs OpenBeken (info, cmd)",
  builder: (y: Argv) => y.command(dutInfo).command(dutCmd).demandCommand(1, 'name a dut command: info or cmd'),
  handler: () => undefined,
};

/** Plug addresses for locatePlug: the in-process virtual jig's own (sim:) when there is one, else the registry's. */
export function plugResolver(sim: InProcessJig | undefined, endpoints: EndpointRegistry): HttpAddressResolver {
  return sim ? sim.resolvePlug : (address) => endpoints.http.resolve(address);
}

/**
 * What a provisioning run needs besides the jig: the device template (the plan's, by file or
 * board-model name) and the station's credentials (the virtual station network's own when the jig
 * is virtual and none are configured).
 */
export function stationProvisioning(
  o: { templateRef?: string; planDir?: string; jig: JigSpec; jigPath: string; virtualWifi?: { ssid: string; pass: string } },
): { template?: DeviceTemplate; wifi?: { ssid: string; pass: string }; webPassword?: string; secrets: string[] } {
  const template = o.templateRef ? loadDeviceTemplate(resolveDeviceTemplate(o.templateRef, { ...(o.planDir ? { baseDir: o.planDir } : {}), devicesDir: DEVICES_DIR })) : undefined;
  const secretsFile = o.jig.provisioning?.secrets ? resolve(dirname(o.jigPath), o.jig.provisioning.secrets) : undefined;
  const s = loadProvisioningSecrets({ ...(secretsFile ? { secretsFile } : {}), ...(o.jig.provisioning?.wifiSsid ? { wifiSsid: o.jig.provisioning.wifiSsid } : {}) });
  const wifi = s.wifi ?? o.virtualWifi;
  return { ...(template ? { template } : {}), ...(wifi ? { wifi } : {}), ...(s.webPassword ? { webPassword: s.webPassword } : {}), secrets: [...s.secrets, ...(wifi ? [wifi.pass] : [])] };
}
