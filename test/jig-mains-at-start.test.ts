import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../cli/main.ts';
import { onVirtualJigStarted, type InProcessJig } from '../sim/jig/in-process-jig.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { VirtualFirmataBoard } from '../sim/firmata/virtual-firmata-board.ts';

/**
 * "Mains relay pin high at start": a StandardFirmata board that kept running after the station that
 * switched mains on died (no auto-reset when the next station opens its port; jig-file fault
 * `faults.boards.io0.outputsLeftHigh`). `jig check` and the station start read the mains relay
 * output's PIN_STATE before anything is written, report the jig found energised naming the pin, and
 * drive it off.
 */
const dir = mkdtempSync(join(tmpdir(), 'plugrig-mains-at-start-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const base = JSON.parse(readFileSync(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const MAINS_PIN = 5; // slot 1's pins.mains in virtual-1slot.json
const jigFile = (name: string, faults?: unknown): string => {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ ...base, name, ...(faults ? { faults } : {}) }));
  return path;
};
const buffer = () => {
  const chunks: string[] = [];
  return { write: (s: string) => chunks.push(String(s)) > 0, text: () => chunks.join('') };
};
process.env.PLUGRIG_LOG = 'silent';

t.test('the virtual board on its own: outputs left high survive an open without auto-reset, PIN_STATE says 1', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const board = new VirtualFirmataBoard({ autoResetOnDtr: false });
  board.leaveOutputsHigh([MAINS_PIN]);
  bus.attach('b', board, { modemLines: true });
  await clock.sleep(10);
  t.equal(board.driven(MAINS_PIN), true, 'the pin drives high');
  const got: number[] = [];
  const port = await import('../rig/serial/serial-link.ts').then((m) => m.SerialLink.open({ path: 'sim:b', baudRate: 57600, clock, binding: bus.binding }));
  t.teardown(() => port.close());
  await port.write(Uint8Array.of(0xf0, 0x6d, MAINS_PIN, 0xf7)); // PIN_STATE_QUERY
  for (let i = 0; i < 5 && got.length < 5; i++) got.push(...(await port.read(5 - got.length, 200)));
  t.same(got, [0xf0, 0x6e, MAINS_PIN, 0x01, 0x01], 'PIN_STATE_RESPONSE: pin, mode OUTPUT, state 1');
});

t.test('jig check: a board holding the mains relay on is reported energised by its pin, then driven off', async (t) => {
  const jigs: InProcessJig[] = [];
  const stop = onVirtualJigStarted((j) => jigs.push(j));
  t.teardown(stop);
  const out = buffer();
  const err = buffer();
  const code = await runCli(['jig', 'check', jigFile('left-on', { boards: { io0: { outputsLeftHigh: [MAINS_PIN] } } }), '--json'], { stdout: out, stderr: err });
  t.equal(code, 9, 'a failed jig check');
  const res = JSON.parse(out.text()) as { passed: boolean; rows: { slot: number; check: string; ok: boolean; detail: string }[] };
  const row = res.rows.find((r) => r.check === 'mains relay at start');
  t.ok(row, 'a row for the mains relay output at start');
  t.equal(row?.ok, false, 'failed');
  t.match(row?.detail ?? '', /jig found energised: mains relay output pin 5 of I\/O board io0 reads 1 .*driven off/, row?.detail ?? 'no row');
  t.ok(res.rows.find((r) => r.check === 'back to safe state')?.ok, 'then back in the safe state');
  t.match(err.text(), /^plugrig: jig check failed: slot 1 /, 'one message on stderr');
  t.equal(jigs.length, 1);
  t.notOk(jigs[0]!.vj.slots.get(1)!.physical().mainsEnergised, 'mains off at the end');
});

t.test('jig check: a board found with mains off says so from the same read', async (t) => {
  const out = buffer();
  await runCli(['jig', 'check', jigFile('clean'), '--json'], { stdout: out, stderr: buffer() });
  const row = (JSON.parse(out.text()) as { rows: { check: string; ok: boolean; detail: string }[] }).rows.find((r) => r.check === 'mains relay at start');
  t.equal(row?.ok, true);
  t.match(row?.detail ?? '', /^off: pin 5 of io0 reads 0 \(PIN_STATE\), and meter \S+ \(this slot's own\) saw no mains before anything was switched$/, 'off only with the meter to confirm it (PIN_STATE alone is a stored level)');
});

t.test('plugrig run: a board holding the mains relay on: the station start says so on stderr, naming slot and pin', async (t) => {
  const out = buffer();
  const err = buffer();
  const code = await runCli(['run', '--sim', '--jig', jigFile('left-on-run', { boards: { io0: { outputsLeftHigh: [MAINS_PIN] } } }), '--plan', 'flash-only', '--out', join(dir, 'run-left-on'), '--store', join(dir, 'store.sqlite')], { stdout: out, stderr: err });
  t.match(err.text(), /^plugrig: jig found energised at start: slot 1: mains relay output pin 5 of I\/O board io0 reads 1 .*driven off$/m, err.text().slice(0, 400));
  t.match(err.text(), /^jig in its safe state: slots 1 /m, 'then confirmed safe');
  t.equal(code, 0, 'the run goes on once it is driven off');
});
