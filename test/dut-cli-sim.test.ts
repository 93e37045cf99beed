import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { runCli } from '../cli/main.ts';
import { onVirtualJigStarted, type InProcessJig } from '../sim/jig/in-process-jig.ts';

/**
 * `plugrig dut` / `plugrig provision` on the in-process virtual jig (--sim): its plugs run the
 * virtual OpenBeken firmware, provisioned (dut) or unconfigured in AP mode (provision). The first two
 * tests run the CLI in child processes: run in-process before the third, they made it fail (its plug
 * once answered /api/info with an AP-mode "Not found." page, once mains switched twice), which points at
 * virtual plugs of earlier runs still listening on their loopback addresses (not run down yet).
 */
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const JIG = 'fixtures/jigs/virtual-1slot.json';
/**
 * Model time (--sim-time virtual): on wall time a loaded machine that stalls this process for ~1 s
 * stalls the heartbeat, and the virtual jig's watchdog relay drops mains, as a real one would (CI:
 * ECONNREFUSED from a plug that lost power mid-import; mains on, off, on, off at slot 2). The wall-time
 * path of these commands is dut-cli.test's (a real-hardware jig file against a plug on loopback).
 */
const SIM = ['--sim', '--sim-time', 'virtual'];
const plugrig = (...args: string[]) => execa('node', [BIN, ...args], { reject: false, env: { PLUGRIG_LOG: 'silent' }, timeout: 100_000 });

t.test('provision --http moves the plug from its AP to the station network; --offline over the ROM', async (t) => {
  const http = await plugrig('provision', JIG, ...SIM, '--template', 'fixtures/devices/rmc021.json', '--http', '--json');
  t.equal(http.exitCode, 0, http.stderr);
  const h = JSON.parse(http.stdout) as { url: string; info: { mac: string; startcmd: string; flags: string; ip: string }; commands: string[] };
  t.match(h.url, /^http:\/\/127\.77\./, 'read back on the station network (the AP address was elsewhere)');
  t.equal(h.info.startcmd, 'startDriver NTP');
  t.equal(h.info.flags, '1024');
  t.ok(h.commands.includes('/cfg_wifi_set?<redacted>'), 'Wi-Fi sent, its query redacted');
  t.notOk(http.stdout.includes('plugrig-virtual'), 'the station password is not printed');

  const off = await plugrig('provision', JIG, ...SIM, '--template', 'fixtures/devices/antela-f1s202-eu.json', '--offline');
  t.equal(off.exitCode, 0, off.stderr);
  t.match(off.stdout, /slot 1: ANTELA F1s202-EU written offline at 0x1d1000 \(CRC 0x[0-9a-f]+, 1 sector\(s\) written\)/);
  t.match(off.stdout, /online at http:\/\/127\.77\.[\d.]+:\d+ after \d+ s, \/api\/info MAC (c8:47:8c:[0-9a-f:]+) = ROM MAC/);
});

t.test('dut info and dut cmd on a provisioned virtual plug', async (t) => {
  const info = await plugrig('dut', 'info', JIG, ...SIM, '--json');
  t.equal(info.exitCode, 0, info.stderr);
  const j = JSON.parse(info.stdout) as { info: { mac: string; chipset: string; startcmd: string }; pins: { roles: number[] }; flags: number[] };
  t.equal(j.info.chipset, 'BK7231N');
  t.equal(j.info.startcmd, 'startDriver NTP');
  t.same([j.pins.roles[6], j.pins.roles[7], j.pins.roles[8], j.pins.roles[10], j.pins.roles[24], j.pins.roles[26]], [19, 18, 9, 3, 17, 1], 'the RMC021 pins');
  t.same(j.flags, [10]);
  // A STATUS 2 reply without StatusFWR is said in the build line, not shown as "?".
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-dut-fwr-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const jig = JSON.parse(readFileSync(JIG, 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'jig.json'), JSON.stringify({ ...jig, faults: { plug: { http: { kind: 'missing-field', path: '/cm', field: 'StatusFWR' } } } }));
  const noFwr = await plugrig('dut', 'info', join(dir, 'jig.json'), ...SIM);
  t.equal(noFwr.exitCode, 0, noFwr.stderr);
  t.match(noFwr.stdout, /^build\s+STATUS 2 has no StatusFWR, Built on /m, 'the missing StatusFWR is named');
  const on = await plugrig('dut', 'cmd', JIG, ...SIM, 'POWER ON');
  t.equal(on.exitCode, 0, on.stderr);
  t.equal(on.stdout.trim(), '{"POWER":"ON"}');
  const cal = await plugrig('dut', 'cmd', JIG, ...SIM, 'VoltageSet 0');
  t.equal(cal.exitCode, 9, 'a refused calibration is visible through POST /api/cmnd');
  t.match(cal.stderr, /OpenBeken refused "VoltageSet 0": 400 Bad argument/);
});

t.test('dut info on a slot behind a shared mains relay: its partner is held isolated and powered with it, the other group untouched', async (t) => {
  const jigs: InProcessJig[] = [];
  const stop = onVirtualJigStarted((j) => jigs.push(j));
  t.teardown(stop);
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['dut', 'info', 'fixtures/jigs/virtual-4slot-shared.json', '--slot', '2', ...SIM, '--json'], { stdout: { write: (x: string) => out.push(x) }, stderr: { write: (x: string) => err.push(x) } });
  t.equal(code, 0, err.join(''));
  t.equal((JSON.parse(out.join('')) as { info: { mac: string } }).info.mac, 'c8:47:8c:00:01:02', "slot 2's plug answered");
  t.match(err.join(''), /mains group A: slot 1 shares slot 2's mains relay and gets mains too \(UART and 3V3 held off\)/, 'the operator is told the partner gets mains');
  const vj = jigs[0]!.vj;
  // Mains edges from the first time it came on (the start-up writes of the two outputs are separate events).
  const edges = (s: number): Array<{ at: number; on: boolean }> => {
    const all = vj.history(s).filter((e) => e.changed.includes('mainsEnergised')).map((e) => ({ at: e.at, on: e.state.mainsEnergised }));
    return all.slice(Math.max(0, all.findIndex((e) => e.on)));
  };
  t.same(edges(2).map((e) => e.on), [true, false], 'mains came on at slot 2 once and went off again');
  t.same(edges(1).map((e) => e.on), [true, false], 'and at slot 1');
  t.ok(edges(1).every((e, i) => e.at === edges(2)[i]!.at), `at the same instants (model time), one relay (slot 1 ${edges(1).map((e) => e.at.toFixed(0))}, slot 2 ${edges(2).map((e) => e.at.toFixed(0))} ms)`);
  for (const s of [1, 2]) t.same(vj.history(s).filter((e) => e.state.mainsEnergised && (e.state.uartConnected || e.state.supply3v3)), [], `slot ${s}: never mains with UART or 3V3`);
  for (const s of [3, 4]) t.same(vj.history(s).filter((e) => e.state.mainsEnergised), [], `slot ${s} (the other group): never mains`);
  for (const s of [1, 2, 3, 4]) t.match(vj.physical(s), { mainsEnergised: false, uartConnected: false, supply3v3: false }, `slot ${s} safe at the end`);
});
