import type { ObkConfigData } from './obk/contracts.ts';

/**
 * The simulator's own reader and writer of OpenBeken's config sector (mainConfig_t at 0x1D1000,
 * openbeken-http.md §6, requirement 38). Independent of the rig's builder (rig/obk/) on purpose: a
 * provisioning bug must not be mirrored by the plug that reads it.
 *
 * 'C','F','G', CRC8 (Dallas/Maxim reflected, poly 0x8C, init 0) over bytes [4, 3584), version 5 at
 * 4; OpenBeken erases the sector and writes 3584 bytes, so [3584, 4096) stays 0xFF. Field offsets
 * are BK7231N's (layout group "D"); sizes follow from the next field's offset. Bytes of fields the
 * simulator does not model are kept as they were read (the firmware holds the whole struct in RAM).
 */

export const OBK_CONFIG_ADDR = 0x1d1000;
export const OBK_CONFIG_BYTES = 3584;
export const OBK_CONFIG_SECTOR_BYTES = 0x1000;
const VERSION = 5;

const STR = {
  wifiSsid: [0x14, 64],
  wifiPass: [0x54, 64],
  mqttHost: [0x94, 256],
  mqttClientId: [0x194, 64],
  mqttUser: [0x1d4, 64],
  mqttPass: [0x214, 128],
  webappRoot: [0x298, 64],
  shortDeviceName: [0x2de, 32],
  longDeviceName: [0x2fe, 64],
  initCommandLine: [0x5e0, 1568],
  ssid2: [0xc00, 64],
  // wifi_pass2 fills the gap up to webPassword at 0xC84.
  pass2: [0xc40, 68],
  webPassword: [0xc84, 33],
} as const satisfies Record<string, readonly [number, number]>;

const AT = {
  version: 0x04,
  genericFlags: 0x08,
  genericFlags2: 0x0c,
  changeCounter: 0x10,
  mqttPort: 0x294,
  mac: 0x2d8,
  pinRoles: 0x33e,
  pinChannels: 0x35e,
  pinChannels2: 0x37e,
  channelTypes: 0x39e,
  startChannelValues: 0x3de, // 64 × i16 LE
  cal: 0x498, // float32 LE: V, I, P, PowerMax
  buttonShort: 0x4b8,
  buttonLong: 0x4b9,
  buttonRepeat: 0x4ba,
  bootOkSeconds: 0x597,
} as const;

/** OpenBeken's Tiny_CRC8: Dallas/Maxim, reflected (poly 0x8C), init 0; unsigned shifts throughout. */
export function tinyCrc8(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    let b = data[i]!;
    for (let k = 0; k < 8; k++) {
      const mix = (crc ^ b) & 0x01;
      crc >>>= 1;
      if (mix) crc ^= 0x8c;
      b >>>= 1;
    }
  }
  return crc;
}

function readString(bytes: Uint8Array, [at, size]: readonly [number, number]): string {
  let end = at;
  while (end < at + size && bytes[end] !== 0) end++;
  return Buffer.from(bytes.subarray(at, end)).toString('latin1');
}

/** strncpy-like: truncated to size-1 so the terminator always fits, the rest zeroed. */
function writeString(bytes: Uint8Array, [at, size]: readonly [number, number], value: string): void {
  const b = Buffer.from(value, 'latin1').subarray(0, size - 1);
  bytes.fill(0, at, at + size);
  bytes.set(b, at);
}

export interface ParsedConfig {
  config: ObkConfigData;
  /** The 3584 bytes as read (kept so unmodelled fields survive a save). */
  raw: Uint8Array;
}

/** Why a sector is not a valid config (undefined = valid). */
export function configSectorProblem(sector: Uint8Array): string | undefined {
  if (sector.length < OBK_CONFIG_BYTES) return `only ${sector.length} bytes`;
  if (sector[0] !== 0x43 || sector[1] !== 0x46 || sector[2] !== 0x47) return 'no "CFG" ident';
  const crc = tinyCrc8(sector, 4, OBK_CONFIG_BYTES);
  if (crc !== sector[3]) return `CRC8 0x${crc.toString(16)} does not match the stored 0x${sector[3]!.toString(16)}`;
  return undefined;
}

