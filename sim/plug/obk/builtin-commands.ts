import type { CommandCall, CommandRegistry, CommandResult } from './command-registry.ts';
import type { ObkEnergyDriver } from './contracts.ts';
import type { ObkFirmwareHost } from './firmware-host.ts';
import { setFlag } from './obk-config.ts';
import { parsePinRoleName, PLATFORM_GPIO_MAX } from './pin-roles.ts';
import { CHANNEL_MAX } from './channels.ts';
import { argInteger, atoi, tokenize } from './tokenizer.ts';

/**
 * The OpenBeken commands the virtual plug implements, with OpenBeken's argument handling and result
 * codes (openbeken-http.md §1.2-§1.3, reqs 13, 22-26). Registered in the two groups the firmware
 * registers them in; in safe mode neither group runs (req 37), so POWER and restart are unknown there.
 */

/** Runs a backlog that contains delays: the firmware's script VM (asynchronous, returns OK at once). */
export type ScriptRunner = (lines: string[]) => void;

const BACKLOG_ASYNC = /delay_ms|delay_s|waitfor/i;

export function registerCoreCommands(reg: CommandRegistry, host: ObkFirmwareHost): void {
  const channel = (ch: number): number => host.channels.get(ch);
  const int = (s: string | undefined): number => argInteger(s, channel);

  // CMD_Init_Early (cmd_main.c, cmd_channels.c)
  const restart = ({ args }: CommandCall): CommandResult => {
    const seconds = args === '' ? 3 : atoi(args);
    host.log.write('Info', 'CMD', `CMD_Restart: will reboot in ${seconds}`);
    host.scheduleRestart(seconds);
    return 'ok';
  };
  reg.register('restart', restart);
  reg.register('reboot', restart);
  reg.register('Flags', ({ args }) => {
    if (args === '') return 'not-enough-arguments';
    const m = /^\s*([+-]?\d+)/.exec(args);
    if (!m) return 'bad-argument';
    // strtoull: a 64-bit word (negative text wraps); bits 0..31 and 32..63.
    const word = BigInt.asUintN(64, BigInt(m[1]!));
    host.config.genericFlags = Number(word & 0xffffffffn);
    host.config.genericFlags2 = Number(word >> 32n);
    host.configChanged();
    host.log.write('Info', 'CMD', 'New flags set!');
    return 'ok';
  });
  reg.register('SetFlag', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 2) return 'not-enough-arguments';
    if (setFlag(host.config, int(a[0]), int(a[1]) !== 0)) host.configChanged();
    return 'ok';
  });
  reg.register('StartupCommand', ({ args }) => {
    const a = tokenize(args, { allowQuotes: true });
    if (a.length < 1) {
      host.log.write('Info', 'CMD', `Cmd is ${host.config.initCommandLine}`);
      return 'not-enough-arguments';
    }
    const text = a[0]!.slice(0, 1567);
    if (host.config.initCommandLine !== text) {
      host.config.initCommandLine = text;
      host.configChanged();
    }
    if (a.length > 1 && int(a[1]) === 1) host.execute(text, 'script');
    return 'ok';
  });
  reg.register('SafeMode', ({ args }) => {
    const a = tokenize(args);
    let seconds = a.length ? int(a[0]) : 1;
    host.forceSafeModeOnNextBoot();
    if (seconds <= 0) seconds = 1;
    host.scheduleRestart(seconds);
    return 'ok';
  });
  reg.register('FullBootTime', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 1) return 'not-enough-arguments';
    const v = int(a[0]);
    host.config.bootOkSeconds = v & 0xff;
    host.configChanged();
    host.log.write('Info', 'CMD', `Boot time to ${v}`);
    return 'ok';
  });
  reg.register('SetButtonTimes', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 3) return 'not-enough-arguments';
    host.config.buttonLongTicks = int(a[0]) & 0xff;
    host.config.buttonShortTicks = int(a[1]) & 0xff;
    host.config.buttonRepeatTicks = int(a[2]) & 0xff;
    host.configChanged();
    return 'ok';
  });
  reg.register('SetChannel', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 2) return 'not-enough-arguments';
    host.channels.set(int(a[0]), int(a[1]));
    return 'ok';
  });
  reg.register('AddChannel', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 2) return 'not-enough-arguments';
    const ch = int(a[0]);
    const delta = int(a[1]);
    if (a.length >= 4) host.channels.addClamped(ch, delta, int(a[2]), int(a[3]), a.length > 4 && int(a[4]) !== 0);
    else host.channels.add(ch, delta);
    return 'ok';
  });
  reg.register('ToggleChannel', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 1) return 'not-enough-arguments';
    host.channels.toggle(int(a[0]));
    return 'ok';
  });
  reg.register('GetChannel', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 1) return 'not-enough-arguments';
    const ch = int(a[0]);
    host.log.write('Info', 'CMD', `Channel ${ch} is ${host.channels.get(ch)}`);
    return 'ok';
  });
  reg.register('SetPinRole', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 2) return 'not-enough-arguments';
    const pin = /^[+-]?\d+$/.test(a[0]!) || a[0]!.startsWith('$') ? int(a[0]) : -1;
    if (pin < 0 || pin >= PLATFORM_GPIO_MAX) {
      host.log.write('Info', 'CMD', `Unknown pin ${a[0]}`);
      return 'bad-argument';
    }
    const role = parsePinRoleName(a[1]!);
    if (role === undefined) {
      host.log.write('Info', 'CMD', 'Unknown role');
      return 'bad-argument';
    }
    if (host.config.pinRoles[pin] !== role) {
      host.config.pinRoles[pin] = role;
      host.configChanged();
      host.pinsChanged();
    }
    return 'ok';
  });
  reg.register('SetPinChannel', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 2) return 'not-enough-arguments';
    const pin = int(a[0]);
    if (pin < 0 || pin >= 32) return 'ok';
    if (a.length > 2) host.config.pinChannels2[pin] = int(a[2]) & 0xff;
    host.config.pinChannels[pin] = int(a[1]) & 0xff;
    host.configChanged();
    host.pinsChanged();
    return 'ok';
  });
  reg.register('ClearIO', () => {
    host.config.pinRoles.fill(0);
    host.config.pinChannels.fill(0);
    host.config.pinChannels2.fill(0);
    host.config.channelTypes.fill(0);
    host.configChanged();
    host.pinsChanged();
    return 'ok';
  });
  reg.register('startDriver', ({ args }) => {
    const a = tokenize(args);
    if (a.length < 1) return 'not-enough-arguments';
    return host.startDriver(a[0]!);
  });
  reg.register('stopDriver', () => 'ok');
  reg.register('lfs_format', () => 'ok');
  reg.register('echo', ({ args }) => {
    host.log.write('Info', 'CMD', args);
    return 'ok';
  });
}

