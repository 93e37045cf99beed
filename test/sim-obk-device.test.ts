import t, { type Test } from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { ObkButton, type ButtonEvents } from '../sim/plug/obk/button.ts';
import { createTestPlug, rmc021Config, TEST_MAC, type TestPlug } from '../sim/plug/obk/testing/rmc021.ts';

async function booted(t: Test, opts: Parameters<typeof createTestPlug>[1] = {}): Promise<TestPlug & { clock: VirtualClock }> {
  const clock = new VirtualClock();
  const plug = createTestPlug(clock, opts);
  await plug.fw.boot();
  t.teardown(() => plug.fw.halt());
  return { ...plug, clock };
}
const cm = (p: TestPlug, c: string): string => {
  const r = p.fw.handleHttp(`GET /cm?cmnd=${encodeURIComponent(c)} HTTP/1.1\r\n\r\n`) ?? '';
  return r.slice(r.indexOf('\r\n\r\n') + 4);
};

/** Drive a button machine directly: a list of (level, duration ms) with 25 ms samples. */
function runButton(levels: Array<[boolean, number]>, times = { shortMs: 300, longMs: 1000, repeatMs: 500 }) {
  const events: Array<[string, number]> = [];
  let now = 0;
  const ev = (name: string) => () => events.push([name, now]);
  const handlers: ButtonEvents = {
    onPress: ev('press'), onRelease: ev('release'), onClick: ev('click'), onDoubleClick: ev('double'),
    onMultiClick: (n) => events.push([`x${n}`, now]), onHoldStart: ev('holdStart'), onHold: ev('hold'),
  };
  const b = new ObkButton(handlers, true);
  for (const [level, ms] of levels) {
    for (let i = 0; i < ms / 25; i++) {
      now += 25;
      b.sample(level, 25, times);
    }
  }
  return events;
}

t.test('req 34: button debounce, single click 325 ms after release recognition, double, hold 1025/525 ms', async (t) => {
  // Press (LOW) at t=0 for 200 ms, then released.
  const click = runButton([[false, 200], [true, 1000]]);
  t.same(click.map((e) => e[0]), ['press', 'release', 'click']);
  t.equal(click[0]![1], 75, 'press recognised on the 3rd low sample (50-75 ms after the edge)');
  t.equal(click[1]![1], 275, 'release recognised 75 ms after the rising edge at 200 ms');
  t.equal(click[2]![1] - click[1]![1], 325, 'click 325 ms after the release was recognised');
  t.same(runButton([[false, 50], [true, 1000]]), [], 'a 50 ms pulse is never seen');
  const dbl = runButton([[false, 150], [true, 150], [false, 150], [true, 1000]]);
  t.same(dbl.map((e) => e[0]), ['press', 'release', 'release', 'double']);
  const slowSecond = runButton([[false, 150], [true, 150], [false, 400], [true, 1000]]);
  t.same(slowSecond.map((e) => e[0]), ['press', 'release', 'release'], 'a second press held >= 300 ms drops the sequence');
  const hold = runButton([[false, 2200], [true, 300]]);
  t.same(hold.map((e) => e[0]), ['press', 'holdStart', 'hold', 'hold', 'release']);
  t.equal(hold[1]![1] - hold[0]![1], 1025);
  t.equal(hold[2]![1] - hold[1]![1], 525);
  t.equal(hold[3]![1] - hold[2]![1], 525);
});