/** Parse a config sector; undefined when the ident or CRC is wrong (OpenBeken then starts from defaults). */
export function parseConfigSector(sector: Uint8Array): ParsedConfig | undefined {
  if (configSectorProblem(sector) !== undefined) return undefined;
  const raw = Uint8Array.from(sector.subarray(0, OBK_CONFIG_BYTES));
  const dv = new DataView(raw.buffer);
  const u8s = (at: number, n: number): number[] => Array.from(raw.subarray(at, at + n));
  const config: ObkConfigData = {
    version: dv.getInt32(AT.version, true),
    genericFlags: dv.getUint32(AT.genericFlags, true),
    genericFlags2: dv.getUint32(AT.genericFlags2, true),
    changeCounter: dv.getUint16(AT.changeCounter, true),
    wifiSsid: readString(raw, STR.wifiSsid),
    wifiPass: readString(raw, STR.wifiPass),
    mqttHost: readString(raw, STR.mqttHost),
    mqttClientId: readString(raw, STR.mqttClientId),
    mqttUser: readString(raw, STR.mqttUser),
    mqttPass: readString(raw, STR.mqttPass),
    mqttPort: dv.getInt32(AT.mqttPort, true),
    webappRoot: readString(raw, STR.webappRoot),
    mac: raw.slice(AT.mac, AT.mac + 6),
    shortDeviceName: readString(raw, STR.shortDeviceName),
    longDeviceName: readString(raw, STR.longDeviceName),
    pinRoles: u8s(AT.pinRoles, 32),
    pinChannels: u8s(AT.pinChannels, 32),
    pinChannels2: u8s(AT.pinChannels2, 32),
    channelTypes: u8s(AT.channelTypes, 64),
    startChannelValues: Array.from({ length: 64 }, (_, i) => dv.getInt16(AT.startChannelValues + 2 * i, true)),
    cal: {
      voltage: dv.getFloat32(AT.cal, true),
      current: dv.getFloat32(AT.cal + 4, true),
      power: dv.getFloat32(AT.cal + 8, true),
      powerMax: dv.getFloat32(AT.cal + 12, true),
    },
    buttonShortTicks: raw[AT.buttonShort]!,
    buttonLongTicks: raw[AT.buttonLong]!,
    buttonRepeatTicks: raw[AT.buttonRepeat]!,
    bootOkSeconds: raw[AT.bootOkSeconds]!,
    initCommandLine: readString(raw, STR.initCommandLine),
    ssid2: readString(raw, STR.ssid2),
    pass2: readString(raw, STR.pass2),
    webPassword: readString(raw, STR.webPassword),
  };
  return { config, raw };
}

/**
 * The 4 KiB sector for `cfg` (version forced to 5, CRC computed), built over `base` (the bytes last
 * read; zeros for a fresh default config, as CFG_SetDefaultConfig's memset leaves them).
 */
export function buildConfigSector(cfg: ObkConfigData, base?: Uint8Array): Uint8Array {
  const sector = new Uint8Array(OBK_CONFIG_SECTOR_BYTES).fill(0xff);
  const raw = new Uint8Array(OBK_CONFIG_BYTES);
  if (base) raw.set(base.subarray(0, OBK_CONFIG_BYTES));
  const dv = new DataView(raw.buffer);
  raw.set([0x43, 0x46, 0x47], 0);
  dv.setInt32(AT.version, VERSION, true);
  dv.setUint32(AT.genericFlags, cfg.genericFlags >>> 0, true);
  dv.setUint32(AT.genericFlags2, cfg.genericFlags2 >>> 0, true);
  dv.setUint16(AT.changeCounter, cfg.changeCounter & 0xffff, true);
  for (const key of Object.keys(STR) as Array<keyof typeof STR>) writeString(raw, STR[key], cfg[key]);
  dv.setInt32(AT.mqttPort, cfg.mqttPort | 0, true);
  raw.set(cfg.mac.subarray(0, 6), AT.mac);
  const u8s = (at: number, n: number, values: readonly number[]): void => {
    for (let i = 0; i < n; i++) raw[at + i] = (values[i] ?? 0) & 0xff;
  };
  u8s(AT.pinRoles, 32, cfg.pinRoles);
  u8s(AT.pinChannels, 32, cfg.pinChannels);
  u8s(AT.pinChannels2, 32, cfg.pinChannels2);
  u8s(AT.channelTypes, 64, cfg.channelTypes);
  for (let i = 0; i < 64; i++) dv.setInt16(AT.startChannelValues + 2 * i, cfg.startChannelValues[i] ?? 0, true);
  dv.setFloat32(AT.cal, cfg.cal.voltage, true);
  dv.setFloat32(AT.cal + 4, cfg.cal.current, true);
  dv.setFloat32(AT.cal + 8, cfg.cal.power, true);
  dv.setFloat32(AT.cal + 12, cfg.cal.powerMax, true);
  raw[AT.buttonShort] = cfg.buttonShortTicks & 0xff;
  raw[AT.buttonLong] = cfg.buttonLongTicks & 0xff;
  raw[AT.buttonRepeat] = cfg.buttonRepeatTicks & 0xff;
  raw[AT.bootOkSeconds] = cfg.bootOkSeconds & 0xff;
  raw[3] = tinyCrc8(raw, 4, OBK_CONFIG_BYTES);
  sector.set(raw, 0);
  return sector;
}
