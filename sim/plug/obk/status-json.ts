import { formatMacLower } from './mac.ts';
import { npfFixed } from './nanoprintf.ts';
import type { ObkFirmwareHost } from './firmware-host.ts';
import type { ReplyWriter } from './http-wire.ts';
import { CHANNEL_MAX } from './channels.ts';

/**
 * The Tasmota-shaped STATUS JSON bodies exactly as OpenBeken prints them (openbeken-http.md §1.3,
 * reqs 15-17): key order, the odd spaces (`"Power": `, `"ApparentPower": `, `"ReactivePower": `,
 * `"Yesterday": `, `"Temperature": `), the hard-coded placeholder fields, floats through nanoprintf.
 * Each piece goes through the 255-byte printf buffer as in the firmware.
 */

/** TS2STR of an unsynced clock (TIME_GetCurrentTime() = 0): the NTP driver never synced here. */
export const UNSYNCED_TIME = '0000-00-00T00:00:00';
const OTA_URL = 'https://github.com/openshwprojects/OpenBK7231T_App/releases/latest';

function keyString(w: ReplyWriter, key: string, value: string, comma: boolean): void {
  w.printf(`"${key}":"${value}"`);
  if (comma) w.printf(',');
}
function keyInt(w: ReplyWriter, key: string, value: number, comma: boolean): void {
  w.printf(`"${key}":${value | 0}`);
  if (comma) w.printf(',');
}

/** NaN readings print as 0 (_getReading_NanToZero). */
function f(v: number): string {
  return npfFixed(Number.isNaN(v) ? 0 : v);
}

/** http_tasmota_json_power: POWER (single relay), POWERn (several), "ON" when there is no relay. */
export function writePower(w: ReplyWriter, host: ObkFirmwareHost): void {
  const ch = host.channels;
  const relays: number[] = [];
  for (let i = 0; i < CHANNEL_MAX; i++) if (ch.isPowerChannel(i)) relays.push(i);
  if (relays.length === 0) return keyString(w, 'POWER', 'ON', false);
  if (relays.length === 1) return keyString(w, 'POWER', ch.get(relays[0]!) ? 'ON' : 'OFF', false);
  const fromZero = ch.hasRelayPin(0);
  relays.forEach((i, n) => {
    if (n) w.printf(',');
    keyString(w, `POWER${fromZero ? i + 1 : i}`, ch.get(i) ? 'ON' : 'OFF', false);
  });
}

export function writeEnergy(w: ReplyWriter, host: ObkFirmwareHost): void {
  const driver = host.energyDriver();
  const r = driver?.readings();
  const valid = r?.valid ?? false;
  const v = (x: number | undefined): number => (valid && x !== undefined ? x : 0);
  w.printf('{');
  w.printf(`"Power": ${f(v(r?.power))},`);
  w.printf(`"ApparentPower": ${f(v(r?.apparent))},`);
  w.printf(`"ReactivePower": ${f(v(r?.reactive))},`);
  w.printf(`"Factor":${f(v(r?.factor))},`);
  w.printf(`"Voltage":${f(v(r?.voltage))},`);
  w.printf(`"Current":${f(v(r?.current))},`);
  w.printf(`"Frequency":${f(0)},`); // the BL0937 has no frequency: NaN printed as 0
  // ConsumptionTotal is the running total (saved + since last save), in Wh.
  w.printf(`"ConsumptionTotal":${f(v(r?.energyTotalWh))},`);
  w.printf(`"Yesterday": ${f(0)},`); // no day rollover without synced time
  w.printf(`"ConsumptionLastHour":${f(0)}`); // SetupEnergyStats off
  w.printf('}');
}

/** StatusSNS (STATUS 8 / 10; SENSOR without the header). */
export function writeStatusSns(w: ReplyWriter, host: ObkFirmwareHost, withHeader: boolean): void {
  if (withHeader) w.printf('"StatusSNS":');
  w.printf('{');
  keyString(w, 'Time', UNSYNCED_TIME, false);
  if (host.energyDriver()) {
    w.printf(',');
    w.printf('"ENERGY":');
    writeEnergy(w, host);
  }
  w.printf(',');
  w.printf(`"ESP32":{"Temperature": ${npfFixed(host.chipTemperature(), 1)}},`);
  keyString(w, 'TempUnit', 'C', false);
  w.printf('}');
}

