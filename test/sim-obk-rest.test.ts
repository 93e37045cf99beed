import t, { type Test } from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import type { ObkFirmware } from '../sim/plug/obk/firmware.ts';
import { PIN_ROLE_NAMES } from '../sim/plug/obk/pin-roles.ts';
import { createTestPlug, type TestPlug } from '../sim/plug/obk/testing/rmc021.ts';

function split(reply: string | undefined): { status: number; body: string } {
  if (reply === undefined) throw new Error('no reply');
  const m = /^HTTP\/1\.1 (-?\d+) /.exec(reply);
  return { status: Number(m?.[1]), body: reply.slice(reply.indexOf('\r\n\r\n') + 4) };
}
const get = (fw: ObkFirmware, path: string) => split(fw.handleHttp(`GET ${path} HTTP/1.1\r\n\r\n`));
const post = (fw: ObkFirmware, path: string, body: string) =>
  split(fw.handleHttp(`POST ${path} HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
const cm = (fw: ObkFirmware, c: string) => get(fw, `/cm?cmnd=${encodeURIComponent(c)}`).body;

async function booted(t: Test, opts: Parameters<typeof createTestPlug>[1] = {}): Promise<TestPlug & { clock: VirtualClock }> {
  const clock = new VirtualClock();
  const plug = createTestPlug(clock, opts);
  await plug.fw.boot();
  t.teardown(() => plug.fw.halt());
  return { ...plug, clock };
}

t.test('req 18: /api/info key set and order, signed flags, mqtthost with :1883', async (t) => {
  const { fw, clock } = await booted(t);
  await clock.sleepUntil(7300); // joined the fake network at ~6.75 s
  t.equal(
    get(fw, '/api/info').body,
    '{"uptime_s":7,"build":"Built on Jul 24 2026 10:30:00 version 1.18.299","ip":"10.0.0.42","mac":"c8:47:8c:1a:2b:3c",' +
      '"flags":"1024","mqtthost":":1883","mqtttopic":"obk8C1A2B3C","chipset":"BK7231N","webapp":"https://openbekeniot.github.io/webapp/",' +
      '"shortName":"obk8C1A2B3C","startcmd":"startDriver NTP","supportsSSDP":0,"supportsClientDeviceDB":true}',
  );
  cm(fw, 'Flags 2147484672'); // flags 10 + 31
  t.match(get(fw, '/api/info').body, '"flags":"-2147482624"');
  t.equal(cm(fw, 'Flags'), '{"Flags":"-2147482624"}');
  t.match(get(fw, '/api/info?x=1').body, 'GET of api/info?x=1', 'the query makes it another sub-path');
});

t.test('req 19: /api/pins (99 rolenames, 29 entries, channels2 only when set) and /api/channels repeated keys', async (t) => {
  const { fw } = await booted(t);
  const pins = JSON.parse(get(fw, '/api/pins').body);
  t.equal(pins.rolenames.length, 99);
  t.equal(pins.rolenames[0], ' ');
  t.equal(pins.rolenames[98], 'BL0939_MISO');
  t.same(pins.rolenames, PIN_ROLE_NAMES);
  t.same(pins.roles, [0, 0, 0, 0, 0, 0, 19, 18, 9, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 1, 0, 0]);
  t.same(pins.channels, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
  t.equal(pins.channels2, undefined);
  t.same(Object.keys(pins), ['rolenames', 'roles', 'channels', 'states']);
  cm(fw, 'POWER ON');
  t.equal(JSON.parse(get(fw, '/api/pins').body).states[26], 1);
  t.equal(get(fw, '/api/channels').body, '{"0":0,"0":0,"0":0,"1":1,"0":0,"1":1}');
  cm(fw, 'SetPinChannel 10 1 3');
  const p2 = JSON.parse(get(fw, '/api/pins').body);
  t.same(p2.channels2, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], 'truncated after the last non-zero entry');
  t.same(Object.keys(p2), ['rolenames', 'roles', 'channels', 'channels2', 'states']);
});

t.test('req 20: POST /api/pins applies at once, deviceFlag 0..10, deviceCommand runs; bad JSON has a raw \\n', async (t) => {
  const { fw, gpio } = await booted(t);
  const roles = new Array(29).fill(0);
  const channels = new Array(29).fill(0);
  roles[20] = 1; // relay moved to P20
  channels[20] = 1;
  const r = post(fw, '/api/pins', JSON.stringify({ roles, channels, deviceFlag: 6, deviceCommand: 'SetChannel 9 5' }));
  t.same(r, { status: 200, body: '{"success":200, "msg":"OK"}' });
  t.equal(fw.config.pinRoles[26], 0);
  t.equal(fw.channels.get(9), 5, 'deviceCommand executed now');
  t.equal(fw.config.initCommandLine, 'SetChannel 9 5');
  t.equal((fw.config.genericFlags >>> 6) & 1, 1, 'flag 6 set');
  cm(fw, 'POWER ON');
  t.equal(gpio.outputs.get(20), true, 'the relay now follows the template on P20');
  t.not(gpio.outputs.get(26), true);
  post(fw, '/api/pins', '{"deviceFlag":11}');
  t.equal((fw.config.genericFlags >>> 11) & 1, 0, 'flag 11 is outside 0..10');
  t.same(post(fw, '/api/pins', '[1,2]'), { status: 400, body: '{"error":400, "msg":"Object expected\n"}' });
  t.same(post(fw, '/api/pins', '{"roles":[1,'), { status: 400, body: '{"error":400, "msg":"Failed to parse JSON: -3\n"}' });
});

t.test('req 21: POST /api/cmnd status = JSON code, exact messages, res as /cm', async (t) => {
  const { fw, drivers } = await booted(t);
  t.same(post(fw, '/api/cmnd', 'POWER ON'), { status: 200, body: '{"success":200, "msg":"OK", "res":{"POWER":"ON"}}' });
  t.same(post(fw, '/api/cmnd', 'foobar'), { status: 501, body: '{"error":501, "msg":"Unknown command", "res":{}}' });
  t.same(post(fw, '/api/cmnd', 'VoltageSet'), { status: 400, body: '{"error":400, "msg":"Not enough arguments for this command", "res":{}}' });
  t.same(post(fw, '/api/cmnd', ''), { status: 400, body: '{"error":400, "msg":"No command entered", "res":{}}' });
  drivers[0]!.calibrateResult = 'error';
  t.same(post(fw, '/api/cmnd', 'PowerSet 60'), { status: 400, body: '{"error":400, "msg":"Command found but returned error", "res":{"POWER":"ON"}}' });
  drivers[0]!.calibrateResult = 'bad-argument';
  t.same(post(fw, '/api/cmnd', 'VoltageSet 0'), { status: 400, body: '{"error":400, "msg":"Bad argument", "res":{}}' });
  t.match(post(fw, '/api/cmnd', 'STATUS 8').body, /^\{"success":200, "msg":"OK", "res":\{"StatusSNS":\{/);
  t.same(drivers[0]!.calls, ['voltage ', 'power 60', 'voltage 0'], 'calibration delegated to the driver with raw args');
});

t.test('req 22: backlog splits on ;, last failure wins, delays make it asynchronous', async (t) => {
  const { fw, clock } = await booted(t);
  t.same(post(fw, '/api/cmnd', 'backlog POWER ON; foobar'), { status: 501, body: '{"error":501, "msg":"Unknown command", "res":{}}' });
  t.equal(fw.channels.get(1), 1, 'POWER ON still ran');
  t.equal(post(fw, '/api/cmnd', 'backlog foobar; SetChannel 3 1').status, 501);
  t.equal(post(fw, '/api/cmnd', 'backlog SetChannel 4 1; ;').status, 200, 'empty parts do not fail');
  t.equal(post(fw, '/api/cmnd', 'backlog SSID1 "a;b"').status, 501, 'the second half ` b"` is an unknown command');
  t.equal(fw.config.wifiSsid, 'a', 'no quote awareness: split inside the quotes');
  const t0 = clock.now();
  t.equal(post(fw, '/api/cmnd', 'backlog SetChannel 5 1; delay_ms 500; SetChannel 5 2').status, 200);
  t.equal(fw.channels.get(5), 0, 'asynchronous: nothing ran yet');
  await clock.sleepUntil(t0 + 100);
  t.equal(fw.channels.get(5), 1, 'first part ran on the next script tick');
  await clock.sleepUntil(t0 + 600);
  t.equal(fw.channels.get(5), 2);
});

