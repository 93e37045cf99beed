/**
 * Host-side builder of OpenBeken's config sector (mainConfig_t, openbeken-http.md §6) for offline
 * provisioning over the ROM: written at 0x1D1000 (BK7231N NET_PARAM partition), right after the RF/MAC
 * sector at 0x1D0000. OpenBeken erases the sector and writes sizeof(mainConfig_t) = 3584 bytes, so
 * the last 512 bytes of the 4 KiB sector stay erased (0xFF). Fields not set here are zero, as after
 * CFG_SetDefaultConfig's memset. Pure: bytes out, no I/O.
 */
import { BK7231N_PARTITIONS } from '../../firmware/flash-layout.ts';
import { ConfigError } from '../core/errors.ts';

export const OBK_CONFIG_ADDRESS = BK7231N_PARTITIONS.netParam.start;
export const OBK_CONFIG_SECTOR_SIZE = 0x1000;
export const OBK_CONFIG_SIZE = 3584;
export const OBK_CONFIG_VERSION = 5;
/** The CRC covers [4, 3584): everything after the ident and the CRC byte itself. */
export const OBK_CONFIG_CRC_START = 4;

/** Byte offsets of mainConfig_t on BK7231N (layout group "D"), with field sizes for strings. */
export const OBK_CFG = {
  ident: 0x00,
  crc: 0x03,
  version: 0x04,
  genericFlags: 0x08,
  genericFlags2: 0x0c,
  changeCounter: 0x10,
  wifiSsid: { at: 0x14, size: 64 },
  wifiPass: { at: 0x54, size: 64 },
  mqttHost: { at: 0x94, size: 256 },
  mqttClientId: { at: 0x194, size: 64 },
  mqttUser: { at: 0x1d4, size: 64 },
  mqttPass: { at: 0x214, size: 128 },
  mqttPort: 0x294,
  webappRoot: { at: 0x298, size: 64 },
  mac: 0x2d8,
  shortDeviceName: { at: 0x2de, size: 32 },
  longDeviceName: { at: 0x2fe, size: 64 },
  pinRoles: 0x33e,
  pinChannels: 0x35e,
  pinChannels2: 0x37e,
  channelTypes: 0x39e,
  startChannelValues: 0x3de,
  calValues: 0x498,
  buttonShort: 0x4b8,
  buttonLong: 0x4b9,
  buttonRepeat: 0x4ba,
  bootOkSeconds: 0x597,
  initCommandLine: { at: 0x5e0, size: 1568 },
  ssid2: { at: 0xc00, size: 64 },
  webPassword: { at: 0xc84, size: 33 },
} as const;

/** Pin tables in mainConfig_t have 32 entries (BK7231N uses 29). */
export const OBK_CFG_PINS = 32;

export interface ObkConfigSectorInput {
  /** STA MAC (6 bytes or "aa:bb:cc:dd:ee:ff"), as read from the RF sector over the ROM. */
  mac: Uint8Array | string;
  /** Pin roles (IOR numbers) and channels by pin index (at most 32 entries). */
  pins?: { roles: readonly number[]; channels: readonly number[]; channels2?: readonly number[] };
  /** The 64-bit flag word; default flag 10 alone, as CFG_SetDefaultConfig. */
  flags?: bigint;
  /** Startup command (initCommandLine). */
  startupCommand?: string;
  wifi?: { ssid: string; pass: string };
  webPassword?: string;
  /** Device names; default long `OpenBK7231N_XXXXXXXX`, short `obkXXXXXXXX` from MAC bytes 2..5. */
  shortName?: string;
  longName?: string;
  mqtt?: { host?: string; port?: number; clientId?: string; user?: string; pass?: string };
  changeCounter?: number;
}

/** CRC8 Dallas/Maxim, reflected, polynomial 0x8C, init 0 (OpenBeken's Tiny_CRC8). */
export function obkCrc8(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    let b = byte;
    for (let i = 0; i < 8; i++) {
      const mix = (crc ^ b) & 1;
      crc >>>= 1;
      if (mix) crc ^= 0x8c;
      b >>>= 1;
    }
  }
  return crc;
}

export function macBytes(mac: Uint8Array | string): Uint8Array {
  if (typeof mac !== 'string') {
    if (mac.length !== 6) throw new ConfigError(`MAC must be 6 bytes, got ${mac.length}`, { step: 'config-sector' });
    return Uint8Array.from(mac);
  }
  const m = /^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$/i.exec(mac.trim());
  if (!m) throw new ConfigError(`MAC ${JSON.stringify(mac)} is not aa:bb:cc:dd:ee:ff`, { step: 'config-sector' });
  return Uint8Array.from(m.slice(1, 7), (h) => parseInt(h, 16));
}