t.test('req 34: on the plug: click toggles the relay ~0.4 s after release; long press does not; flag 6 instant; early double click clears Wi-Fi', async (t) => {
  const p = await booted(t);
  const { clock, gpio, fw } = p;
  await clock.sleepUntil(7000);
  gpio.inputs.set(10, false);
  await clock.sleepUntil(7150);
  gpio.inputs.set(10, true);
  await clock.sleepUntil(7500);
  t.equal(fw.channels.get(1), 0, 'not yet toggled 350 ms after the release');
  await clock.sleepUntil(7600);
  t.equal(fw.channels.get(1), 1, 'single click toggled channel 1');
  t.equal(gpio.outputs.get(26), true, 'relay on');
  gpio.inputs.set(10, false);
  await clock.sleepUntil(9500);
  gpio.inputs.set(10, true);
  await clock.sleepUntil(10500);
  t.equal(fw.channels.get(1), 1, 'a long press does not toggle');
  cm(p, 'SetFlag 6 1');
  gpio.inputs.set(10, false);
  await clock.sleepUntil(10600);
  t.equal(fw.channels.get(1), 0, 'flag 6: toggled on press recognition');
  gpio.inputs.set(10, true);
  await clock.sleepUntil(11500);
  t.equal(fw.channels.get(1), 0, 'and not again on release');

  const q = await booted(t);
  await q.clock.sleepUntil(1000);
  for (const [level, until] of [[false, 1150], [true, 1300], [false, 1450], [true, 2500]] as const) {
    q.gpio.inputs.set(10, level);
    await q.clock.sleepUntil(until);
  }
  t.equal(q.fw.channels.get(1), 0, 'a double click does not toggle the relay');
  t.equal(q.fw.channels.get(0), 1, 'it toggles channel 0 (channel2 of the button)');
  t.equal(q.fw.config.wifiSsid, '', 'within 5 s of uptime it clears the Wi-Fi credentials');
  await q.clock.sleepUntil(3600);
  t.equal(q.storage.config?.wifiSsid, '', 'saved within a second, for the next boot');
  t.equal(q.wifi.accessPoints.length, 0, 'no reboot, no AP now');
});

t.test('req 35: Wi-Fi LED (inverted P8): slow blink connecting, solid when joined, fast blink in AP', async (t) => {
  const p = await booted(t);
  await p.clock.sleepUntil(6000);
  const connecting = p.gpio.writesTo(8).filter((w) => w.t < 6000);
  const gaps = connecting.slice(1).map((w, i) => w.t - connecting[i]!.t);
  t.ok(gaps.length >= 5 && gaps.every((g) => g === 525), `toggles every 525 ms while connecting (${gaps.join(',')})`);
  await p.clock.sleepUntil(8000); // joined at ~6.75 s (5 ticks + 1.5 s join)
  const last = p.gpio.writesTo(8).at(-1)!;
  t.equal(last.high, false, 'solid on = pin LOW');
  t.ok(p.gpio.writesTo(8).filter((w) => w.t > 7000).every((w) => w.high === false), 'no blinking once joined');
  const ap = await booted(t, { config: rmc021Config() });
  await ap.clock.sleepUntil(9000);
  const apWrites = ap.gpio.writesTo(8).filter((w) => w.t > 6500);
  const apGaps = apWrites.slice(1).map((w, i) => w.t - apWrites[i]!.t);
  t.ok(apGaps.length > 4 && apGaps.every((g) => g === 275), `AP mode toggles every 275 ms (${apGaps.join(',')})`);
});

t.test('req 36: first boot without SSID opens the AP after ~5 ticks; defaults named from the MAC, saved at once', async (t) => {
  const p = await booted(t, { config: null });
  t.equal(p.storage.configSaves, 1, 'default config saved at once');
  t.equal(p.storage.config?.longDeviceName, 'OpenBK7231N_8C1A2B3C');
  t.equal(p.storage.config?.shortDeviceName, 'obk8C1A2B3C');
  await p.clock.sleepUntil(5200);
  t.equal(p.wifi.accessPoints.length, 0, 'not yet at 5.2 s');
  await p.clock.sleepUntil(5300);
  t.same(p.wifi.accessPoints.map((a) => a.ssid), ['OpenBK7231N_8C1A2B3C']);
  t.same(p.fw.accessPoint(), { ssid: 'OpenBK7231N_8C1A2B3C', bssid: 'C8:47:8C:1A:2B:3D', channel: 1, ip: '192.168.4.1', open: true });
  t.match(cm(p, 'STATUS 5'), '"IPAddress":"192.168.4.1"');
  t.match(cm(p, 'STATUS 5'), `"Mac":"c8:47:8c:1a:2b:3c"`);
  const info = p.fw.handleHttp('GET /api/info HTTP/1.1\r\n\r\n')!;
  t.match(info, '"ip":"192.168.4.1"', '/api works in AP-because-no-SSID mode');
  void TEST_MAC;
});

