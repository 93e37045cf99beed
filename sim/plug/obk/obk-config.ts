import type { ObkConfigData } from './contracts.ts';

/**
 * The OpenBeken config in RAM: the factory defaults (CFG_SetDefaultConfig, openbeken-http.md §4,
 * openbeken-bl0937.md §4.1) and the flag word helpers. Device names are derived from the STA MAC at
 * default-config time and then frozen in the config.
 */

export const OBK_CONFIG_VERSION = 5;
export const DEFAULT_WEBAPP_ROOT = 'https://openbekeniot.github.io/webapp/';
export const DEFAULT_MQTT_PORT = 1883;
export const DEFAULT_MQTT_USER = 'homeassistant';
export const DEFAULT_MQTT_PASS = 'qqqqqqqqqq';
/** Flag 10 (MQTT broadcast self state on connect) is on in a fresh config. */
export const DEFAULT_FLAGS = 1 << 10;
export const DEFAULT_BOOT_OK_SECONDS = 5;

/** Flags by number (openbeken-bl0937.md §1.2, docs/flags.md). */
export const OBK_FLAG = Object.freeze({
  BTN_INSTANTTOUCH: 6,
  MQTT_BROADCASTSELFSTATEONCONNECT: 10,
  ALLOW_NEGATIVE_POWER: 25,
  DRV_DISABLE_AUTOSTART: 36,
  WIFI_FAST_CONNECT: 37,
  POWER_FORCE_ZERO_IF_RELAYS_OPEN: 38,
  BUTTON_DISABLE_ALL: 41,
});

function macHex(mac: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += (mac[i] ?? 0).toString(16).toUpperCase().padStart(2, '0');
  return s;
}

/** `OpenBK7231N_AABBCCDD` from MAC bytes 2..5. */
export function defaultLongName(mac: Uint8Array): string {
  return `OpenBK7231N_${macHex(mac, 2, 6)}`;
}

/** `obkAABBCCDD` from MAC bytes 2..5. */
export function defaultShortName(mac: Uint8Array): string {
  return `obk${macHex(mac, 2, 6)}`;
}

export function defaultConfig(mac: Uint8Array): ObkConfigData {
  const shortName = defaultShortName(mac);
  return {
    version: OBK_CONFIG_VERSION,
    genericFlags: DEFAULT_FLAGS,
    genericFlags2: 0,
    changeCounter: 0,
    wifiSsid: '',
    wifiPass: '',
    mqttHost: '',
    mqttClientId: shortName,
    mqttUser: DEFAULT_MQTT_USER,
    mqttPass: DEFAULT_MQTT_PASS,
    mqttPort: DEFAULT_MQTT_PORT,
    webappRoot: DEFAULT_WEBAPP_ROOT,
    mac: Uint8Array.from(mac),
    shortDeviceName: shortName,
    longDeviceName: defaultLongName(mac),
    pinRoles: new Array<number>(32).fill(0),
    pinChannels: new Array<number>(32).fill(0),
    pinChannels2: new Array<number>(32).fill(0),
    channelTypes: new Array<number>(64).fill(0),
    startChannelValues: new Array<number>(64).fill(0),
    cal: { voltage: 0, current: 0, power: 0, powerMax: 0 },
    buttonShortTicks: 3,
    buttonLongTicks: 10,
    buttonRepeatTicks: 5,
    bootOkSeconds: 0,
    initCommandLine: '',
    ssid2: '',
    pass2: '',
    webPassword: '',
  };
}

/** A deep copy, so the RAM config and what was handed to storage never alias. */
export function cloneConfig(cfg: ObkConfigData): ObkConfigData {
  return {
    ...cfg,
    mac: Uint8Array.from(cfg.mac),
    pinRoles: [...cfg.pinRoles],
    pinChannels: [...cfg.pinChannels],
    pinChannels2: [...cfg.pinChannels2],
    channelTypes: [...cfg.channelTypes],
    startChannelValues: [...cfg.startChannelValues],
    cal: { ...cfg.cal },
  };
}

export function hasFlag(cfg: ObkConfigData, n: number): boolean {
  if (n < 0 || n > 63) return false;
  const word = n < 32 ? cfg.genericFlags : cfg.genericFlags2;
  return ((word >>> n % 32) & 1) === 1;
}

/** Set or clear one flag; returns true when the word changed. */
export function setFlag(cfg: ObkConfigData, n: number, on: boolean): boolean {
  if (n < 0 || n > 63) return false;
  const bit = (1 << n % 32) >>> 0;
  const key = n < 32 ? 'genericFlags' : 'genericFlags2';
  const before = cfg[key] >>> 0;
  const after = (on ? before | bit : before & ~bit) >>> 0;
  cfg[key] = after;
  return after !== before;
}

/** The seconds after which a boot counts as successful (FullBootTime; 0 = default 5). */
export function bootOkSeconds(cfg: ObkConfigData): number {
  return cfg.bootOkSeconds > 0 ? cfg.bootOkSeconds : DEFAULT_BOOT_OK_SECONDS;
}
