/**
 * Offline provisioning, the factory fast path: in the same ROM session as the flash, write the
 * OpenBeken config sector at 0x1D1000 so the plug's first boot is already provisioned (template,
 * flags, startup command, Wi-Fi, names). The RF/MAC sector at 0x1D0000 right beside it is never
 * written: the flasher refuses it, and its CRC is compared before and after.
 */
import { crc32Raw } from '../bk7231/protocol/crc32.ts';
import { DutError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { BK7231N_PARTITIONS } from '../../firmware/flash-layout.ts';
import { buildObkConfigSector, obkDefaultNames, OBK_CONFIG_ADDRESS, OBK_CONFIG_SECTOR_SIZE } from '../obk/config-sector.ts';
import { effectiveFlags, templatePinArrays, type DeviceTemplate } from './device-template.ts';

/** What offline provisioning needs from a connected ROM session (Bk7231Flasher provides it). */
export interface RomFlashSession {
  readonly info: { mac: string | null } | null;
  write(image: Uint8Array, offset: number, opts?: { diff?: boolean }): Promise<{ crc: number; sectorsWritten: number; sectorsUnchanged: number }>;
  /** Raw chip CRC (no final xor) of start..start+length-1. */
  crc(start: number, length: number): Promise<number>;
}

export interface OfflineProvisionInput {
  session: RomFlashSession;
  template: DeviceTemplate;
  wifi?: { ssid: string; pass: string };
  webPassword?: string;
  log?: Logger;
  slot?: number;
}

export interface OfflineProvisionResult {
  address: number;
  mac: string;
  shortName: string;
  longName: string;
  /** Raw CRC-32 of the 4 KiB sector as the chip reports it. */
  crc: number;
  sectorsWritten: number;
  wifi: 'station' | 'none (AP on first boot)';
  template: string;
}

export async function provisionOffline(i: OfflineProvisionInput): Promise<OfflineProvisionResult> {
  const ctx = { ...(i.slot !== undefined ? { slot: i.slot } : {}), step: 'provision-offline' };
  const mac = i.session.info?.mac;
  if (!mac) throw new DutError('cannot provision offline: the RF sector holds no MAC (OpenBeken would fall back to C8:47:8C:00:00:00)', ctx);
  if (i.template.chip !== 'BK7231N') throw new DutError(`template ${i.template.label} is for ${i.template.chip}, this rig provisions BK7231N`, ctx);
  const { roles, channels, channels2 } = templatePinArrays(i.template);
  const sector = buildObkConfigSector({
    mac,
    pins: { roles, channels, channels2 },
    flags: effectiveFlags(i.template),
    startupCommand: i.template.command,
    ...(i.wifi ? { wifi: i.wifi } : {}),
    ...(i.webPassword !== undefined ? { webPassword: i.webPassword } : {}),
  });
  const rf = BK7231N_PARTITIONS.rf;
  const rfBefore = await i.session.crc(rf.start, rf.end - rf.start);
  const w = await i.session.write(sector, OBK_CONFIG_ADDRESS, { diff: true });
  const chip = await i.session.crc(OBK_CONFIG_ADDRESS, OBK_CONFIG_SECTOR_SIZE);
  if (chip !== crc32Raw(sector)) {
    throw new DutError(`config sector at 0x${OBK_CONFIG_ADDRESS.toString(16)} reads back with CRC 0x${chip.toString(16)}, wrote 0x${crc32Raw(sector).toString(16)}`, { ...ctx, address: OBK_CONFIG_ADDRESS });
  }
  const rfAfter = await i.session.crc(rf.start, rf.end - rf.start);
  if (rfAfter !== rfBefore) throw new DutError(`the RF/MAC sector changed while writing the config (CRC 0x${rfBefore.toString(16)} -> 0x${rfAfter.toString(16)})`, { ...ctx, address: rf.start });
  const names = obkDefaultNames(mac);
  i.log?.info({ address: OBK_CONFIG_ADDRESS, template: i.template.label, wifi: i.wifi ? 'station' : 'none', crc: chip }, 'OpenBeken config written');
  return {
    address: OBK_CONFIG_ADDRESS,
    mac,
    ...names,
    crc: chip,
    sectorsWritten: w.sectorsWritten,
    wifi: i.wifi ? 'station' : 'none (AP on first boot)',
    template: i.template.label,
  };
}