t.test('req 37: 5 quick power-ons enter safe mode with its restricted behaviour; boot OK at > 5 s', async (t) => {
  const clock = new VirtualClock();
  const p = createTestPlug(clock);
  for (let i = 0; i < 4; i++) {
    await p.fw.boot();
    await clock.sleepUntil(clock.now() + 3000); // dies before the boot is marked OK
    t.equal(p.fw.safeMode, false, `boot ${i + 1} normal`);
    await p.fw.halt();
  }
  // fresh counters 0/0: the 5th power-on has boot_count - success = 5 > 4
  await p.fw.boot();
  t.teardown(() => p.fw.halt());
  t.equal(p.fw.safeMode, true, 'the 5th quick power-on is in safe mode');
  t.ok(p.fw.log.lines().includes('Info:MAIN:###### safe mode activated - boot failures 5'));
  t.equal(p.drivers.length, 4, 'no driver in safe mode (one per normal boot before)');
  const api = p.fw.handleHttp('GET /api/info HTTP/1.1\r\n\r\n')!;
  t.match(api, /^HTTP\/1\.1 200 OK\nContent-type: text\/html/);
  t.match(api, 'Not found.');
  t.equal(cm(p, 'POWER ON'), '{"POWER":"OFF"}', 'the Tasmota reply still renders...');
  t.equal(p.fw.channels.get(1), 0, '...but POWER is unknown: nothing switched');
  t.equal(p.fw.execute('restart', 'http'), 'unknown');
  t.match(cm(p, 'STATUS 8'), /^\{"StatusSNS":\{"Time":"0000-00-00T00:00:00","ESP32"/, 'STATUS answers, without ENERGY');
  const w0 = p.gpio.writes.length;
  await clock.sleepUntil(clock.now() + 5500);
  t.equal(p.gpio.writes.length, w0, 'no LED or relay activity');
  t.same(p.wifi.accessPoints.map((a) => a.ssid), ['OpenBK7231N_8C1A2B3C'], 'open AP');
  await clock.sleepUntil(clock.now() + 2000);
  t.equal(p.storage.retained.bootSuccessCount, p.storage.retained.bootCount, 'safe boot marked OK after > 5 s');
});

t.test('req 37: boot success marking and the boot counter rule', async (t) => {
  const clock = new VirtualClock();
  const p = createTestPlug(clock);
  await p.fw.boot();
  await clock.sleepUntil(6100);
  t.equal(p.storage.retained.bootSuccessCount, 0, 'not at uptime 6.1 s (tick at 6.25 s)');
  await clock.sleepUntil(6300);
  t.equal(p.storage.retained.bootSuccessCount, 1, 'marked at the first tick with uptime > 5');
  await p.fw.halt();
  for (let i = 0; i < 4; i++) {
    await p.fw.boot();
    await clock.sleepUntil(clock.now() + 2000);
    await p.fw.halt();
  }
  await p.fw.boot();
  t.equal(p.fw.safeMode, true, 'after a good boot, 4 short cycles put the 5th power-on into safe mode');
  await p.fw.halt();
  t.equal(p.fw.execute('POWER', 'http'), 'unknown');
});

t.test('req 39: log lines with OpenBeken prefixes; power loss saves nothing', async (t) => {
  const p = await booted(t);
  p.drivers[0]!.calibrateResult = 'error';
  cm(p, 'VoltageSet 230');
  const lines = p.fw.log.lines();
  t.ok(lines.includes('Error:EnergyMeter:Calibration incorrect - connect load first.'));
  t.ok(lines.some((l) => l.startsWith('Info:MAIN:')));
  t.ok(lines.includes('Info:MAIN:Using SSID [rig-net]'));
  t.ok(lines.includes('Info:MAIN:Using Pass [****]'));
  p.fw.handleHttp('POST /api/cmnd HTTP/1.1\r\n\r\nPassword1 n3wSecret');
  p.fw.handleHttp('GET /cm?cmnd=MqttPassword%20mqttS3cret HTTP/1.1\r\n\r\n');
  t.ok(lines.some((l) => l.includes("[WebApp Cmd 'Password1 ****' Result] OK")));
  for (const secret of ['rig-pass', 'n3wSecret', 'mqttS3cret']) {
    t.notOk(lines.some((l) => l.includes(secret)), `${secret} never reaches the log`);
  }
  await p.clock.sleepUntil(1400);
  cm(p, 'MqttHost lost.example');
  const saves = p.storage.configSaves;
  await p.fw.halt();
  t.equal(p.storage.configSaves, saves, 'halt() saves nothing');
  t.equal(p.drivers[0]!.stopped, 0, 'the driver was not asked to save');
  t.equal(p.gpio.released, 1, 'pins released');
  await p.fw.boot();
  t.equal(p.fw.config.mqttHost, '', 'the unsaved change was lost');
});

t.test('config saved within ~1 s of a change, only when changed', async (t) => {
  const p = await booted(t);
  await p.clock.sleepUntil(2100);
  const n = p.storage.configSaves;
  await p.clock.sleepUntil(4100);
  t.equal(p.storage.configSaves, n, 'no change, no save');
  cm(p, 'MqttHost broker.local');
  await p.clock.sleepUntil(5300);
  t.equal(p.storage.configSaves, n + 1);
  t.ok(p.storage.configSaveTimes.at(-1)! - 4100 <= 1000, 'within a second');
  t.equal(p.storage.config?.changeCounter, n + 1 + 0 * n, 'changeCounter counts saves');
});

t.test('template: BL0937 autostart from the roles (pins elsewhere, SEL_n), flag 36, startDriver; inverted relay and button', async (t) => {
  const cfg = rmc021Config();
  cfg.pinRoles.fill(0);
  cfg.pinChannels.fill(0);
  const set = (pin: number, role: number, ch = 0): void => {
    cfg.pinRoles[pin] = role;
    cfg.pinChannels[pin] = ch;
  };
  set(14, 19); // CF1
  set(15, 18); // CF
  set(16, 64); // BL0937SEL_n
  set(20, 2, 1); // Rel_n on channel 1
  set(22, 4, 1); // Btn_n (active high) on channel 1
  const clock = new VirtualClock();
  const p = { ...createTestPlug(clock, { config: cfg }), clock };
  p.gpio.inputs.set(22, false); // an active-high button idles low (pull-down on the board)
  await p.fw.boot();
  t.teardown(() => p.fw.halt());
  t.same(p.drivers[0]?.options.pins, { cf: 15, cf1: 14, sel: 16, selInverted: true });
  t.equal(p.gpio.outputs.get(20), true, 'Rel_n: channel 0 drives the pin high');
  await p.clock.sleepUntil(1000);
  p.gpio.inputs.set(22, true);
  await p.clock.sleepUntil(1150);
  p.gpio.inputs.set(22, false);
  await p.clock.sleepUntil(1600);
  t.equal(p.fw.channels.get(1), 1, 'Btn_n: a high pulse is a click');
  t.equal(p.gpio.outputs.get(20), false, 'Rel_n: ON drives the pin low');
  t.equal(p.drivers[0]!.ticks, 1, 'the driver runs on the 1 s timer');

  const noAuto = rmc021Config();
  noAuto.genericFlags |= 1 << 4; // flag 36 lives in the second word
  noAuto.genericFlags2 = 1 << 4;
  const q = await booted(t, { config: noAuto });
  t.equal(q.drivers.length, 0, 'flag 36 disables the autostart');
  t.equal(q.fw.execute('VoltageSet 230', 'console'), 'unknown');
  t.equal(q.fw.execute('startDriver BL0937', 'console'), 'ok');
  t.equal(q.drivers.length, 1);
  t.same(q.drivers[0]!.options.pins, { cf: 7, cf1: 6, sel: 24, selInverted: false });
  t.equal(q.fw.execute('VoltageSet', 'console'), 'not-enough-arguments', 'energy commands registered with the driver');
});

t.test('SafeMode, FullBootTime and SetButtonTimes commands', async (t) => {
  const p = await booted(t);
  p.fw.execute('FullBootTime 10', 'console');
  await p.clock.sleepUntil(8300);
  t.equal(p.storage.retained.bootSuccessCount, 0, 'not marked OK at 8 s with FullBootTime 10');
  await p.clock.sleepUntil(11300);
  t.equal(p.storage.retained.bootSuccessCount, 1, 'marked OK once uptime > 10');
  p.fw.execute('SetButtonTimes 20 5 5', 'console');
  const t0 = p.clock.now();
  p.gpio.inputs.set(10, false);
  await p.clock.sleepUntil(t0 + 150);
  p.gpio.inputs.set(10, true);
  await p.clock.sleepUntil(t0 + 150 + 75 + 400);
  t.equal(p.fw.channels.get(1), 0, 'short time 500 ms: no click after 400 ms');
  await p.clock.sleepUntil(t0 + 150 + 75 + 600);
  t.equal(p.fw.channels.get(1), 1);
  t.equal(p.fw.execute('SafeMode', 'console'), 'ok');
  await p.clock.sleepUntil(p.clock.now() + 1500);
  t.equal(p.fw.safeMode, true, 'SafeMode reboots into safe mode');
});