/** OpenBeken's default names from MAC bytes 2..5, upper-case hex. */
export function obkDefaultNames(mac: Uint8Array | string): { shortName: string; longName: string } {
  const b = macBytes(mac);
  const tail = Array.from(b.subarray(2, 6), (x) => x.toString(16).toUpperCase().padStart(2, '0')).join('');
  return { shortName: `obk${tail}`, longName: `OpenBK7231N_${tail}` };
}

export const OBK_DEFAULT_WEBAPP = 'https://openbekeniot.github.io/webapp/';

/** The 4 KiB sector to write at 0x1D1000. */
export function buildObkConfigSector(input: ObkConfigSectorInput): Uint8Array {
  const sector = new Uint8Array(OBK_CONFIG_SECTOR_SIZE).fill(0xff);
  const cfg = new Uint8Array(OBK_CONFIG_SIZE);
  const view = new DataView(cfg.buffer);
  const mac = macBytes(input.mac);
  const names = obkDefaultNames(mac);

  const str = (field: keyof typeof OBK_CFG, value: string, secret = false): void => {
    const f = OBK_CFG[field] as { at: number; size: number };
    const bytes = new TextEncoder().encode(value);
    if (bytes.includes(0)) throw new ConfigError(`config field ${field} contains a NUL byte`, { step: 'config-sector', field });
    if (bytes.length > f.size - 1) {
      // The value itself never goes into the message when it is a secret.
      const shown = secret ? '' : ` (${JSON.stringify(value.slice(0, 40))}${value.length > 40 ? '…' : ''})`;
      throw new ConfigError(`config field ${field} is ${bytes.length} bytes${shown}; OpenBeken keeps at most ${f.size - 1}`, { step: 'config-sector', field });
    }
    cfg.set(bytes, f.at);
  };

  cfg.set([0x43, 0x46, 0x47], OBK_CFG.ident); // "CFG"
  view.setInt32(OBK_CFG.version, OBK_CONFIG_VERSION, true);
  const flags = input.flags ?? 1n << 10n;
  if (flags < 0n || flags >= 2n ** 64n) throw new ConfigError(`flag word ${flags} does not fit in 64 bits`, { step: 'config-sector' });
  view.setUint32(OBK_CFG.genericFlags, Number(flags & 0xffffffffn), true);
  view.setUint32(OBK_CFG.genericFlags2, Number(flags >> 32n), true);
  view.setUint16(OBK_CFG.changeCounter, input.changeCounter ?? 0, true);
  if (input.wifi) {
    str('wifiSsid', input.wifi.ssid);
    str('wifiPass', input.wifi.pass, true);
  }
  str('mqttHost', input.mqtt?.host ?? '');
  str('mqttClientId', input.mqtt?.clientId ?? input.shortName ?? names.shortName);
  str('mqttUser', input.mqtt?.user ?? 'homeassistant');
  str('mqttPass', input.mqtt?.pass ?? 'qqqqqqqqqq', true);
  view.setInt32(OBK_CFG.mqttPort, input.mqtt?.port ?? 1883, true);
  str('webappRoot', OBK_DEFAULT_WEBAPP);
  cfg.set(mac, OBK_CFG.mac);
  str('shortDeviceName', input.shortName ?? names.shortName);
  str('longDeviceName', input.longName ?? names.longName);
  if (input.pins) {
    const table = (name: string, values: readonly number[] | undefined, at: number): void => {
      if (!values) return;
      if (values.length > OBK_CFG_PINS) throw new ConfigError(`pin table ${name} has ${values.length} entries, the config holds ${OBK_CFG_PINS}`, { step: 'config-sector' });
      values.forEach((v, i) => {
        if (!Number.isInteger(v) || v < 0 || v > 255) throw new ConfigError(`pin table ${name}[${i}] = ${v} is not a byte`, { step: 'config-sector' });
        cfg[at + i] = v;
      });
    };
    table('roles', input.pins.roles, OBK_CFG.pinRoles);
    table('channels', input.pins.channels, OBK_CFG.pinChannels);
    table('channels2', input.pins.channels2, OBK_CFG.pinChannels2);
  }
  // Button times in 0.1 s units: OpenBeken's defaults short 3, long 10, repeat 5.
  cfg[OBK_CFG.buttonShort] = 3;
  cfg[OBK_CFG.buttonLong] = 10;
  cfg[OBK_CFG.buttonRepeat] = 5;
  str('initCommandLine', input.startupCommand ?? '');
  if (input.webPassword !== undefined) str('webPassword', input.webPassword, true);

  cfg[OBK_CFG.crc] = obkCrc8(cfg.subarray(OBK_CONFIG_CRC_START));
  sector.set(cfg, 0);
  return sector;
}
