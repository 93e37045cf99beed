import { readFileSync } from 'node:fs';
import { ConfigError } from '../../rig/core/errors.ts';
import type { ObkConfigData } from './obk/contracts.ts';
import { defaultConfig } from './obk/obk-config.ts';
import { parsePinRoleName, PLATFORM_GPIO_MAX } from './obk/pin-roles.ts';

/**
 * A device template in OpenBeken's devices-list format (openbeken-bl0937.md §7), read minimally for
 * the simulator's own use (`plugrig sim --plug --template FILE`): `pins` {"<gpio>": "<Role>;<ch>[;<ch2>]"},
 * `flags` (decimal string or number) or legacy `flag` (one flag index), `command`. A file may hold
 * one device object or a devices list with exactly one entry. The rig's validated loader is in rig/.
 */
export interface SimTemplate {
  name: string;
  pins: Record<number, { role: number; channel: number; channel2: number }>;
  flags: number;
  command: string;
}

/** The RMC021 entry of the devices list (the plug this rig tests). */
export const RMC021_TEMPLATE: Readonly<SimTemplate> = Object.freeze({
  name: 'Tuya RMC021',
  pins: {
    6: { role: 19, channel: 0, channel2: 0 }, // BL0937CF1
    7: { role: 18, channel: 0, channel2: 0 }, // BL0937CF
    8: { role: 9, channel: 0, channel2: 0 }, // WifiLED_n
    10: { role: 3, channel: 1, channel2: 0 }, // Btn;1
    24: { role: 17, channel: 0, channel2: 0 }, // BL0937SEL
    26: { role: 1, channel: 1, channel2: 0 }, // Rel;1
  },
  flags: 1024,
  command: 'startDriver NTP',
});

/** Parse a template object; every problem in one error. */
export function parseSimTemplate(json: unknown, where: string): SimTemplate {
  const problems: string[] = [];
  let entry = json as Record<string, unknown> | undefined;
  if (entry && Array.isArray(entry['devices'])) {
    const list = entry['devices'] as unknown[];
    if (list.length !== 1) problems.push(`holds ${list.length} devices; give a file with one`);
    entry = list[0] as Record<string, unknown> | undefined;
  }
  if (!entry || typeof entry !== 'object') throw new ConfigError(`${where}: not a device template object`, { step: 'sim-template' });
  const pins: SimTemplate['pins'] = {};
  const rawPins = entry['pins'];
  if (rawPins === undefined || typeof rawPins !== 'object' || rawPins === null) problems.push('no "pins" object');
  else {
    for (const [gpio, value] of Object.entries(rawPins as Record<string, unknown>)) {
      const pin = Number(gpio);
      if (!Number.isInteger(pin) || pin < 0 || pin >= PLATFORM_GPIO_MAX) {
        problems.push(`pin "${gpio}" is not a BK7231N GPIO (0..${PLATFORM_GPIO_MAX - 1})`);
        continue;
      }
      const [roleName = '', ch = '0', ch2 = '0'] = String(value).split(';');
      const role = parsePinRoleName(roleName);
      if (role === undefined) problems.push(`pin ${pin}: unknown role "${roleName}"`);
      const channel = Number(ch);
      const channel2 = Number(ch2);
      if (!Number.isInteger(channel) || !Number.isInteger(channel2)) problems.push(`pin ${pin}: channel "${ch}" is not a number`);
      if (role !== undefined) pins[pin] = { role, channel, channel2 };
    }
  }
  let flags = 0;
  if (entry['flags'] !== undefined) {
    const f = Number(entry['flags']);
    if (!Number.isInteger(f)) problems.push(`flags "${String(entry['flags'])}" is not a number`);
    else flags = f >>> 0;
  } else if (entry['flag'] !== undefined) {
    const f = Number(entry['flag']);
    if (!Number.isInteger(f) || f < 0 || f > 31) problems.push(`flag "${String(entry['flag'])}" is not a flag index`);
    else flags = (1 << f) >>> 0;
  }
  if (problems.length > 0) throw new ConfigError(`${where}: ${problems.join('; ')}`, { step: 'sim-template', problems });
  const name = [entry['vendor'], entry['name']].filter((x) => typeof x === 'string').join(' ') || where;
  return { name, pins, flags, command: typeof entry['command'] === 'string' ? entry['command'] : '' };
}

export function loadSimTemplate(path: string): SimTemplate {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read template ${path}: ${(e as Error).message}`, { step: 'sim-template', path }, { cause: e });
  }
  try {
    return parseSimTemplate(JSON.parse(text), path);
  } catch (e) {
    if (e instanceof SyntaxError) throw new ConfigError(`${path}: not JSON (${e.message})`, { step: 'sim-template', path }, { cause: e });
    throw e;
  }
}

/**
 * The config an offline provisioning leaves behind: defaults for this MAC, the template (or no pins
 * for `undefined`), and the station network's credentials.
 */
export function provisionedConfig(mac: Uint8Array, template: SimTemplate | undefined, wifi: { ssid: string; pass: string } | undefined): ObkConfigData {
  const cfg = defaultConfig(mac);
  if (template) {
    for (const [pin, p] of Object.entries(template.pins)) {
      cfg.pinRoles[Number(pin)] = p.role;
      cfg.pinChannels[Number(pin)] = p.channel;
      cfg.pinChannels2[Number(pin)] = p.channel2;
    }
    cfg.genericFlags = template.flags;
    cfg.initCommandLine = template.command;
  }
  if (wifi) {
    cfg.wifiSsid = wifi.ssid;
    cfg.wifiPass = wifi.pass;
  }
  return cfg;
}