t.test('req 23: calibration commands go to the driver; unknown without the driver', async (t) => {
  const { fw, drivers } = await booted(t);
  drivers[0]!.calibrateResult = 'ok';
  t.equal(post(fw, '/api/cmnd', 'CurrentSet 0.26').status, 200);
  t.equal(post(fw, '/api/cmnd', 'PowerMax').status, 400);
  t.equal(post(fw, '/api/cmnd', 'PowerMax 9000').status, 200);
  t.equal(post(fw, '/api/cmnd', 'EnergyCntReset').status, 200);
  t.same(drivers[0]!.calls, ['current 0.26', 'powerMax ', 'powerMax 9000', 'energyCntReset ']);
  const clock = new VirtualClock();
  const cfg = (await import('../sim/plug/obk/testing/rmc021.ts')).rmc021Config();
  cfg.pinRoles[24] = 0; // no SEL: no autostart
  const plug = createTestPlug(clock, { config: cfg });
  await plug.fw.boot();
  t.teardown(() => plug.fw.halt());
  t.equal(plug.drivers.length, 0);
  t.equal(post(plug.fw, '/api/cmnd', 'VoltageSet 230').status, 501, 'energy commands exist only while the driver runs');
  t.notMatch(cm(plug.fw, 'STATUS 8'), 'ENERGY', 'no ENERGY block without the driver');
});

