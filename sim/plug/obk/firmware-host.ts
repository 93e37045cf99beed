import type { Clock } from '../../../rig/core/clock.ts';
import type { ObkChannels } from './channels.ts';
import type { CommandResult, CommandSource } from './command-registry.ts';
import type { ObkConfigData, ObkEnergyDriver } from './contracts.ts';
import type { ObkLog } from './obk-log.ts';

/** Version and build stamp the firmware reports (STATUS 2, /api/info build). */
export interface ObkBuildInfo {
  /** USER_SW_VER, e.g. "1.18.299". */
  version: string;
  /** __DATE__ ("Jul 24 2026"; single-digit days have two spaces: "Dec  1 2026"). */
  date: string;
  /** __TIME__ ("10:30:00"). */
  time: string;
}

export const DEFAULT_BUILD: Readonly<ObkBuildInfo> = Object.freeze({
  version: '1.18.299',
  date: 'Jul 24 2026',
  time: '10:30:00',
});

/** What the firmware's network interface reports (HAL_GetMyIPString, g_wifi_bssid, ...). */
export interface ObkNetworkStatus {
  /** STA IP once joined, 192.168.4.1 in AP mode, 0.0.0.0 otherwise. */
  ip: string;
  apMode: boolean;
  connected: boolean;
  /** The BSSID of the joined AP; "30:B5:C2:5D:70:72" until the first STA connect. */
  bssid: string;
  channel: number;
  rssiDbm: number;
}

/**
 * What the command layer, the Tasmota replies and the HTTP handlers need from the running firmware.
 * ObkFirmware implements it; tests of single layers may implement it themselves.
 */
export interface ObkFirmwareHost {
  readonly clock: Clock;
  readonly config: ObkConfigData;
  /** A config setter ran: the 1 s timer saves it (g_cfg_pendingChanges). */
  configChanged(): void;
  readonly channels: ObkChannels;
  readonly log: ObkLog;
  readonly safeMode: boolean;
  readonly build: ObkBuildInfo;
  /** The STA MAC (from the RF sector). */
  readonly mac: Uint8Array;
  /** g_secondsElapsed. */
  uptimeSeconds(): number;
  network(): ObkNetworkStatus;
  /** The metering driver while it runs (DRV_IsMeasuringPower), else undefined. */
  energyDriver(): ObkEnergyDriver | undefined;
  /** Chip temperature in °C as the firmware last computed it. */
  chipTemperature(): number;
  /** PowerSave state (STATUS 11 SleepMode). */
  powerSave(): boolean;
  /** RESET_ScheduleModuleReset(seconds); 0 cancels (never reboots). */
  scheduleRestart(seconds: number): void;
  /** Pin roles or channels changed: re-apply outputs, buttons and drivers. */
  pinsChanged(): void;
  /** startDriver <name>. */
  startDriver(name: string): CommandResult;
  /** CMD_ExecuteCommand. */
  execute(line: string, source: CommandSource): CommandResult;
  /** SafeMode: push the boot counter past the safe-mode threshold (boot_count += 5). */
  forceSafeModeOnNextBoot(): void;
}
