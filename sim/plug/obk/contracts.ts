/**
 * Contracts between the parts of the virtual OpenBeken plug. They were written before the parts,
 * so the firmware core (sim/plug/obk/), the BL0937 model (sim/plug/bl0937/) and the flash-backed
 * plug hardware (sim/plug/obk-plug.ts and friends) could be built in parallel. Change them only
 * together with every implementer.
 */
import type { Clock } from '../../../rig/core/clock.ts';

/** The OpenBeken config (mainConfig_t, openbeken-http.md §6) as the firmware sees it in RAM. */
export interface ObkConfigData {
  version: number; // 5
  genericFlags: number; // u32, flags 0..31
  genericFlags2: number; // u32, flags 32..63
  changeCounter: number; // u16
  wifiSsid: string;
  wifiPass: string;
  mqttHost: string;
  mqttClientId: string;
  mqttUser: string;
  mqttPass: string;
  mqttPort: number;
  webappRoot: string;
  mac: Uint8Array; // 6 bytes
  shortDeviceName: string;
  longDeviceName: string;
  /** 32 entries each; role numbers are OpenBeken's IOR_* values. */
  pinRoles: number[];
  pinChannels: number[];
  pinChannels2: number[];
  channelTypes: number[]; // 64
  startChannelValues: number[]; // 64 (i16)
  /** float32 values; a 0 bit pattern means "use the driver default". */
  cal: { voltage: number; current: number; power: number; powerMax: number };
  buttonShortTicks: number; // 0.1 s units, default 3
  buttonLongTicks: number; // default 10
  buttonRepeatTicks: number; // default 5
  bootOkSeconds: number; // 0 = default 5
  initCommandLine: string;
  ssid2: string;
  pass2: string;
  webPassword: string;
}

/** What survives a power cut outside the config sector (EasyFlash OBK_FV at 0x1E5000). */
export interface ObkRetainedData {
  bootCount: number;
  bootSuccessCount: number;
  /** The saved energy total in Wh (stored as float32 by the firmware). */
  energyTotalWh: number;
  energyTodayWh: number;
}

/** Flash-backed storage; the plug hardware implements it over the virtual chip's SPI flash. */
export interface ObkStorage {
  /** The config sector parsed by the simulator's own reader; undefined when ident/CRC is invalid. */
  loadConfig(): ObkConfigData | undefined;
  /** Erase + write the sector (the firmware decides when: within ~1 s of a change). */
  saveConfig(cfg: ObkConfigData): void;
  loadRetained(): ObkRetainedData;
  saveRetained(data: ObkRetainedData): void;
}

/** The module's GPIOs as the firmware drives and reads them. The plug hardware implements it. */
export interface ObkGpio {
  /** Drive a pin as an output. */
  write(pin: number, high: boolean): void;
  /** Read a pin configured as input (with the firmware's pull-up: an open input reads high). */
  read(pin: number): boolean;
  /**
   * Falling edges seen on a pin since the last call (the BL0937 interrupt counters). The hardware
   * answers from whatever is wired to that pin (the BL0937's CF/CF1 on P7/P6 on a CB2S plug), so a
   * template that maps the roles elsewhere counts nothing.
   */
  takeFallingEdges(pin: number): number;
  /** Every pin released to input (reset, power loss). */
  releaseAll(): void;
}

/** Energy readings of the firmware's metering driver (float32 values, as the firmware holds them). */
export interface ObkEnergyReadings {
  voltage: number;
  current: number;
  power: number;
  apparent: number;
  reactive: number;
  factor: number;
  energyTotalWh: number;
  energyTodayWh: number;
  /** False before the first driver update (STATUS 8 then prints zeros, Factor 0). */
  valid: boolean;
}

/** Result codes of OpenBeken commands (CMD_RES_*), also used by the calibration commands. */
export type ObkCommandResult = 'ok' | 'not-enough-arguments' | 'bad-argument' | 'error' | 'unknown';

/**
 * OpenBeken's BL0937 driver (drv_bl0937.c + drv_pwrCal.c + drv_bl_shared.c), run by the firmware
 * core on its 1 s timer. Implemented in sim/plug/bl0937/.
 */
export interface ObkEnergyDriver {
  /** Called from the firmware's 1 s timer (Main_OnEverySecond → DRV_OnEverySecond). */
  onEverySecond(): void;
  readings(): ObkEnergyReadings;
  /** VoltageSet / CurrentSet / PowerSet with OpenBeken's check order (§5.2); args as typed. */
  calibrate(kind: 'voltage' | 'current' | 'power', args: string): ObkCommandResult;
  /** PowerMax W (200 < W < 7200 else ignored, still ok). */
  powerMax(args: string): ObkCommandResult;
  /** EnergyCntReset [value]. */
  energyCntReset(args: string): ObkCommandResult;
  /** The firmware is going down: called before a restart saves (config + energy). */
  stop(): void;
}

export interface ObkEnergyDriverOptions {
  clock: Clock;
  gpio: ObkGpio;
  /** Pins by role, from the applied template: CF (BL0937CF), CF1 (BL0937CF1), SEL (BL0937SEL or SEL_n). */
  pins: { cf: number; cf1: number; sel: number; selInverted: boolean };
  /** The config (cal values are read and written here; the firmware persists it). */
  config: ObkConfigData;
  /** Mark the config dirty (saved within ~1 s by the firmware). */
  configChanged(): void;
  retained: ObkRetainedData;
  /** Ask the firmware to persist the retained data now (energy checkpoints). */
  saveRetained(): void;
  /** The relay state(s) for flag 38. */
  relaysOpen(): boolean;
  flag(n: number): boolean;
  log(level: 'Info' | 'Error' | 'Debug', module: string, message: string): void;
}

/** Wi-Fi around the plug: the station network of the virtual jig (or none). */
export interface ObkWifiEnvironment {
  /**
   * Try to join `ssid` with `pass`. Resolves with the leased IP (and the HTTP endpoint the virtual
   * network maps it to) after the modelled association + DHCP delay, or rejects (wrong password,
   * no such network, a "Wi-Fi never joins" defect).
   */
  join(mac: Uint8Array, ssid: string, pass: string, signal: AbortSignal): Promise<{ ip: string }>;
  /** The plug opened its own AP (first boot, safe mode). */
  openAccessPoint(mac: Uint8Array, ssid: string): void;
  /** The plug left the network (reboot, power loss). */
  leave(mac: Uint8Array): void;
}
