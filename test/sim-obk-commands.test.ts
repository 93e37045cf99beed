import t, { type Test } from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import type { ObkFirmware } from '../sim/plug/obk/firmware.ts';
import { tokenize } from '../sim/plug/obk/tokenizer.ts';
import { createTestPlug, type TestPlug } from '../sim/plug/obk/testing/rmc021.ts';

/** The body of a reply (after the blank line) and its status code. */
function split(reply: string | undefined): { status: number; body: string } {
  if (reply === undefined) throw new Error('no reply');
  const m = /^HTTP\/1\.1 (-?\d+) /.exec(reply);
  return { status: Number(m?.[1]), body: reply.slice(reply.indexOf('\r\n\r\n') + 4) };
}
export function cm(fw: ObkFirmware, command: string): string {
  return split(fw.handleHttp(`GET /cm?cmnd=${encodeURIComponent(command)} HTTP/1.1\r\n\r\n`)).body;
}
export function apiCmnd(fw: ObkFirmware, body: string): { status: number; body: string } {
  return split(fw.handleHttp(`POST /api/cmnd HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
}

async function booted(t: Test, opts: Parameters<typeof createTestPlug>[1] = {}): Promise<TestPlug & { clock: VirtualClock }> {
  const clock = new VirtualClock();
  const plug = createTestPlug(clock, opts);
  await plug.fw.boot();
  t.teardown(() => plug.fw.halt());
  return { ...plug, clock };
}

t.test('req 12: reply chosen by case-insensitive prefix of the whole command string', async (t) => {
  const { fw, drivers } = await booted(t);
  drivers[0]!.calibrateResult = 'error';
  t.equal(cm(fw, 'PowerSet 60'), '{"POWER":"OFF"}', 'PowerSet answers as POWER (and hides the failure)');
  t.equal(cm(fw, 'PowerMax 3000'), '{"POWER":"OFF"}');
  t.equal(cm(fw, 'powerAll 0'), '{"POWER":"OFF"}');
  t.equal(cm(fw, 'pOwEr'), '{"POWER":"OFF"}');
  for (const c of ['VoltageSet 230', 'CurrentSet 0.26', 'backlog POWER OFF', 'restart 0', 'StartupCommand "x"', 'Password1 p', 'foobar']) {
    t.equal(cm(fw, c), '{}', c);
  }
  t.equal(cm(fw, 'SetChannel 7 42'), '42', 'SetChannel prints the bare value of channel atoi(args)');
  t.equal(cm(fw, 'GetChannel 7'), '42', 'GetChannel n is a bare integer');
  t.equal(cm(fw, 'SSID1'), '{"SSID1":"rig-net"}');
  t.equal(cm(fw, 'MqttPassword x'), '{"MqttPassword":"****"}');
  t.equal(cm(fw, 'Flags'), '{"Flags":"1024"}');
  t.equal(cm(fw, 'Ch'), '{"Ch0":0,"Ch1":0}', 'channels in use: Btn uses channel and channel2 (0)');
  t.equal(cm(fw, 'TelePeriod'), '{"TelePeriod":"300"}');
  t.equal(cm(fw, 'FullTopic'), '{"FullTopic":"%%prefix%%/%%topic%%"}');
});

t.test('req 13: POWER semantics (ON/OFF any case, TOGGLE, STATUS, atoi, POWERn, POWER0)', async (t) => {
  const { fw, gpio } = await booted(t);
  t.equal(cm(fw, 'POWER on'), '{"POWER":"ON"}');
  t.equal(gpio.outputs.get(26), true, 'relay pin P26 high');
  t.equal(cm(fw, 'POWER STATUS'), '{"POWER":"ON"}');
  t.equal(cm(fw, 'POWER TOGGLE'), '{"POWER":"OFF"}');
  t.equal(gpio.outputs.get(26), false);
  t.equal(cm(fw, 'POWER1 1'), '{"POWER":"ON"}', 'POWER1 addresses channel 1, key stays POWER');
  t.equal(cm(fw, 'POWER 0'), '{"POWER":"OFF"}');
  t.equal(cm(fw, 'POWER 2'), '{"POWER":"ON"}', '2 is stored as is: relay on');
  t.equal(fw.channels.get(1), 2);
  t.equal(cm(fw, 'POWER TOGGLE'), '{"POWER":"OFF"}', 'a toggle of 2 goes to 0');
  t.equal(cm(fw, 'POWER0 ON'), '{"POWER":"OFF"}', 'POWER0 acts on channel 0: no effect on the relay');
  t.equal(fw.channels.get(0), 1);
  t.equal(cm(fw, 'POWER xyz'), '{"POWER":"OFF"}', 'atoi("xyz") = 0');
  t.same(apiCmnd(fw, 'POWER ON\n'), { status: 200, body: '{"success":200, "msg":"OK", "res":{"POWER":"OFF"}}' }, 'untrimmed ON\\n is atoi 0');
});

t.test('req 14: STATUS argument by exact string equality', async (t) => {
  const { fw } = await booted(t);
  const full = cm(fw, 'STATUS');
  t.ok(full.startsWith('{"Status":{"Module":0,'));
  for (const a of ['0', '1', '3', '8 ', ' 8x', '9', '12']) t.equal(cm(fw, `STATUS ${a}`), full, `STATUS "${a}" is the full object`);
  t.ok(cm(fw, 'STATUS 8').startsWith('{"StatusSNS":{'));
  t.equal(cm(fw, 'STATUS 10'), cm(fw, 'STATUS 8'));
  t.ok(cm(fw, 'status 2').startsWith('{"StatusFWR":{'));
  t.ok(cm(fw, 'STATUS 4').startsWith('{"StatusMEM":{'));
  t.ok(cm(fw, 'STATUS 5').startsWith('{"StatusNET":{'));
  t.ok(cm(fw, 'STATUS 6').startsWith('{"StatusMQT":{'));
  t.ok(cm(fw, 'STATUS 7').startsWith('{"StatusTIM":{'));
  t.ok(cm(fw, 'STATUS 11').startsWith('{"StatusSTS":{'));
  t.ok(cm(fw, 'STATE').startsWith('{"Time":"0000-00-00T00:00:00","Uptime":'), 'STATE is STS without the wrapper');
  t.ok(cm(fw, 'SENSOR').startsWith('{"Time":"0000-00-00T00:00:00","ENERGY":'), 'SENSOR is SNS without the wrapper');
});

t.test('req 15, 16: exact JSON bodies, spacing, placeholders, unsynced time', async (t) => {
  const { fw, drivers, clock } = await booted(t);
  await clock.sleepUntil(2300);
  drivers[0]!.current = {
    voltage: 229.96, current: 0.2661, power: 60, apparent: 61.2, reactive: 12.2, factor: 0.98, energyTotalWh: 1234.5, energyTodayWh: 1, valid: true,
  };
  t.equal(
    cm(fw, 'STATUS 8'),
    '{"StatusSNS":{"Time":"0000-00-00T00:00:00","ENERGY":{"Power": 60.000000,"ApparentPower": 61.200000,' +
      '"ReactivePower": 12.199999,"Factor":0.980000,"Voltage":229.960006,"Current":0.266099,"Frequency":0.000000,' +
      '"ConsumptionTotal":1234.500000,"Yesterday": 0.000000,"ConsumptionLastHour":0.000000},' +
      '"ESP32":{"Temperature": 41.2},"TempUnit":"C"}}',
  );
  t.equal(
    cm(fw, 'STATUS 2'),
    '{"StatusFWR":{"Version":"OpenBK7231N_1.18.299","BuildDateTime":"Jul 24 2026 10:30:00","Boot":7,"Core":"0.0","SDK":"obk","CpuFrequency":80,"Hardware":"BK7231N","CR":"465/699"}}',
  );
  t.equal(
    cm(fw, 'STATUS 7'),
    '{"StatusTIM":{"UTC":"0000-00-00T00:00:00","Local":"0000-00-00T00:00:00","StartDST":"2022-03-27T02:00:00","EndDST":"2022-10-30T03:00:00","Timezone":"+00:00","Sunrise":"07:50","Sunset":"17:17"}}',
  );
  t.equal(
    cm(fw, 'STATUS 4'),
    '{"StatusMEM":{"ProgramSize":616,"Free":384,"Heap":25,"ProgramFlashSize":1024,"FlashSize":2048,"FlashChipId":"1540A1","FlashFrequency":40,"FlashMode":3,' +
      '"Features":["00000809","8FDAC787","04368001","000000CF","010013C0","C000F981","00004004","00001000","00000020"],' +
      '"Drivers":"1,2,3,4,5,6,7,8,9,10,12,16,18,19,20,21,22,24,26,27,29,30,35,37,45","Sensors":"1,2,3,4,5,6"}}',
  );
  t.equal(
    cm(fw, 'STATUS 6'),
    '{"StatusMQT":{"MqttHost":"","MqttPort":1883,"MqttClientMask":"core","MqttClient":"obk8C1A2B3C","MqttUser":"homeassistant","MqttCount":23,"MAX_PACKET_SIZE":1200,"KEEPALIVE":30,"SOCKET_TIMEOUT":4}}',
  );
  const sts = cm(fw, 'STATUS 11');
  t.match(sts, /^\{"StatusSTS":\{"Time":"0000-00-00T00:00:00","Uptime":"0T00:00:02","UptimeSec":2,"Heap":\d+,"SleepMode":"None","Sleep":0,"LoadAvg":99,"MqttCount":23,"POWER":"OFF","Wifi":\{"AP":1,"SSId":"rig-net","BSSId":"30:B5:C2:5D:70:72","Channel":12,"Mode":"11n","RSSI":200,"Signal":0,"LinkCount":21,"Downtime":"0T06:13:34"\}\}\}$/);
  const full = cm(fw, 'STATUS');
  t.match(full, '"StatusPRM":{"Baudrate":115200,"SerialConfig":"8N1","GroupTopic":"","OtaUrl":"https://github.com/openshwprojects/OpenBK7231T_App/releases/latest","RestartReason":"HardwareWatchdog","Uptime":2,"StartupUTC":"0000-00-00T00:00:00","Sleep":50,"CfgHolder":4617,"BootCount":22,"BCResetTime":"2022-01-27T16:10:56","SaveCount":1235,"SaveAddress":"F9000"}');
  t.match(full, '"Status":{"Module":0,"DeviceName":"obk8C1A2B3C","FriendlyName":["obk8C1A2B3C_1"],"Topic":"obk8C1A2B3C","ButtonTopic":"0","Power":0,');
  cm(fw, 'POWER ON');
  t.match(cm(fw, 'STATUS'), '"Power":1,"PowerOnState":3', 'Power is the relay bitmask');
  t.doesNotThrow(() => JSON.parse(full), 'the full object is valid JSON');
  const order = [...full.matchAll(/"(Status[A-Z]*)":\{/g)].map((m) => m[1]);
  t.same(order, ['Status', 'StatusPRM', 'StatusFWR', 'StatusLOG', 'StatusMEM', 'StatusNET', 'StatusMQT', 'StatusTIM', 'StatusSNS', 'StatusSTS']);
});

t.test('tokenizer: quotes only at word starts, whitespace runs, the first-char quote', async (t) => {
  t.same(tokenize('startDriver NTP'), ['startDriver', 'NTP']);
  t.same(tokenize('"startDriver NTP" 1', { allowQuotes: true }), ['startDriver NTP', '1']);
  t.same(tokenize('  a   b\tc '), ['a', 'b', 'c']);
  t.same(tokenize('x "a b"', { allowQuotes: false }), ['x', '"a', 'b"']);
  t.same(tokenize('x "a b" y', { allowQuotes: true }), ['x', 'a b', 'y']);
  t.same(tokenize('"unterminated', { allowQuotes: true }), ['unterminated']);
  t.same(tokenize(''), []);
});
