import { CHANNEL_MAX } from './channels.ts';
import type { ObkFirmwareHost } from './firmware-host.ts';
import { ReplyWriter } from './http-wire.ts';
import { npfInt32 } from './nanoprintf.ts';
import {
  writePower,
  writeStatusFull,
  writeStatusFwr,
  writeStatusMem,
  writeStatusMqt,
  writeStatusNet,
  writeStatusSns,
  writeStatusSts,
  writeStatusTim,
} from './status-json.ts';
import { atoi, skipToNextWord } from './tokenizer.ts';

/**
 * JSON_ProcessCommandReply: the body /cm and the "res" of POST /api/cmnd print after a command ran.
 * It is chosen from the WHOLE command string by case-insensitive prefix, in OpenBeken's order
 * (openbeken-http.md §1.2, req 12): so `PowerSet 60` answers {"POWER":...} and a failed calibration
 * looks like a success. The LED-driver branches (CT, Dimmer, Color) answer as POWER here because no
 * LED driver runs on a plug; `Dp` answers the empty TuyaMCU dpID list.
 */
export function tasmotaReply(host: ObkFirmwareHost, command: string): string {
  const w = new ReplyWriter();
  const arg = skipToNextWord(command);
  const is = (prefix: string): boolean => command.slice(0, prefix.length).toLowerCase() === prefix.toLowerCase();
  const obj = (body: () => void): void => {
    w.printf('{');
    body();
    w.printf('}');
  };
  const fixed = (key: string, value: string): void => obj(() => w.printf(`"${key}":"${value}"`));
  // STATUS arguments compare with stricmp on the rest of the line: "8 " is not "8".
  const argIs = (s: string): boolean => arg.toLowerCase() === s;

  if (is('POWER')) obj(() => writePower(w, host));
  else if (is('SensorRetain')) fixed('SensorRetain', 'OFF');
  else if (is('Prefix1')) fixed('Prefix1', 'cmnd');
  else if (is('Prefix2')) fixed('Prefix2', 'stat');
  else if (is('Prefix3')) fixed('Prefix3', 'tele');
  else if (is('StateText1')) fixed('StateText1', 'OFF');
  else if (is('StateText2')) fixed('StateText2', 'ON');
  else if (is('StateText3')) fixed('StateText3', 'TOGGLE');
  else if (is('StateText4')) fixed('StateText4', 'HOLD');
  else if (is('FullTopic')) fixed('FullTopic', '%%prefix%%/%%topic%%');
  else if (is('SwitchTopic')) fixed('SwitchTopic', '0');
  else if (is('ButtonTopic')) fixed('ButtonTopic', '0');
  else if (is('MqttRetry')) fixed('MqttRetry', '1');
  else if (is('TelePeriod')) fixed('TelePeriod', '300');
  else if (is('CT') || is('Dimmer') || is('Color') || is('HsbColor')) obj(() => writePower(w, host));
  else if (is('STATE')) writeStatusSts(w, host, false);
  else if (is('SENSOR')) writeStatusSns(w, host, false);
  else if (is('STATUS')) {
    if (argIs('8') || argIs('10')) obj(() => writeStatusSns(w, host, true));
    else if (argIs('6')) obj(() => writeStatusMqt(w, host));
    else if (argIs('7')) obj(() => writeStatusTim(w));
    else if (argIs('5')) obj(() => writeStatusNet(w, host));
    else if (argIs('4')) obj(() => writeStatusMem(w));
    else if (argIs('11')) obj(() => writeStatusSts(w, host, true));
    else if (argIs('2')) obj(() => writeStatusFwr(w, host));
    else writeStatusFull(w, host);
  } else if (is('SetChannelType')) w.printf(npfInt32(host.config.channelTypes[atoi(arg)] ?? 0));
  else if (is('GetChannel') || is('SetChannel') || is('AddChannel')) w.printf(npfInt32(host.channels.get(atoi(arg))));
  else if (is('MQTTClient')) fixed('MQTTClient', host.config.mqttClientId);
  else if (is('MQTTHost')) fixed('MQTTHost', host.config.mqttHost);
  else if (is('MQTTUser')) fixed('MQTTUser', host.config.mqttUser);
  else if (is('MqttPassword')) fixed('MqttPassword', '****');
  else if (is('SSID1')) fixed('SSID1', host.config.wifiSsid);
  else if (is('LED_Map')) obj(() => w.printf('"Map":[0,1,2,3,4]'));
  else if (is('Flags')) obj(() => w.printf(`"Flags":"${npfInt32(host.config.genericFlags)}"`));
  else if (is('Ch')) {
    const include = command.length > 2 ? atoi(command.slice(2)) : -1;
    w.printf('{');
    let n = 0;
    for (let i = 0; i < CHANNEL_MAX; i++) {
      if (!host.channels.isInUse(i) && i !== include) continue;
      if (n++) w.printf(',');
      w.printf(`"Ch${i}":${host.channels.get(i)}`);
    }
    w.printf('}');
  } else if (is('Dp')) w.printf('[]');
  else obj(() => {});
  return w.text();
}
