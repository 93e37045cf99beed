import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLease, locatePlug, parseDnsmasqLeases } from '../rig/dut/plug-locator.ts';
import { parseJig } from '../rig/jig/jig-config.ts';
import { ConfigError, TimeoutError } from '../rig/core/errors.ts';

const NOW = 1_764_580_000;
const LEASES = [
  `${NOW + 3600} aa:bb:cc:00:00:01 192.168.50.11 laptop 01:aa:bb:cc:00:00:01`,
  `${NOW - 10} C8:47:8C:80:A2:FB 192.168.50.9 obk8C80A2FB *`,
  `${NOW + 7200} C8:47:8C:80:A2:FB 192.168.50.23 obk8C80A2FB *`,
  'duid 00:01:00:01:2c:1f:2e:3d:52:54:00:12:34:56',
  `${NOW + 100} 1234567 fd00::5 host6 00:01:00:01`,
  'garbage line',
  `0 c8:47:8c:00:01:01 192.168.50.30 obk8C000101 *`,
].join('\n');

t.test('dnsmasq leases: parse and pick the live lease of a MAC', async (t) => {
  const leases = parseDnsmasqLeases(LEASES);
  t.equal(leases.length, 4, 'duid, IPv6 and garbage lines skipped');
  t.same(leases[1], { expiry: NOW - 10, mac: 'c8:47:8c:80:a2:fb', ip: '192.168.50.9', hostname: 'obk8C80A2FB', clientId: '*' });
  t.equal(findLease(leases, 'c8:47:8c:80:a2:fb', NOW)?.ip, '192.168.50.23', 'the expired one is ignored');
  t.equal(findLease(leases, 'C8-47-8C-00-01-01', NOW)?.ip, '192.168.50.30', 'expiry 0 = infinite; MAC spelling normalised');
  t.equal(findLease(leases, '00:00:00:00:00:01', NOW), undefined);
});

t.test('fixed URL and sim: addresses', async (t) => {
  t.same(await locatePlug({ url: 'http://192.168.4.1/' }, { slot: 1 }), { url: 'http://192.168.4.1', via: 'jig file URL' });
  const resolved = await locatePlug({ url: 'sim:plug1' }, { slot: 1, resolveHttp: (a) => ({ baseUrl: `http://127.0.0.1:4321`, via: `virtual jig (${a})` }) });
  t.same(resolved, { url: 'http://127.0.0.1:4321', via: 'virtual jig (sim:plug1)' });
  await t.rejects(locatePlug({ url: 'sim:plug1' }, { slot: 2 }), { name: 'ConfigError', message: /slot 2: plug address sim:plug1 names a virtual plug, but no virtual jig is running/ });
  await t.rejects(locatePlug(undefined, { slot: 3 }), { name: 'ConfigError', message: /slot 3 has no "plug" section/ });
  await t.rejects(locatePlug({ leases: '/x' }, { slot: 1 }), { name: 'ConfigError', message: /finds its plug by MAC in \/x, but no MAC is known/ });
});

t.test('by MAC from the leases file, waiting for the lease', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-leases-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dnsmasq.leases');
  writeFileSync(file, LEASES.split('\n')[0] + '\n');
  setTimeout(() => writeFileSync(file, LEASES + '\n'), 120);
  const loc = await locatePlug({ leases: file, port: 8080 }, { slot: 1, mac: 'c8:47:8c:80:a2:fb', timeoutMs: 3000, pollMs: 20, nowEpochS: () => NOW });
  t.same(loc, { url: 'http://192.168.50.23:8080', via: `DHCP lease of c8:47:8c:80:a2:fb in ${file}` });
  t.match(readFileSync(file, 'utf8'), /obk8C80A2FB/);

  const late = await locatePlug({ leases: file }, { slot: 1, mac: 'c8:47:8c:00:01:01', timeoutMs: 500, pollMs: 20, nowEpochS: () => NOW });
  t.equal(late.url, 'http://192.168.50.30', 'port 80 is not written');

  const t0 = Date.now();
  const err = await locatePlug({ leases: file }, { slot: 4, mac: '00:11:22:33:44:55', timeoutMs: 200, pollMs: 20, nowEpochS: () => NOW }).catch((e: unknown) => e);
  t.type(err, TimeoutError);
  t.match((err as Error).message, new RegExp(`slot 4: plug 00:11:22:33:44:55 did not get a DHCP lease in ${file.replace(/[.]/g, '\\.')} within 0\\.2 s \\(no lease for it yet\\)`));
  t.ok(Date.now() - t0 >= 180, 'it waited');
  const missing = await locatePlug({ leases: join(dir, 'none') }, { slot: 1, mac: '00:11:22:33:44:55', timeoutMs: 60, pollMs: 20 }).catch((e: unknown) => e);
  t.match((missing as Error).message, /cannot read the leases file: ENOENT/);
});

t.test('jig schema: the optional plug section', async (t) => {
  const base = JSON.parse(readFileSync('fixtures/jigs/virtual-1slot.json', 'utf8')) as { slots: Array<Record<string, unknown>> };
  const withPlug = (plug: unknown): unknown => ({ ...base, slots: [{ ...base.slots[0], plug }] });
  t.same(parseJig(withPlug({ url: 'sim:plug1' })).slots[0]!.plug, { url: 'sim:plug1' });
  t.same(parseJig(withPlug({ leases: '/var/lib/misc/dnsmasq.leases', leaseTimeoutMs: 30000 })).slots[0]!.plug, { leases: '/var/lib/misc/dnsmasq.leases', leaseTimeoutMs: 30000 });
  t.equal(parseJig(base).slots[0]!.plug, undefined, 'optional: existing jig files stay valid');
  t.throws(() => parseJig(withPlug({ url: 'http://a', leases: '/b' })), /plug needs exactly one of "url" or "leases"/);
  t.throws(() => parseJig(withPlug({})), /plug needs exactly one of "url" or "leases"/);
  t.throws(() => parseJig(withPlug({ url: 'ftp://x' })), /url looks like/);
  t.throws(() => parseJig(withPlug({ url: 'http://x', pass: 'y' })), ConfigError, 'strict');
  const prov = parseJig({ ...base, provisioning: { wifiSsid: 'plugrig-station', secrets: 'secrets.env' } });
  t.same(prov.provisioning, { wifiSsid: 'plugrig-station', secrets: 'secrets.env' });
});