t.test('req 24: restart [N] counts down N ticks, saves config and energy, relay OFF after boot; /api/reboot', async (t) => {
  const { fw, clock, storage, gpio, drivers } = await booted(t);
  cm(fw, 'POWER ON');
  t.equal(gpio.outputs.get(26), true);
  const t0 = clock.now();
  cm(fw, 'restart');
  fw.config.mqttHost = 'changed'; // an unsaved change must be saved at the reboot
  fw.configChanged();
  const lines: string[] = [];
  fw.log.onLine((l) => lines.push(l));
  await clock.sleepUntil(t0 + 3100);
  t.equal(fw.running, true, 'after 3 s the new boot is running again');
  t.ok(lines.includes('Info:MAIN:Module reboot in 2...'));
  t.ok(lines.includes('Info:MAIN:Module reboot in 1...'));
  t.ok(lines.includes('Info:MAIN:Rebooting...'));
  t.equal(drivers[0]!.stopped, 1, 'the driver saved its energy before the reboot');
  t.equal(storage.config?.mqttHost, 'changed');
  t.equal(fw.channels.get(1), 0, 'relay channel starts at 0');
  t.not(gpio.outputs.get(26), true, 'relay OFF after the reboot');
  t.equal(storage.retained.bootCount, 2);
  // restart 0 never reboots
  cm(fw, 'restart 0');
  const before = storage.retained.bootCount;
  await clock.sleepUntil(clock.now() + 5000);
  t.equal(storage.retained.bootCount, before, 'restart 0 is a no-op');
  t.same(post(fw, '/api/reboot', ''), { status: 200, body: '{"reboot":3}' });
  await clock.sleepUntil(clock.now() + 3500);
  t.equal(storage.retained.bootCount, before + 1);
});

t.test('req 25: /cfg_wifi_set stores, reboots only on change, clears the web password; SSID1/Password1 only store', async (t) => {
  const { fw, clock, storage } = await booted(t);
  fw.config.webPassword = 'secret99';
  const auth = `Authorization: Basic ${Buffer.from('admin:secret99').toString('base64')}`;
  t.equal(get(fw, '/cfg_wifi_set?ssid=x').status, 401, 'the page needs the password once set');
  t.equal(fw.config.wifiSsid, 'rig-net');
  const same = split(
    fw.handleHttp(`GET /cfg_wifi_set?ssid=rig-net&pass=rig-pass&web_admin_password_enabled=1&web_admin_password=secret99 HTTP/1.1\r\n${auth}\r\n\r\n`),
  );
  t.match(same.body, 'WiFi: No changes detected.');
  t.equal(fw.config.webPassword, 'secret99');
  const boots = storage.retained.bootCount;
  await clock.sleepUntil(clock.now() + 4000);
  t.equal(storage.retained.bootCount, boots, 'no reboot without a change');
  const changed = split(fw.handleHttp(`GET /cfg_wifi_set?ssid=other+net&pass=p%26ss HTTP/1.1\r\n${auth}\r\n\r\n`));
  t.equal(changed.status, 200);
  t.match(changed.body, 'WiFi: Please wait for module to reset...');
  t.equal(fw.config.wifiSsid, 'other net');
  t.equal(fw.config.wifiPass, 'p&ss');
  t.equal(fw.config.webPassword, '', 'web password cleared');
  await clock.sleepUntil(clock.now() + 3500);
  t.equal(storage.retained.bootCount, boots + 1, 'rebooted');
  t.equal(storage.config?.wifiSsid, 'other net');
  cm(fw, 'SSID1 "x y"');
  cm(fw, 'Password1 zz');
  t.equal(fw.config.wifiSsid, 'x y');
  t.equal(cm(fw, 'SSID1'), '{"SSID1":"x y"}');
  const b2 = storage.retained.bootCount;
  await clock.sleepUntil(clock.now() + 4000);
  t.equal(storage.retained.bootCount, b2, 'SSID1/Password1 do not reboot');
  t.equal(storage.config?.wifiPass, 'zz', 'saved within a second');
});

t.test('req 26: Flags N replaces 64 bits; StartupCommand needs quotes', async (t) => {
  const { fw } = await booted(t);
  t.equal(post(fw, '/api/cmnd', 'Flags 4294968320').status, 200); // 2^32 + 1024
  t.equal(fw.config.genericFlags, 1024);
  t.equal(fw.config.genericFlags2, 1);
  t.equal(post(fw, '/api/cmnd', 'Flags 0').status, 200);
  t.equal(fw.config.genericFlags2, 0);
  t.equal(post(fw, '/api/cmnd', 'Flags abc').status, 400);
  t.equal(post(fw, '/api/cmnd', 'Flags').status, 400);
  cm(fw, 'StartupCommand startDriver NTP');
  t.equal(fw.config.initCommandLine, 'startDriver', 'unquoted: only the first word');
  cm(fw, 'StartupCommand "startDriver NTP"');
  t.equal(fw.config.initCommandLine, 'startDriver NTP');
  t.match(get(fw, '/api/info').body, '"startcmd":"startDriver NTP"');
  cm(fw, 'StartupCommand "SetChannel 8 3" 1');
  t.equal(fw.channels.get(8), 3, 'with 1 it runs now');
  t.equal(post(fw, '/api/cmnd', 'StartupCommand').status, 400);
});
