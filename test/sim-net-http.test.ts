import t, { type Test } from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealClock } from '../rig/core/clock.ts';
import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';
import { MainsNetwork } from '../sim/mains/mains-network.ts';
import { StationNetwork, freeStationPort } from '../sim/net/station-network.ts';
import { ObkPlug, type ObkPlugDefects } from '../sim/plug/obk-plug.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../sim/jig/virtual-jig.ts';
import { provisionedObkImages, rmc021Config } from './fixtures/obk-plug-flash.ts';

const CURL = '/usr/bin/curl';

/** Plugs on one station network, on wall time (the HTTP servers run on real sockets). */
async function station(t: Test) {
  const clock = new RealClock();
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-net-http-'));
  const leasesFile = join(dir, 'dnsmasq.leases');
  const net = new StationNetwork({ clock, ...DEFAULT_VIRTUAL_WIFI, leasesFile, httpPort: await freeStationPort() });
  const mains = new MainsNetwork({ clock, volts: 230, hz: 50 });
  const plugs: ObkPlug[] = [];
  t.teardown(async () => {
    await Promise.all(plugs.map((p) => p.dispose()));
  });
  const add = (id: number, o: { provisioned: boolean; defects?: ObkPlugDefects }) => {
    const mac = Uint8Array.of(0xc8, 0x47, 0x8c, 0x00, 0x07, id);
    const branch = mains.branch(`p${id}`);
    const config = rmc021Config(mac, o.provisioned ? {} : { wifi: null });
    const chip = new VirtualBk7231({ seed: id, mac, linkWindowMs: 300, initialImages: provisionedObkImages(mac, config) });
    chip.connect({ send: () => {} }, clock);
    const plug = new ObkPlug({ chip, clock, branch, network: net, defects: o.defects, seed: id });
    plugs.push(plug);
    plug.setSupply3v3(true);
    return { mac, plug, chip };
  };
  return { clock, net, leasesFile, add };
}

async function curl(args: string[]): Promise<{ exitCode: number; stdout: string }> {
  const r = await execa(CURL, ['-s', '-S', '--max-time', '3', ...args], { reject: false });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout };
}

async function until<T>(ms: number, read: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = read();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

t.test('curl finds plugs by lease (one port, one loopback address each), an AP-mode plug at its own address; HTTP stalls', async (t) => {
  const s = await station(t);
  const a = s.add(1, { provisioned: true });
  const b = s.add(2, { provisioned: true });
  const ap = s.add(3, { provisioned: false });
  const stalled = s.add(4, { provisioned: true, defects: { httpStalls: true } });
  await until(15_000, () => (s.net.leases().length === 3 ? true : undefined));
  const leases = readFileSync(s.leasesFile, 'utf8').trim().split('\n').map((l) => l.split(' '));
  t.equal(leases.length, 3, 'three joined plugs in the dnsmasq leases file');
  const byMac = new Map(leases.map((l) => [l[1]!, l[2]!]));
  const port = s.net.httpPort;
  for (const p of [a, b]) {
    const mac = Array.from(p.mac, (x) => x.toString(16).padStart(2, '0')).join(':');
    const ip = byMac.get(mac)!;
    const r = await curl([`http://${ip}:${port}/api/info`]);
    t.equal(r.exitCode, 0, `curl reached ${mac} at ${ip}:${port}`);
    t.match(r.stdout, new RegExp(`"mac":"${mac}"`), 'and it is that plug');
  }
  const on = await curl(['-i', `http://${byMac.get('c8:47:8c:00:07:01')}:${port}/cm?cmnd=POWER%20ON`]);
  t.match(on.stdout, /^HTTP\/1\.1 200 OK\n/, 'bare-LF status line, read by curl');
  t.match(on.stdout, /\{"POWER":"ON"\}$/);
  t.equal(a.plug.pinOutput(26), true, 'the command drove P26');

  await until(15_000, () => (ap.plug.obkFirmware()?.accessPoint() ? true : undefined));
  const apUrl = `http://${s.net.apAddress(ap.mac)}:${port}`;
  const apInfo = await curl([`${apUrl}/api/info`]);
  t.equal(apInfo.exitCode, 0, `the AP-mode plug answers at ${apUrl}`);
  t.match(apInfo.stdout, /"mac":"c8:47:8c:00:07:03"/, 'and it is that plug');
  t.equal(ap.plug.obkFirmware()!.accessPoint()!.ssid, 'OpenBK7231N_8C000703', 'its AP is named from MAC bytes 2..5');
  t.equal(s.net.lease(ap.mac), undefined, 'and has no lease');

  const st = await curl(['--max-time', '1.5', `http://${s.net.staAddress(stalled.mac)}:${port}/api/info`]);
  t.equal(st.exitCode, 28, 'HTTP stalls: the connection is accepted and never answered (curl times out)');
});
