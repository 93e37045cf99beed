/**
 * Provisioning over HTTP, for plugs already running OpenBeken (re-provisioning on the nightly rig):
 * the command sequence the OpenBeken web app's template import sends (openbeken-bl0937.md §1.4),
 * each through POST /api/cmnd so a refusal is seen; Wi-Fi through /cfg_wifi_set; a restart (which
 * starts the autostarted BL0937 driver and runs the startup command); then /api/pins and /api/info
 * are read back and every difference is reported.
 */
import type { Clock } from '../core/clock.ts';
import { DutError, PlugrigError, TimeoutError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { roleName } from './obk-roles.ts';
import { PIN_COUNT, templatePinArrays, type DeviceTemplate } from './device-template.ts';
import type { ObkHttpClient, ObkInfo } from './obk-http-client.ts';

export interface ImportLine {
  command: string;
  /** The importer's preamble may fail harmlessly (no LittleFS, no driver running): logged, not fatal. */
  mayFail: boolean;
}

/** The web app's import lines for a template, in its order (pins ascending, as a JS object iterates them). */
export function templateImportCommands(t: DeviceTemplate): ImportLine[] {
  const lines: ImportLine[] = [
    { command: 'ClearIO', mayFail: false },
    { command: 'lfs_format', mayFail: true },
    { command: 'StartupCommand ""', mayFail: true },
    { command: 'stopDriver *', mayFail: true },
  ];
  for (const p of t.pins) {
    lines.push({ command: `backlog setPinRole ${p.pin} ${p.role}; setPinChannel ${p.pin} ${p.channel}${p.channel2 !== 0 ? ` ${p.channel2}` : ''}`, mayFail: false });
  }
  // The importer sends the template's text verbatim; the normalised unsigned word is sent instead,
  // because `Flags` reads it with strtoull and a negative (signed low word) would set the high bits.
  if (t.flags !== undefined) lines.push({ command: `Flags ${t.flags}`, mayFail: false });
  if (t.command.length > 0) lines.push({ command: `StartupCommand "${t.command}"`, mayFail: false });
  // The importer ignores the legacy single-flag field; set it explicitly so the template means the same on both paths.
  if (t.flag !== undefined) lines.push({ command: `SetFlag ${t.flag} 1`, mayFail: false });
  return lines;
}

export interface HttpProvisionInput {
  client: ObkHttpClient;
  template: DeviceTemplate;
  wifi?: { ssid: string; pass: string };
  webPassword?: string;
  /** The plug after its restart (its address may change when it joins another network); default: the same client. */
  relocate?: () => Promise<ObkHttpClient>;
  /** MAC read over the ROM, checked against /api/info after the restart. */
  expectMac?: string;
  clock: Clock;
  log?: Logger;
  slot?: number;
  /** Restart + boot + (re)join budget. Default 60 s. */
  rebootTimeoutMs?: number;
}

export interface HttpProvisionResult {
  url: string;
  commands: string[];
  warnings: string[];
  info: ObkInfo;
}

/** The signed low 32 bits as /api/info prints `flags` (%ld of a 32-bit long). */
export function infoFlagsString(flags: bigint): string {
  return String(BigInt.asIntN(32, flags & 0xffffffffn));
}

export async function provisionOverHttp(i: HttpProvisionInput): Promise<HttpProvisionResult> {
  const ctx = { ...(i.slot !== undefined ? { slot: i.slot } : {}), step: 'provision-http' };
  const c = i.client;
  const before = await c.info();
  if (before.chipset !== 'BK7231N') throw new DutError(`plug at ${c.url} reports chipset ${before.chipset}, template ${i.template.label} is for ${i.template.chip}`, ctx);
  const expectMac = (i.expectMac ?? before.mac).toLowerCase();
  const warnings: string[] = [];
  const sent: string[] = [];
  for (const line of templateImportCommands(i.template)) {
    const r = await c.cmnd(line.command, { idempotent: true, allowFailure: line.mayFail });
    sent.push(line.command);
    if (r.code !== 200) {
      warnings.push(`${line.command}: ${r.code} ${r.msg}`);
      i.log?.warn({ command: line.command, code: r.code, msg: r.msg }, 'import preamble command refused (harmless)');
    }
  }
  if (i.wifi) {
    await c.wifiSet({ ...i.wifi, ...(i.webPassword !== undefined ? { webPassword: i.webPassword } : {}) });
    sent.push('/cfg_wifi_set?<redacted>');
  }
  const t0 = i.clock.now();
  await c.restart();
  sent.push('restart');
  // A restart counts down 3 ticks of the 1 s timer; give it that before looking for the new boot.
  await i.clock.sleep(2000);
  // Look for the new boot, locating the plug afresh on every try: a plug that changes networks
  // (AP -> station) answers somewhere else once it has rebooted.
  const timeoutMs = i.rebootTimeoutMs ?? 60_000;
  const deadline = i.clock.now() + timeoutMs;
  const rebooted = (x: ObkInfo): true | string => {
    const elapsedS = (i.clock.now() - t0) / 1000;
    // Not rebooted: its uptime kept counting. After a reboot it is below the time since the restart.
    return x.uptime_s < before.uptime_s + elapsedS - 1.5 ? true : `still up for ${x.uptime_s} s (no reboot yet)`;
  };
  let after = c;
  let info: ObkInfo | undefined;
  while (!info) {
    let why: string;
    try {
      after = i.relocate ? await i.relocate() : c;
      const x = await after.info();
      const verdict = rebooted(x);
      if (verdict === true) info = x;
      why = verdict === true ? '' : verdict;
    } catch (e) {
      if (!(e instanceof PlugrigError)) throw e;
      why = e.message;
    }
    if (info) break;
    if (i.clock.now() >= deadline) throw new TimeoutError(`plug not back after the restart within ${(timeoutMs / 1000).toFixed(1)} s: ${why}`, { ...ctx, plug: after.url });
    await i.clock.sleep(500);
  }

  const pins = await after.pins();
  const want = templatePinArrays(i.template);
  const diffs: string[] = [];
  const describe = (r: number): string => `${roleName(r)} (${r})`;
  for (let p = 0; p < PIN_COUNT; p++) {
    const role = pins.roles[p] ?? 0;
    const ch = pins.channels[p] ?? 0;
    const ch2 = pins.channels2?.[p] ?? 0;
    if (role !== want.roles[p]) diffs.push(`P${p} role: expected ${describe(want.roles[p]!)}, plug has ${describe(role)}`);
    else if (role !== 0 && ch !== want.channels[p]) diffs.push(`P${p} channel: expected ${want.channels[p]}, plug has ${ch}`);
    if (role !== 0 && ch2 !== want.channels2[p]) diffs.push(`P${p} second channel: expected ${want.channels2[p]}, plug has ${ch2}`);
  }
  if (pins.roles.length !== PIN_COUNT) diffs.push(`/api/pins lists ${pins.roles.length} pins, BK7231N has ${PIN_COUNT}`);
  if (i.template.flags !== undefined && info.flags !== infoFlagsString(i.template.flags)) {
    diffs.push(`flags: expected ${infoFlagsString(i.template.flags)}, plug has ${info.flags}`);
  }
  if (i.template.flag !== undefined && ((BigInt(info.flags) >> BigInt(i.template.flag)) & 1n) === 0n && i.template.flag < 32) {
    diffs.push(`flag ${i.template.flag}: expected set, plug has flags ${info.flags}`);
  }
  if (info.startcmd !== i.template.command) diffs.push(`startup command: expected ${JSON.stringify(i.template.command)}, plug has ${JSON.stringify(info.startcmd)}`);
  if (info.mac.toLowerCase() !== expectMac) diffs.push(`MAC: expected ${expectMac}, plug at ${after.url} reports ${info.mac}`);
  if (diffs.length) {
    throw new DutError(`provisioning ${i.template.label} over HTTP did not take on ${after.url}: ${diffs.length} difference(s)\n  ${diffs.join('\n  ')}`, { ...ctx, plug: after.url, differences: diffs });
  }
  i.log?.info({ plug: after.url, template: i.template.label, commands: sent.length }, 'provisioned over HTTP');
  return { url: after.url, commands: sent, warnings, info };
}
