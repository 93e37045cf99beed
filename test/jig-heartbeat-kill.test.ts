import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { RealClock } from '../rig/core/clock.ts';
import { PZEM_UPDATE_INTERVAL_MS } from '../sim/pzem/virtual-pzem.ts';
import { startPtySim, waitFor } from './fixtures/pty-sim.ts';

/**
 * kill -9 of a station process with mains on, across processes: `plugrig sim --jig --pty` models the
 * jig, a child station switches mains on through the interlock over the ptys and is killed with
 * SIGKILL (no cleanup can run). With the heartbeat pin the watchdog relay drops mains; without it the
 * jig stays live, and `jig check` reports it energised. Waits are generous for a loaded host.
 */

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/plugrig.mjs');
const STATION = join(ROOT, 'test/fixtures/mains-on-station.ts');
const ONE_SLOT_FILE = join(ROOT, 'fixtures/jigs/virtual-1slot.json');
const clock = new RealClock();
const dir = mkdtempSync(join(tmpdir(), 'plugrig-heartbeat-kill-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function plugrig(...args: string[]) {
  return execa('node', [BIN, ...args], { reject: false, env: { PLUGRIG_LOG: 'silent' }, timeout: 60_000, forceKillAfterDelay: 5_000 });
}

/** Start the pty sim on `jigFile`, kill -9 a station that switched mains on; returns the generated jig file. */
async function killStationWithMainsOn(t: Test, jigFile: string, name: string): Promise<string> {
  const sim = await startPtySim(t, jigFile, join(dir, name));
  const generated = sim.generated;
  t.notOk(sim.exited(), 'the simulator runs');

  const station = spawn(process.execPath, ['--import=tsx', STATION, generated], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PLUGRIG_LOG: 'silent' } });
  let out = '';
  let err = '';
  station.stdout.on('data', (d: Buffer) => (out += d.toString()));
  station.stderr.on('data', (d: Buffer) => (err += d.toString()));
  let stationExited = false;
  station.on('exit', () => (stationExited = true));
  t.teardown(() => {
    if (!stationExited) station.kill('SIGKILL');
  });
  await waitFor('the station to switch mains on', () => out.includes('mains on') || stationExited, 120_000).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}; station stderr: ${err}`);
  });
  t.notOk(stationExited, `station switched mains on (${err.trim() || 'no stderr'})`);
  // Keep mains on a while (the heartbeat must hold the watchdog), then kill with no chance to clean up.
  await clock.sleep(1500);
  station.kill('SIGKILL');
  await waitFor('the station to die', () => stationExited, 10_000);
  // The bound is 500 ms (test/jig-heartbeat.test.ts measures it on model time). The PZEM shows the mean of
  // its last whole update interval, so a reading only says "0 V" once a full interval began after the drop:
  // wait the bound plus two intervals (one may straddle the drop) plus pty/process slack.
  await clock.sleep(500 + 2 * PZEM_UPDATE_INTERVAL_MS + 500);
  return generated;
}

t.test('kill -9 with mains on and a heartbeat pin: the virtual mains is off afterwards (meter 0 V)', async (t) => {
  const generated = await killStationWithMainsOn(t, ONE_SLOT_FILE, 'with-heartbeat');
  const r = await plugrig('meter', 'read', generated);
  t.comment(r.stdout + r.stderr);
  t.equal(r.exitCode, 0);
  t.match(r.stdout, /U 0\.0 V/, 'no mains at the plug');
  const check = await plugrig('jig', 'check', generated);
  t.comment(check.stdout);
  t.match(check.stdout, /ok\s+not energised at start\s+0\.0 V/);
});

t.test('the same without a heartbeat pin: mains stays live, and jig check fails it as energised', async (t) => {
  const raw = JSON.parse(readFileSync(ONE_SLOT_FILE, 'utf8')) as { ioBoards: Record<string, Record<string, unknown>> };
  delete raw.ioBoards.io0!.heartbeat;
  const file = join(dir, 'no-heartbeat.json');
  writeFileSync(file, JSON.stringify(raw));
  const generated = await killStationWithMainsOn(t, file, 'no-heartbeat');
  const r = await plugrig('meter', 'read', generated);
  t.comment(r.stdout + r.stderr);
  t.match(r.stdout, /U 2[23]\d\.\d V/, 'the jig is live (what the watchdog prevents)');
  const check = await plugrig('jig', 'check', generated);
  t.comment(check.stdout);
  t.not(check.exitCode, 0, 'jig check fails');
  t.match(check.stdout, /FAIL\s+not energised at start\s+jig found energised: 2[23]\d\.\d V at meter ref0/);
  t.match(check.stdout, /warn\s+mains watchdog io0\s+no heartbeat pin/);
});
