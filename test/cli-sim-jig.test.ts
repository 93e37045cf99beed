import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { execa } from 'execa';
import { SerialPortStream } from '@serialport/stream';
import { autoDetect } from '@serialport/bindings-cpp';
import { RealClock } from '../rig/core/clock.ts';
import { startPtySim } from './fixtures/pty-sim.ts';
import { ConfigError } from '../rig/core/errors.ts';
import { hex } from '../rig/core/hex.ts';
import { loadJigFile, parseJig } from '../rig/jig/jig-config.ts';
import { Pzem004tMeter } from '../rig/meter/pzem004t.ts';
import { openLink } from '../rig/serial/open-link.ts';
import type { SerialLink } from '../rig/serial/serial-link.ts';
import { crcOk } from '../sim/pzem/modbus-crc.ts';
import { formatPtyJigTable, planSimDevices, rewriteJigForPtys, startVirtualJigOnPtys } from '../sim/jig/pty-jig.ts';
import { FIRMATA_QUERY_FIRMWARE_REQ, FIRMATA_REPORT_FIRMWARE } from './fixtures/firmata-traces.ts';
import { LINK_CHECK_RX, LINK_CHECK_TX } from './fixtures/bk7231-traces.ts';
import { PZEM_READ_INPUT_REQ_01 } from './fixtures/meter-traces.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/plugrig.mjs');
const ONE_SLOT_FILE = join(ROOT, 'fixtures/jigs/virtual-1slot.json');
// virtual-1slot: cen 2, power3v3 3, uartIsolation 4, mains 5 on io0 (Uno); PZEM address 1.

/** SET_PIN_MODE pin n OUTPUT (F4 0n 01). */
const setOutput = (pin: number): Uint8Array => Uint8Array.of(0xf4, pin, 0x01);
/** SET_DIGITAL_PIN_VALUE pin n high/low (F5 0n 01 / F5 0n 00). */
const setPin = (pin: number, high: boolean): Uint8Array => Uint8Array.of(0xf5, pin, high ? 1 : 0);

