import { existsSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RealClock, VirtualClock } from '../rig/core/clock.ts';
import { ConfigError, TransportError } from '../rig/core/errors.ts';
import { openLink } from '../rig/serial/open-link.ts';
import { PtyBridge } from '../sim/serial/pty-bridge.ts';
import { ScriptedDevice } from '../sim/serial/scripted-device.ts';

const dir = mkdtempSync(join(tmpdir(), 'plugrig-pty-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('a real serialport client talks to a virtual device through the pty, 20 reopens', async (t) => {
  const clock = new RealClock();
  const dev = ScriptedDevice.echo(115200);
  const link = join(dir, 'dut1');
  const bridge = await PtyBridge.start({ device: dev, link, clock });
  t.teardown(() => bridge.close());
  t.match(bridge.ptyPath, /^\/dev\/pts\/\d+$/);
  t.equal(readlinkSync(link), bridge.ptyPath, 'link points at the client pty');

  for (let i = 0; i < 20; i++) {
    const client = await openLink(link, { baudRate: 115200, clock });
    const msg = Uint8Array.of(0x01, 0xe0, 0xfc, 0x01, i);
    await client.write(msg);
    t.same(await client.read(5, 2000), msg, `echo through the pty, open #${i + 1}`);
    if (i === 0) {
      await t.rejects(client.setModemLines({ dtr: false }), { name: 'TransportError', message: /cannot drive DTR\/RTS/ });
    }
    await client.close();
  }
  t.same(dev.receivedBytes().length, 100, 'the device saw every byte once');
  t.equal(bridge.failure(), null);
  t.equal(bridge.wire.counters().garbledToDevice, 0, 'ptys never garble');

  // Replies are paced at the device's baud: 480 bytes at 9600 baud take 500 ms of wall time.
  dev.setBaudRate(9600);
  const client = await openLink(link, { baudRate: 9600, clock });
  const t0 = clock.now();
  dev.send(new Uint8Array(480).fill(0x5a));
  const got = await client.read(480, 5000);
  const elapsed = clock.now() - t0;
  t.equal(got.length, 480);
  t.ok(elapsed >= 490, `paced at device baud (${elapsed.toFixed(0)} ms)`);
  await client.close();

  await bridge.close();
  t.notOk(existsSync(link), 'close removed the link');
  await t.rejects(openLink(link, { baudRate: 115200, clock }), { name: 'TransportError', message: /does not exist/ });
});

t.test('socat dying is reported as a typed failure, and clients see the port vanish', async (t) => {
  const clock = new RealClock();
  const link = join(dir, 'dut2');
  const bridge = await PtyBridge.start({ device: ScriptedDevice.echo(115200), link, clock });
  t.teardown(() => bridge.close());
  const client = await openLink(link, { baudRate: 115200, clock });
  const failed = new Promise<TransportError>((resolve) => bridge.onFailure(resolve));
  // The client may see the hang-up before or after the bridge reports it, so its read is observed
  // from the start: a rejection landing while we wait for `failed` must not go unhandled.
  const readFails = t.rejects(
    client.read(1, 5000),
    { name: 'TransportError', message: /closed unexpectedly|vanished/ },
    'the client read fails instead of hanging',
  );
  // Kill socat from outside, as a crash would.
  process.kill(readSocatPid(bridge), 'SIGKILL');
  const err = await failed;
  t.type(err, TransportError);
  t.match(err.message, /socat exited unexpectedly|internal pty closed|I\/O error/);
  t.equal(bridge.failure(), err);
  await readFails;
  t.equal(client.isOpen(), false, 'the link knows its port is gone');
  await t.rejects(client.write(Uint8Array.of(0x55)), { name: 'TransportError' }, 'writes on the dead link fail');
  await client.close();
});

t.test('start-up errors are typed', async (t) => {
  await t.rejects(
    PtyBridge.start({ device: new ScriptedDevice(115200), link: join(dir, 'x'), clock: new VirtualClock() }),
    ConfigError,
    'a pty needs wall time',
  );
  const file = join(dir, 'regular-file');
  writeFileSync(file, 'keep me');
  await t.rejects(PtyBridge.start({ device: new ScriptedDevice(115200), link: file }), ConfigError, 'never replaces a real file');
  t.ok(existsSync(file));
  await t.rejects(
    PtyBridge.start({ device: new ScriptedDevice(115200), link: join(dir, 'y'), socatPath: '/nonexistent/socat' }),
    { name: 'TransportError', message: /socat ended before the ptys were ready/ },
  );
});

function readSocatPid(bridge: PtyBridge): number {
  const pid = bridge.pid();
  if (pid === undefined) throw new Error('socat has no pid');
  return pid;
}
