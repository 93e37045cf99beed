import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeObk } from './fixtures/fake-obk-plug.ts';
import { plugrigInProcess } from './fixtures/cli-in-process.ts';

/**
 * `plugrig dut` and `plugrig provision --http` against a plug at a fixed URL, in-process (runCli with
 * captured stdout/stderr); the --verbose run is a child process, since its log lines go to the real stderr.
 */
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-dut-cli-'));
const WIFI_PASS = 'Cli-Wifi-Secret-31';
const ENV = { PLUGRIG_LOG: 'debug', PLUGRIG_WIFI_PASS: WIFI_PASS, PLUGRIG_WIFI_SSID: 'plugrig-station' };
const spawned = (...args: string[]) => execa('node', [BIN, ...args], { reject: false, env: ENV, timeout: 120_000 });
const plugrig = (...args: string[]) => plugrigInProcess(args, { env: ENV });

/** A real-hardware jig file (its serial ports are never opened: no --power) whose slot 1 plug is at url. */
function jigFor(url: string): string {
  const jig = JSON.parse(readFileSync('fixtures/jigs/example-arduino-pzem-dcttech.json', 'utf8')) as { slots: Array<Record<string, unknown>> };
  jig.slots[0]!.plug = { url };
  const path = join(dir, `jig-${url.replace(/\W/g, '')}.json`);
  writeFileSync(path, JSON.stringify(jig));
  return path;
}

t.test('dut info, dut cmd', async (t) => {
  const plug = await fakeObk();
  t.teardown(() => plug.close());
  plug.roles[26] = 1;
  plug.channels[26] = 1;
  plug.flags = 1024n;
  const jig = jigFor(plug.url);
  const info = await plugrig('dut', 'info', jig, '--slot', '1');
  t.equal(info.exitCode, 0, info.stderr);
  t.match(info.stdout, new RegExp(`plug      ${plug.url} \\(jig file URL\\)`));
  t.match(info.stdout, /MAC       c8:47:8c:80:a2:fb/);
  t.match(info.stdout, /build     OpenBK7231N_1\.18\.299, Built on Jul 24 2026 10:30:00 version 1\.18\.299/);
  t.match(info.stdout, /flags     1024 \(flags 10\)/);
  t.match(info.stdout, /pins      P26 Rel ch 1/);
  t.match(info.stdout, /energy    230\.0 V  0\.266 A  60\.00 W  PF 0\.98  total 12\.345 Wh/);
  const j = await plugrig('dut', 'info', jig, '--slot', '1', '--json');
  t.equal(j.exitCode, 0, j.stderr);
  const parsed = JSON.parse(j.stdout) as { info: { mac: string }; flags: number[]; pins: { roles: number[] } };
  t.equal(parsed.info.mac, 'c8:47:8c:80:a2:fb');
  t.same(parsed.flags, [10]);
  t.equal(parsed.pins.roles[26], 1);

  const cmd = await plugrig('dut', 'cmd', jig, '--slot', '1', 'restart');
  t.equal(cmd.exitCode, 0, cmd.stderr);
  t.equal(cmd.stdout.trim(), '{}');
  t.ok(plug.commands.includes('restart'), 'sent over POST /api/cmnd');
  const bad = await plugrig('dut', 'cmd', jig, '--slot', '1', 'frobnicate 1');
  t.equal(bad.exitCode, 9, 'a refused command is a unit failure');
  t.match(bad.stderr, /plugrig: OpenBeken refused "frobnicate 1": 501 Unknown command \(slot 1/);
  const noSlot = await plugrig('dut', 'info', jig, '--slot', '7');
  t.equal(noSlot.exitCode, 2);
  t.match(noSlot.stderr, /jig example-.* has no slot 7/);
});

t.test('provision --http, and the password never printed', async (t) => {
  const plug = await fakeObk();
  t.teardown(() => plug.close());
  const jig = jigFor(plug.url);
  // --verbose: log lines reach stderr only when asked, and the password must not be in them either.
  const r = await spawned('provision', jig, '--slot', '1', '--template', 'fixtures/devices/rmc021.json', '--http', '--verbose');
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, new RegExp(`slot 1: Tuya RMC021 applied over HTTP at ${plug.url} \\(\\d+ requests, restarted, read back: pins, flags 1024, startcmd "startDriver NTP", MAC c8:47:8c:80:a2:fb\\)`));
  t.equal(plug.pass, WIFI_PASS, 'the plug got the password from the environment');
  t.equal(plug.ssid, 'plugrig-station');
  t.ok(r.stderr.length > 0, 'debug log on stderr');
  t.notOk((r.stdout + r.stderr).includes(WIFI_PASS), 'not in stdout or the debug log');
  t.notOk((r.stdout + r.stderr).includes(encodeURIComponent(WIFI_PASS)));

  plug.faults.ignorePin = 24;
  const f = await plugrig('provision', jig, '--slot', '1', '--template', 'fixtures/devices/rmc021.json', '--http', '--json');
  t.equal(f.exitCode, 9);
  t.match(f.stderr, /did not take on .*: 1 difference\(s\)\n  P24 role: expected BL0937SEL \(17\), plug has None \(0\)/);
  t.notOk((f.stdout + f.stderr).includes(WIFI_PASS), 'nor on failure');

  const badTemplate = join(dir, 'bad.json');
  writeFileSync(badTemplate, JSON.stringify({ name: 'x', chip: 'BK7231N', pins: { '26': 'Relais;1' }, flags: 'lots' }));
  const b = await plugrig('provision', jig, '--slot', '1', '--template', badTemplate, '--http');
  t.equal(b.exitCode, 2);
  t.match(b.stderr, /invalid device template .*bad\.json:\n  pins\["26"\]: unknown role "Relais"\n  flags: flag word "lots" is not a number/);
});