/** taslike_commands_init (cmd_tasmota.c): POWER, backlog, the Wi-Fi/MQTT setters, stubs. */
export function registerTasmotaCommands(reg: CommandRegistry, host: ObkFirmwareHost, runScript: ScriptRunner): void {
  reg.register('power', ({ cmd, args }) => {
    const ch = host.channels;
    let channel = 0;
    if (cmd.length > 5) {
      channel = atoi(cmd.slice(5));
      if (ch.hasRelayPin(0)) channel = Math.max(0, channel - 1);
    } else {
      for (let i = 0; i < CHANNEL_MAX; i++)
        if (ch.isPowerChannel(i)) {
          channel = i;
          break;
        }
    }
    host.log.write('Info', 'CMD', `tasCmnd POWER (${cmd}) received with args ${args}`);
    const a = args.toLowerCase();
    if (args === '' || a === 'status') return 'ok';
    if (a === 'toggle') ch.toggle(channel);
    else ch.set(channel, parsePowerArgument(args));
    return 'ok';
  });
  reg.register('powerAll', ({ args }) => {
    const v = parsePowerArgument(args);
    for (let i = 0; i < CHANNEL_MAX; i++) host.channels.set(i, v);
    return 'ok';
  });
  reg.register('backlog', ({ args, source }) => {
    if (BACKLOG_ASYNC.test(args)) {
      runScript(args.split(';'));
      return 'ok';
    }
    let result: CommandResult = 'ok';
    for (const sub of args.split(';')) {
      const r = host.execute(sub.slice(0, 127), source);
      if (r !== 'ok' && r !== 'empty') result = r;
    }
    return result;
  });
  const setter = (apply: (value: string) => void) => ({ args }: CommandCall): CommandResult => {
    const a = tokenize(args, { allowQuotes: true });
    if (a.length < 1) return 'not-enough-arguments';
    apply(a[0]!);
    host.configChanged();
    return 'ok';
  };
  reg.register('SSID1', setter((v) => (host.config.wifiSsid = v.slice(0, 63))));
  reg.register('Password1', setter((v) => (host.config.wifiPass = v.slice(0, 63))));
  reg.register('MqttHost', setter((v) => (host.config.mqttHost = v.slice(0, 255))));
  reg.register('MqttUser', setter((v) => (host.config.mqttUser = v.slice(0, 63))));
  reg.register('MqttPassword', setter((v) => (host.config.mqttPass = v.slice(0, 127))));
  reg.register('MqttClient', setter((v) => (host.config.mqttClientId = v.slice(0, 63))));
  for (const stub of ['State', 'Sensor', 'Status', 'Result']) reg.register(stub, () => 'ok');
}

/** The energy commands BL_Shared_Init registers when the metering driver starts. */
export function registerEnergyCommands(reg: CommandRegistry, driver: ObkEnergyDriver): void {
  reg.register('VoltageSet', ({ args }) => driver.calibrate('voltage', args));
  reg.register('CurrentSet', ({ args }) => driver.calibrate('current', args));
  reg.register('PowerSet', ({ args }) => driver.calibrate('power', args));
  reg.register('PowerMax', ({ args }) => driver.powerMax(args));
  reg.register('EnergyCntReset', ({ args }) => driver.energyCntReset(args));
}

/** parsePowerArgument: ON / OFF (case-insensitive), otherwise atoi (so "2" stores 2, "ON\n" is 0). */
export function parsePowerArgument(s: string): number {
  const l = s.toLowerCase();
  if (l === 'on') return 1;
  if (l === 'off') return 0;
  return atoi(s);
}
