import t from 'tap';
import { execa } from 'execa';

/**
 * `plugrig dut` / `plugrig provision` on the in-process virtual jig (--sim): its plugs run the
 * virtual OpenBeken firmware, provisioned (dut) or unconfigured in AP mode (provision).
 */
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const JIG = 'fixtures/jigs/virtual-1slot.json';
const plugrig = (...args: string[]) => execa('node', [BIN, ...args], { reject: false, env: { PLUGRIG_LOG: 'silent' }, timeout: 100_000 });

t.test('provision --http moves the plug from its AP to the station network; --offline over the ROM', async (t) => {
  const http = await plugrig('provision', JIG, '--sim', '--template', 'fixtures/devices/rmc021.json', '--http', '--json');
  t.equal(http.exitCode, 0, http.stderr);
  const h = JSON.parse(http.stdout) as { url: string; info: { mac: string; startcmd: string; flags: string; ip: string }; commands: string[] };
  t.match(h.url, /^http:\/\/127\.77\./, 'read back on the station network (the AP address was elsewhere)');
  t.equal(h.info.startcmd, 'startDriver NTP');
  t.equal(h.info.flags, '1024');
  t.ok(h.commands.includes('/cfg_wifi_set?<redacted>'), 'Wi-Fi sent, its query redacted');
  t.notOk(http.stdout.includes('plugrig-virtual'), 'the station password is not printed');

  const off = await plugrig('provision', JIG, '--sim', '--template', 'fixtures/devices/antela-f1s202-eu.json', '--offline');
  t.equal(off.exitCode, 0, off.stderr);
  t.match(off.stdout, /slot 1: ANTELA F1s202-EU written offline at 0x1d1000 \(CRC 0x[0-9a-f]+, 1 sector\(s\) written\)/);
  t.match(off.stdout, /online at http:\/\/127\.77\.[\d.]+:\d+ after \d+ s, \/api\/info MAC (c8:47:8c:[0-9a-f:]+) = ROM MAC/);
});

t.test('dut info and dut cmd on a provisioned virtual plug', async (t) => {
  const info = await plugrig('dut', 'info', JIG, '--sim', '--json');
  t.equal(info.exitCode, 0, info.stderr);
  const j = JSON.parse(info.stdout) as { info: { mac: string; chipset: string; startcmd: string }; pins: { roles: number[] }; flags: number[] };
  t.equal(j.info.chipset, 'BK7231N');
  t.equal(j.info.startcmd, 'startDriver NTP');
  t.same([j.pins.roles[6], j.pins.roles[7], j.pins.roles[8], j.pins.roles[10], j.pins.roles[24], j.pins.roles[26]], [19, 18, 9, 3, 17, 1], 'the RMC021 pins');
  t.same(j.flags, [10]);
  const on = await plugrig('dut', 'cmd', JIG, '--sim', 'POWER ON');
  t.equal(on.exitCode, 0, on.stderr);
  t.equal(on.stdout.trim(), '{"POWER":"ON"}');
  const cal = await plugrig('dut', 'cmd', JIG, '--sim', 'VoltageSet 0');
  t.equal(cal.exitCode, 9, 'a refused calibration is visible through POST /api/cmnd');
  t.match(cal.stderr, /OpenBeken refused "VoltageSet 0": 400 Bad argument/);
});