const clock = new RealClock();
const dir = mkdtempSync(join(tmpdir(), 'plugrig-sim-jig-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A variant of virtual-1slot: RTS-reset slot and a virtual WT310E instead of the PZEM. */
function scpiModemLinesJig(): string {
  const raw = JSON.parse(readFileSync(ONE_SLOT_FILE, 'utf8')) as Record<string, unknown> & { slots: Array<Record<string, unknown>> };
  raw.name = 'virtual-1slot-wt';
  raw.meters = { wt: { kind: 'scpi', model: 'WT310E', address: 'sim:wt0', serial: 'C2QD12345' } };
  raw.slots[0]!.reset = { method: 'modem-lines', sequence: 'R1|W50|R0' };
  raw.slots[0]!.meter = { ref: 'wt', channel: 1 };
  const file = join(dir, 'wt-jig.json');
  writeFileSync(file, JSON.stringify(raw));
  return file;
}

t.test('the jig is rewritten for ptys: sim: ports to links, modem-lines reset to jig-cen', async (t) => {
  const jig = loadJigFile(scpiModemLinesJig());
  t.same(
    planSimDevices(jig).map((p) => [p.simPath, p.kind, p.slots]),
    [['sim:io0', 'io-board', [1]], ['sim:wt0', 'scpi', [1]], ['sim:uart1', 'uart', [1]]],
  );
  const addresses = new Map([['sim:io0', '/x/io0'], ['sim:wt0', 'tcp://127.0.0.1:5025'], ['sim:uart1', '/x/uart1']]);
  const { spec, resetRewritten } = rewriteJigForPtys(jig, addresses, '/x');
  t.same(resetRewritten, [1]);
  t.same(spec.slots[0]!.reset, { method: 'jig-cen', pulseMs: 50 });
  t.equal(spec.slots[0]!.uart.port, '/x/uart1');
  t.equal(spec.ioBoards.io0!.port, '/x/io0');
  t.match(spec.meters.wt, { kind: 'scpi', address: 'tcp://127.0.0.1:5025' });
  t.equal(jig.slots[0]!.reset.method, 'modem-lines', 'the source spec is left alone');
  t.same(parseJig(JSON.parse(JSON.stringify(spec))), spec, 'the rewritten jig validates');

  // A modem-lines slot on a real adapter keeps its reset: its USB-UART does have DTR/RTS.
  const real = structuredClone(jig);
  real.slots[0]!.uart = { port: '/dev/ttyUSB0' };
  t.same(rewriteJigForPtys(real, addresses, '/x').resetRewritten, []);

  const named = structuredClone(jig);
  named.slots[0]!.uart = { port: 'sim:../evil' };
  t.throws(() => planSimDevices(named), ConfigError);
  const twice = structuredClone(jig);
  twice.slots[0]!.uart = { port: 'sim:io0' };
  t.throws(() => planSimDevices(twice), { name: 'ConfigError', message: /sim:io0 is named twice/ });
  const none = structuredClone(jig);
  none.ioBoards.io0!.port = '/dev/ttyACM0';
  none.meters.wt = { kind: 'scpi', model: 'WT310E', address: 'tcp://10.0.0.5:5025' };
  none.slots[0]!.uart = { port: '/dev/ttyUSB0' };
  t.throws(() => planSimDevices(none), { name: 'ConfigError', message: /names no sim: device/ });
});

t.test('in process: SCPI meter on loopback TCP, modem-lines slot noted, everything removed on close', async (t) => {
  const linkDir = join(dir, 'wt-links');
  const pj = await startVirtualJigOnPtys({ jigPath: scpiModemLinesJig(), linkDir, seed: 2 });
  let closed = false;
  t.teardown(() => (closed ? undefined : pj.close()));
  const generated = loadJigFile(join(linkDir, 'jig.json'));
  t.same(generated, pj.generated);
  t.same(generated.slots[0]!.reset, { method: 'jig-cen', pulseMs: 50 });
  t.equal(generated.slots[0]!.uart.port, join(linkDir, 'uart1'));
  const wt = generated.meters.wt!;
  if (wt.kind !== 'scpi') throw new Error('meter kind changed');
  t.match(wt.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  t.ok(isLink(join(linkDir, 'io0')) && isLink(join(linkDir, 'uart1')), 'io0 and uart1 links exist');
  t.notOk(existsSync(join(linkDir, 'wt0')), 'the SCPI meter gets no pty');

  const table = formatPtyJigTable(pj.devices);
  t.comment(table);
  t.match(table, /uart1\s+uart\s+1\s+\S+uart1 -> \/dev\/pts\/\d+\s+reset modem-lines -> jig-cen \(pty has no DTR\/RTS; CEN is io0 pin 2\)/);
  t.match(table, /wt0\s+scpi\s+1\s+tcp:\/\/127\.0\.0\.1:\d+/);

  const port = Number(/:(\d+)$/.exec(wt.address)![1]);
  const idn = await new Promise<string>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write('*IDN?\n'));
    let rx = '';
    sock.on('data', (d) => {
      rx += d.toString('latin1');
      if (rx.includes('\n')) {
        sock.destroy();
        resolve(rx.trim());
      }
    });
    sock.on('error', reject);
  });
  t.equal(idn, 'YOKOGAWA,WT310E,C2QD12345,F1.03', 'the virtual WT310E answers on its TCP port');

  await pj.close();
  closed = true;
  for (const f of ['io0', 'uart1', 'jig.json']) t.notOk(existsSync(join(linkDir, f)) || isLink(join(linkDir, f)), `${f} removed`);
});

