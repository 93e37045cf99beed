import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { StationNetwork, WifiJoinError } from '../sim/net/station-network.ts';

const A = Uint8Array.of(0xc8, 0x47, 0x8c, 0x00, 0x01, 0x01);
const B = Uint8Array.of(0xc8, 0x47, 0x8c, 0x00, 0x01, 0x02);

t.test('joins after the modelled delay, leases a stable loopback address, writes dnsmasq leases', async (t) => {
  const clock = new VirtualClock();
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-net-'));
  const leasesFile = join(dir, 'dnsmasq.leases');
  const net = new StationNetwork({ clock, ssid: 'rig', pass: 'pw-123456', leasesFile });
  net.attach(A, { hostname: () => 'obk8C000101' });
  net.attach(B, { hostname: () => 'obk8C000102' });
  t.equal(readFileSync(leasesFile, 'utf8'), '', 'empty leases file from the start');

  let joined: { ip: string } | undefined;
  const p = net.join(A, 'rig', 'pw-123456', new AbortController().signal).then((r) => (joined = r));
  await clock.sleep(1500);
  t.equal(joined, undefined, 'not yet: association + DHCP take ~1.6 s');
  await clock.sleep(200);
  await p;
  t.same(joined, { ip: '127.77.0.2' });
  const b = await Promise.all([net.join(B, 'rig', 'pw-123456', new AbortController().signal), clock.sleep(2000)]);
  t.equal(b[0].ip, '127.77.0.3');
  const lines = readFileSync(leasesFile, 'utf8').trim().split('\n');
  t.equal(lines.length, 2);
  t.match(lines[0], /^\d{10} c8:47:8c:00:01:01 127\.77\.0\.2 obk8C000101 01:c8:47:8c:00:01:01$/, 'dnsmasq format: expiry mac ip hostname client-id');
  t.ok(Number(lines[0]!.split(' ')[0]) > Date.now() / 1000, 'expiry in the future');

  net.leave(A);
  const again = await Promise.all([net.join(A, 'rig', 'pw-123456', new AbortController().signal), clock.sleep(2000)]);
  t.equal(again[0].ip, '127.77.0.2', 'same address after a reboot');
  t.equal(net.apAddress(A), '127.4.0.1', "AP-mode plugs at their own loopback address");
  t.equal(net.apAddress(B), '127.4.0.2');
  net.release(B);
  t.equal(readFileSync(leasesFile, 'utf8').trim().split('\n').length, 1, 'a released lease leaves the file');
});

t.test('wrong password, unknown SSID, "never joins" defect, abort: typed rejections without secrets', async (t) => {
  const clock = new VirtualClock();
  const net = new StationNetwork({ clock, ssid: 'rig', pass: 'right-password' });
  net.attach(A, { hostname: () => 'a' });
  net.attach(B, { hostname: () => 'b' }, { neverJoins: true });
  const tryJoin = async (mac: Uint8Array, ssid: string, pass: string, signal = new AbortController().signal) => {
    const p = net.join(mac, ssid, pass, signal).then(
      () => 'joined',
      (e: unknown) => e,
    );
    await clock.sleep(10_000);
    return p;
  };
  const wrong = await tryJoin(A, 'rig', 'wrong-password');
  t.ok(wrong instanceof WifiJoinError && wrong.reason === 'auth-failed', 'wrong password');
  t.notMatch(JSON.stringify({ m: (wrong as Error).message, c: (wrong as WifiJoinError).context }), /password"|wrong-password|right-password/, 'no password in the error');
  const none = await tryJoin(A, 'other', 'right-password');
  t.ok(none instanceof WifiJoinError && none.reason === 'no-network');
  const never = await tryJoin(B, 'rig', 'right-password');
  t.ok(never instanceof WifiJoinError && never.reason === 'never-joins', 'defect: never joins, even with the right password');
  const ac = new AbortController();
  const p = net.join(A, 'rig', 'right-password', ac.signal).then(
    () => 'joined',
    (e: unknown) => e,
  );
  await clock.sleep(100);
  ac.abort();
  await clock.sleep(3000);
  t.ok((await p) instanceof WifiJoinError, 'an aborted join (reboot) rejects');
  t.equal(net.leases().length, 0, 'no lease from any of these');
});