function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor(seconds / 3600) % 24;
  const m = Math.floor(seconds / 60) % 60;
  const s = seconds % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${d}T${two(h)}:${two(m)}:${two(s)}`;
}

/** StatusSTS (STATUS 11; STATE without the header). */
export function writeStatusSts(w: ReplyWriter, host: ObkFirmwareHost, withHeader: boolean): void {
  const net = host.network();
  const up = host.uptimeSeconds();
  if (withHeader) w.printf('"StatusSTS":');
  w.printf('{');
  keyString(w, 'Time', UNSYNCED_TIME, true);
  keyString(w, 'Uptime', formatUptime(up), true);
  keyInt(w, 'UptimeSec', up, true);
  keyInt(w, 'Heap', Math.floor(FREE_HEAP_BYTES / 1024), true);
  if (host.powerSave()) {
    keyString(w, 'SleepMode', 'Dynamic', true);
    keyInt(w, 'Sleep', 10, true);
  } else {
    keyString(w, 'SleepMode', 'None', true);
    keyInt(w, 'Sleep', 0, true);
  }
  keyInt(w, 'LoadAvg', 99, true);
  keyInt(w, 'MqttCount', 23, true);
  writePower(w, host);
  w.printf(',');
  w.printf('"Wifi":{');
  keyInt(w, 'AP', 1, true);
  keyString(w, 'SSId', host.config.wifiSsid, true);
  keyString(w, 'BSSId', net.bssid, true);
  keyInt(w, 'Channel', net.channel, true);
  keyString(w, 'Mode', '11n', true);
  keyInt(w, 'RSSI', (net.rssiDbm + 100) * 2, true);
  keyInt(w, 'Signal', net.rssiDbm, true);
  keyInt(w, 'LinkCount', 21, true);
  keyString(w, 'Downtime', '0T06:13:34', false);
  w.printf('}');
  w.printf('}');
}

/** Free heap the virtual chip reports (xPortGetFreeHeapSize), bytes. */
export const FREE_HEAP_BYTES = 78 * 1024;

export function writeStatusTim(w: ReplyWriter): void {
  w.printf('"StatusTIM":{');
  keyString(w, 'UTC', UNSYNCED_TIME, true);
  keyString(w, 'Local', UNSYNCED_TIME, true);
  keyString(w, 'StartDST', '2022-03-27T02:00:00', true);
  keyString(w, 'EndDST', '2022-10-30T03:00:00', true);
  keyString(w, 'Timezone', '+00:00', true);
  keyString(w, 'Sunrise', '07:50', true);
  keyString(w, 'Sunset', '17:17', false);
  w.printf('}');
}

export function writeStatusFwr(w: ReplyWriter, host: ObkFirmwareHost): void {
  w.printf('"StatusFWR":{');
  keyString(w, 'Version', `OpenBK7231N_${host.build.version}`, true);
  keyString(w, 'BuildDateTime', `${host.build.date} ${host.build.time}`, true);
  keyInt(w, 'Boot', 7, true);
  keyString(w, 'Core', '0.0', true);
  keyString(w, 'SDK', 'obk', true);
  keyInt(w, 'CpuFrequency', 80, true);
  keyString(w, 'Hardware', 'BK7231N', true);
  keyString(w, 'CR', '465/699', false);
  w.printf('}');
}

export function writeStatusMem(w: ReplyWriter): void {
  w.printf('"StatusMEM":{');
  keyInt(w, 'ProgramSize', 616, true);
  keyInt(w, 'Free', 384, true);
  keyInt(w, 'Heap', 25, true);
  keyInt(w, 'ProgramFlashSize', 1024, true);
  keyInt(w, 'FlashSize', 2048, true);
  keyString(w, 'FlashChipId', '1540A1', true);
  keyInt(w, 'FlashFrequency', 40, true);
  keyInt(w, 'FlashMode', 3, true);
  w.printf('"Features":[');
  const features = ['00000809', '8FDAC787', '04368001', '000000CF', '010013C0', 'C000F981', '00004004', '00001000', '00000020'];
  features.forEach((x, i) => w.printf(`"${x}"${i < features.length - 1 ? ',' : ''}`));
  w.printf('],');
  keyString(w, 'Drivers', '1,2,3,4,5,6,7,8,9,10,12,16,18,19,20,21,22,24,26,27,29,30,35,37,45', true);
  keyString(w, 'Sensors', '1,2,3,4,5,6', false);
  w.printf('}');
}

export function writeStatusNet(w: ReplyWriter, host: ObkFirmwareHost): void {
  w.printf('"StatusNET":{');
  keyString(w, 'Hostname', host.config.shortDeviceName, true);
  keyString(w, 'IPAddress', host.network().ip, true);
  keyString(w, 'Gateway', '192.168.0.1', true);
  keyString(w, 'Subnetmask', '255.255.255.0', true);
  keyString(w, 'DNSServer1', '192.168.0.1', true);
  keyString(w, 'DNSServer2', '0.0.0.0', true);
  keyString(w, 'Mac', formatMacLower(host.mac), true);
  keyInt(w, 'Webserver', 2, true);
  keyInt(w, 'HTTP_API', 1, true);
  keyInt(w, 'WifiConfig', 4, true);
  w.printf('"WifiPower":17.0');
  w.printf('}');
}

export function writeStatusMqt(w: ReplyWriter, host: ObkFirmwareHost): void {
  const c = host.config;
  w.printf('"StatusMQT":{');
  keyString(w, 'MqttHost', c.mqttHost, true);
  keyInt(w, 'MqttPort', c.mqttPort, true);
  keyString(w, 'MqttClientMask', 'core', true);
  keyString(w, 'MqttClient', c.mqttClientId, true);
  keyString(w, 'MqttUser', c.mqttUser, true);
  keyInt(w, 'MqttCount', 23, true);
  keyInt(w, 'MAX_PACKET_SIZE', 1200, true);
  keyInt(w, 'KEEPALIVE', 30, true);
  keyInt(w, 'SOCKET_TIMEOUT', 4, false);
  w.printf('}');
}

/** STATUS / STATUS 0 / any other argument: every section in one object. */
export function writeStatusFull(w: ReplyWriter, host: ObkFirmwareHost): void {
  const c = host.config;
  const ch = host.channels;
  const fromZero = ch.hasRelayPin(0);
  let power = 0;
  for (let i = 0; i < CHANNEL_MAX - 1; i++) {
    const idx = fromZero ? i : i + 1;
    if (ch.hasRelayPin(idx) && ch.get(idx)) power |= 1 << i;
  }
  const relayChannels: number[] = [];
  for (let i = 0; i < CHANNEL_MAX; i++) if (ch.hasRelayPin(i)) relayChannels.push(i);
  w.printf('{');
  w.printf('"Status":{"Module":0,');
  keyString(w, 'DeviceName', c.shortDeviceName, true);
  w.printf('"FriendlyName":[');
  if (relayChannels.length === 0) w.printf(`"${c.longDeviceName}"`);
  else
    relayChannels.forEach((i, n) => {
      if (n) w.printf(',');
      w.printf(`"${c.shortDeviceName}_${fromZero ? i + 1 : i}"`);
    });
  w.printf(']');
  w.printf(`,"Topic":"${c.mqttClientId}","ButtonTopic":"0"`);
  w.printf(`,"Power":${power},"PowerOnState":3,"LedState":1`);
  w.printf(',"LedMask":"FFFF","SaveData":1,"SaveState":1');
  w.printf(',"SwitchTopic":"0","SwitchMode":[0,0,0,0,0,0,0,0]');
  w.printf(',"ButtonRetain":0,"SwitchRetain":0,"SensorRetain":0');
  w.printf(',"PowerRetain":0,"InfoRetain":0,"StateRetain":0');
  w.printf('}');
  w.printf(',');
  w.printf('"StatusPRM":{');
  keyInt(w, 'Baudrate', 115200, true);
  keyString(w, 'SerialConfig', '8N1', true);
  keyString(w, 'GroupTopic', '', true); // no device-group name configured
  keyString(w, 'OtaUrl', OTA_URL, true);
  keyString(w, 'RestartReason', 'HardwareWatchdog', true);
  keyInt(w, 'Uptime', host.uptimeSeconds(), true);
  w.printf(`"StartupUTC":"${UNSYNCED_TIME}",`);
  keyInt(w, 'Sleep', 50, true);
  keyInt(w, 'CfgHolder', 4617, true);
  keyInt(w, 'BootCount', 22, true);
  keyString(w, 'BCResetTime', '2022-01-27T16:10:56', true);
  keyInt(w, 'SaveCount', 1235, true);
  keyString(w, 'SaveAddress', 'F9000', false);
  w.printf('}');
  w.printf(',');
  writeStatusFwr(w, host);
  w.printf(',');
  w.printf('"StatusLOG":{');
  w.printf('"SerialLog":2,');
  w.printf('"WebLog":2,');
  w.printf('"MqttLog":0,');
  w.printf('"SysLog":0,');
  w.printf('"LogHost":"",');
  w.printf('"LogPort":514,');
  w.printf(`"SSId1":"${c.wifiSsid}",`);
  w.printf(`"SSId2":"${c.ssid2}",`);
  w.printf('"TelePeriod":300,');
  w.printf('"Resolution":"558180C0",');
  w.printf('"SetOption":[');
  w.printf('"000A8009",');
  w.printf('"2805C80001000600003C5A0A000000000000",');
  w.printf('"00000280",');
  w.printf('"00006008",');
  w.printf('"00004000"');
  w.printf(']');
  w.printf('}');
  w.printf(',');
  writeStatusMem(w);
  w.printf(',');
  writeStatusNet(w, host);
  w.printf(',');
  writeStatusMqt(w, host);
  w.printf(',');
  writeStatusTim(w);
  w.printf(',');
  writeStatusSns(w, host, true);
  w.printf(',');
  writeStatusSts(w, host, true);
  w.printf('}');
}