t.test('startup errors are typed with one clear message', async (t) => {
  await t.rejects(startVirtualJigOnPtys({ jigPath: join(dir, 'missing.json'), linkDir: join(dir, 'l1'), seed: 1 }), {
    name: 'ConfigError',
    message: /cannot read jig file/,
  });
  const file = join(dir, 'plain-file');
  writeFileSync(file, 'x');
  await t.rejects(startVirtualJigOnPtys({ jigPath: ONE_SLOT_FILE, linkDir: join(file, 'sub'), seed: 1 }), {
    name: 'ConfigError',
    message: /link directory .* is not a writable directory/,
  });
  await t.rejects(startVirtualJigOnPtys({ jigPath: ONE_SLOT_FILE, linkDir: join(dir, 'l2'), seed: 1, socatPath: '/nonexistent/socat' }), {
    name: 'TransportError',
    message: /cannot run \/nonexistent\/socat: it is needed to create the ptys/,
  });
  t.notOk(existsSync(join(dir, 'l2', 'io0')), 'nothing left behind');

  // Through the CLI: exit code of the failure class, one line on stderr.
  const r = await execa('node', [BIN, 'sim', '--jig', join(dir, 'missing.json'), '--pty', '--link-dir', join(dir, 'l3')], {
    reject: false,
    env: { PLUGRIG_LOG: 'silent' },
    timeout: 120_000,
  });
  t.equal(r.exitCode, 2, 'E_CONFIG exit code');
  t.match(r.stderr, /^plugrig: cannot read jig file .*missing\.json/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('plugrig sim --jig virtual-1slot --pty: other processes drive the whole jig through the ptys', async (t) => {
  const linkDir = join(dir, 'links');
  const jigFile = join(linkDir, 'jig.json');
  // Without the heartbeat pin: this test drives mains with raw Firmata writes and reads it from other
  // processes after closing the board (test/jig-heartbeat-kill.test.ts covers the watchdog).
  const raw = JSON.parse(readFileSync(ONE_SLOT_FILE, 'utf8')) as { ioBoards: Record<string, Record<string, unknown>> };
  delete raw.ioBoards.io0!.heartbeat;
  const noWatchdogFile = join(dir, 'virtual-1slot-no-heartbeat.json');
  writeFileSync(noWatchdogFile, JSON.stringify(raw));
  const sim = await startPtySim(t, noWatchdogFile, linkDir);
  const stdout = sim.stdout();
  t.notOk(sim.exited(), 'the simulator stays up');
  t.comment(stdout);
  const io0 = join(linkDir, 'io0');
  const pzem0 = join(linkDir, 'pzem0');
  const uart1 = join(linkDir, 'uart1');
  t.match(stdout, new RegExp(`io0\\s+io-board\\s+1\\s+${io0} -> /dev/pts/\\d+`));
  t.match(stdout, new RegExp(`pzem0\\s+pzem004t\\s+1\\s+${pzem0} -> /dev/pts/\\d+`));
  t.match(stdout, new RegExp(`uart1\\s+uart\\s+1\\s+${uart1} -> /dev/pts/\\d+`));
  t.match(stdout, `generated jig file: ${jigFile}`);

  const jig = loadJigFile(jigFile);
  t.equal(jig.ioBoards.io0!.port, io0);
  t.match(jig.meters.ref0, { kind: 'pzem004t', port: pzem0, address: 1 });
  t.equal(jig.slots[0]!.uart.port, uart1);
  t.equal(jig.slots[0]!.reset.method, 'jig-cen');

  const links: SerialLink[] = [];
  t.teardown(() => Promise.all(links.map((l) => l.close())));
  const io = await openLink(io0, { baudRate: 57600, clock });
  const uart = await openLink(uart1, { baudRate: 115200, clock });
  links.push(io, uart);

  // Firmata: no DTR on a pty, so the board does not reboot on open; it answers the firmware query.
  io.discardInput();
  await io.write(FIRMATA_QUERY_FIRMWARE_REQ);
  let reply = await io.readUntil(Uint8Array.of(0xf7), 10_000);
  while (reply[0] !== 0xf0 || reply[1] !== 0x79) reply = await io.readUntil(Uint8Array.of(0xf7), 10_000);
  t.equal(hex(reply), hex(FIRMATA_REPORT_FIRMWARE), 'REPORT_FIRMWARE 2.5 StandardFirmata.ino over the pty');

  // The slot's UART is behind the open isolation relay: LinkCheck goes nowhere.
  await uart.write(LINK_CHECK_TX);
  const before = await uart.drainInput(1000, 3000);
  t.equal(before.length, 0, 'no reply while the UART is isolated');

  // Close the isolation relay (pin 4) and switch 3V3 on (pin 3): the chip powers up in its ROM and
  // listens for LinkCheck during its link window. Should the window pass unseen (a stalled
  // machine), pulse CEN (pin 2) and try again.
  for (const pin of [4, 3, 2]) await io.write(setOutput(pin));
  await io.write(setPin(4, true));
  let got = new Uint8Array(0);
  for (let attempt = 0; attempt < 5 && indexOf(got, LINK_CHECK_RX) < 0; attempt++) {
    if (attempt === 0) await io.write(setPin(3, true));
    else {
      await io.write(setPin(2, true));
      await clock.sleep(60);
      await io.write(setPin(2, false));
    }
    const seen: number[] = [...got];
    const off = uart.onData((b) => seen.push(...b));
    const until = clock.now() + 1500;
    while (clock.now() < until && indexOf(Uint8Array.from(seen), LINK_CHECK_RX) < 0) {
      await uart.write(LINK_CHECK_TX);
      await clock.sleep(20);
    }
    off();
    got = Uint8Array.from(seen);
    if (indexOf(got, LINK_CHECK_RX) < 0) t.comment(`link window missed (attempt ${attempt + 1}), pulsing CEN`);
  }
  t.ok(indexOf(got, LINK_CHECK_RX) >= 0, `LinkCheck reply ${hex(LINK_CHECK_RX)} through the pty once isolation and 3V3 are on`);

  // Isolate the module again and close the jig's mains relay (pin 5): the PZEM on its own pty sees mains.
  await io.write(setPin(3, false));
  await io.write(setPin(4, false));
  await io.write(setOutput(5));
  await io.write(setPin(5, true));

  // Raw Modbus on the PZEM pty.
  const pz = await openLink(pzem0, { baudRate: 9600, clock });
  links.push(pz);
  let frame: Uint8Array | undefined;
  for (let attempt = 0; attempt < 8 && !frame; attempt++) {
    pz.discardInput();
    await pz.write(PZEM_READ_INPUT_REQ_01);
    frame = await pz.read(25, 1500).catch(() => undefined);
  }
  if (!frame) throw new Error('the PZEM never answered over its pty');
  t.equal(hex(frame.subarray(0, 3)), '01 04 14', 'read-input-registers reply, 20 data bytes');
  t.ok(crcOk(frame), 'reply CRC');
  await pz.close();

  // Our client over the same pty.
  const meter = await Pzem004tMeter.open({
    stream: new SerialPortStream({ binding: autoDetect(), path: pzem0, baudRate: 9600, autoOpen: false }),
    clock,
    address: 1,
    timeoutMs: 1000,
    retry: { attempts: 8, backoffMs: 100 },
  });
  // The PZEM shows the mean of its last ~1 s update interval: right after mains on it reads 0 V or a
  // blend, so give it two intervals.
  await clock.sleep(2200);
  const reading = await meter.read().finally(() => meter.close());
  t.ok(Math.abs(reading.volts - 230) < 230 * 0.03, `mains seen by the PZEM (${reading.volts} V: drifting, within 3 % of 230 V)`);
  t.ok(Math.abs(reading.hz - 50) <= 50 * 0.005 + 0.1, `${reading.hz} Hz (PZEM class ±0.5 %, 0.1 Hz steps)`);
  await io.close();
  await uart.close();

  // Other plugrig commands run against the generated jig file.
  let meterRun = await plugrig('meter', 'read', jigFile);
  for (let i = 0; i < 2 && meterRun.exitCode !== 0; i++) {
    t.comment(`meter read failed once: ${meterRun.stderr.trim()}`);
    meterRun = await plugrig('meter', 'read', jigFile);
  }
  t.comment(meterRun.stdout);
  t.equal(meterRun.exitCode, 0, 'plugrig meter read exits 0');
  t.match(meterRun.stdout, /PZEM-004T v3\.0 s\/n PZEM-SIM-0001.*\(slot 1, meter "ref0"\)/);
  t.match(meterRun.stdout, /U 2[23]\d\.\d V/, 'mains voltage through the pty');

  const check = await plugrig('jig', 'check', jigFile);
  t.comment(`jig check (exit ${String(check.exitCode)}):\n${check.stdout}${check.stderr}`);
  t.match(check.stdout, `jig virtual-1slot (${jigFile}): file valid, 1 slot(s)`, 'jig check accepts the generated file');

  sim.child.kill('SIGTERM');
  const result = await sim.child;
  t.equal(result.exitCode, 0, 'SIGTERM: clean exit 0');
  for (const p of [io0, pzem0, uart1, jigFile]) t.notOk(existsSync(p) || isLink(p), `${p} removed`);
});

function plugrig(...args: string[]) {
  // A command that hangs after printing its result must not hang the test.
  return execa('node', [BIN, ...args], { reject: false, env: { PLUGRIG_LOG: 'silent' }, timeout: 25_000, forceKillAfterDelay: 5_000 });
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(haystack).indexOf(Buffer.from(needle));
}
