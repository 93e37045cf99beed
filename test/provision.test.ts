import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { RealClock, VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { DutError, PlugrigError } from '../rig/core/errors.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { Bk7231Flasher } from '../rig/bk7231/flasher.ts';
import { ModemLineReset } from '../rig/bk7231/reset.ts';
import { crc32Raw } from '../rig/bk7231/protocol/crc32.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';
import { loadDeviceTemplate } from '../rig/dut/device-template.ts';
import { provisionOffline } from '../rig/dut/provision-offline.ts';
import { infoFlagsString, provisionOverHttp, templateImportCommands } from '../rig/dut/provision-http.ts';
import { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import { loadProvisioningSecrets, parseSecretsFile } from '../rig/dut/provisioning-secrets.ts';
import { obkCrc8 } from '../rig/obk/config-sector.ts';
import { fakeObk } from './fixtures/fake-obk-plug.ts';

const RMC021 = loadDeviceTemplate('fixtures/devices/rmc021.json');
const quiet = createLogger({}, 'silent');

t.test('the web app import sequence for RMC021 (openbeken-bl0937.md §1.4)', async (t) => {
  t.same(
    templateImportCommands(RMC021).map((l) => l.command),
    [
      'ClearIO',
      'lfs_format',
      'StartupCommand ""',
      'stopDriver *',
      'backlog setPinRole 6 BL0937CF1; setPinChannel 6 0',
      'backlog setPinRole 7 BL0937CF; setPinChannel 7 0',
      'backlog setPinRole 8 WifiLED_n; setPinChannel 8 0',
      'backlog setPinRole 10 Btn; setPinChannel 10 1',
      'backlog setPinRole 24 BL0937SEL; setPinChannel 24 0',
      'backlog setPinRole 26 Rel; setPinChannel 26 1',
      'Flags 1024',
      'StartupCommand "startDriver NTP"',
    ],
  );
  const bing = loadDeviceTemplate('fixtures/devices/binglee-csh-plgpm-001.json');
  t.notOk(templateImportCommands(bing).some((l) => l.command.startsWith('Flags') || l.command.startsWith('StartupCommand "s')), 'no flags, no command: not sent');
  t.equal(infoFlagsString(1024n), '1024');
  t.equal(infoFlagsString((1n << 31n) | 1024n), '-2147482624', 'signed low word, as /api/info prints it');
  t.equal(infoFlagsString((1n << 40n) | 1024n), '1024', 'high word not shown');
});

t.test('offline: config sector written in the ROM session, RF sector untouched', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const chip = new VirtualBk7231({ initialSr: 0x4004, seed: 7 });
  bus.attach('dut', chip, { modemLines: true });
  chip.powerOn();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  t.teardown(() => link.close());
  const flasher = new Bk7231Flasher({ port: link, reset: ModemLineReset.bk7231tools(), log: quiet });
  const info = await flasher.connect();
  const rfBefore = Uint8Array.from(chip.flash.read(0x1d0000, 0x1000));
  const neighbour = Uint8Array.from(chip.flash.read(0x1d2000, 0x1000));
  const r = await provisionOffline({ session: flasher, template: RMC021, wifi: { ssid: 'plugrig-station', pass: 'Pa55-word' } });
  t.equal(r.address, 0x1d1000);
  t.equal(r.mac, info.mac);
  t.match(r.shortName, /^obk[0-9A-F]{8}$/);
  const cfg = chip.flash.read(0x1d1000, 0x1000);
  t.same([...cfg.subarray(0, 3)], [0x43, 0x46, 0x47], 'CFG ident on the chip');
  t.equal(cfg[3], obkCrc8(cfg.subarray(4, 3584)), 'CRC8 valid on the chip');
  t.equal(r.crc, crc32Raw(cfg), 'reported CRC is the chip content');
  t.same([...cfg.subarray(0x2d8, 0x2de)], info.mac!.split(':').map((h) => parseInt(h, 16)), 'the ROM MAC in the config');
  t.equal(Buffer.from(cfg.subarray(0x14, 0x14 + 15)).toString(), 'plugrig-station');
  t.equal(cfg[0x33e + 26], 1, 'P26 Rel');
  t.same(chip.flash.read(0x1d0000, 0x1000), rfBefore, 'RF/MAC sector byte-identical');
  t.same(chip.flash.read(0x1d2000, 0x1000), neighbour, 'the sector after it too');

  const again = await provisionOffline({ session: flasher, template: RMC021, wifi: { ssid: 'plugrig-station', pass: 'Pa55-word' } });
  t.equal(again.sectorsWritten, 0, 'same config again: the diff writes nothing');

  // A session whose RF sector changes under the write is caught (a flasher bug must not pass silently).
  let calls = 0;
  const evil = {
    info: flasher.info,
    write: (img: Uint8Array, off: number, o?: { diff?: boolean }) => flasher.write(img, off, o),
    crc: async (s: number, l: number) => (s === 0x1d0000 ? 0x1234 + calls++ : flasher.crc(s, l)),
  };
  await t.rejects(provisionOffline({ session: evil, template: RMC021 }), { name: 'DutError', message: /the RF\/MAC sector changed/ });
  await t.rejects(provisionOffline({ session: { ...evil, info: { mac: null } }, template: RMC021 }), /holds no MAC/);
  const liar = { info: flasher.info, write: (img: Uint8Array, off: number) => flasher.write(img, off), crc: async (s: number, l: number) => (s === 0x1d1000 ? 0 : flasher.crc(s, l)) };
  await t.rejects(provisionOffline({ session: liar, template: RMC021 }), /reads back with CRC 0x0/);
});

t.test('over HTTP: import, Wi-Fi, restart, read back', async (t) => {
  const plug = await fakeObk();
  t.teardown(() => plug.close());
  const clock = new RealClock();
  const client = new ObkHttpClient({ url: plug.url, log: quiet, clock, secrets: ['Pa55-word'] });
  const r = await provisionOverHttp({ client, template: RMC021, wifi: { ssid: 'plugrig-station', pass: 'Pa55-word' }, clock, rebootTimeoutMs: 10_000, expectMac: 'C8:47:8C:80:A2:FB' });
  t.equal(plug.boots, 2, 'rebooted once');
  t.equal(plug.ssid, 'plugrig-station');
  t.equal(plug.pass, 'Pa55-word', 'the password reached the plug');
  t.same(r.warnings, ['lfs_format: 501 Unknown command', 'stopDriver *: 400 Command found but returned error'], 'harmless preamble refusals are warnings');
  t.equal(r.info.startcmd, 'startDriver NTP');
  t.equal(r.info.flags, '1024');
  t.notOk(JSON.stringify(r).includes('Pa55-word'), 'the result carries no password');
  t.equal(plug.commands.filter((c) => c.startsWith('backlog')).length, 6, 'one backlog per pin');
});

t.test('over HTTP: differences are listed, refusals and missing reboots fail clearly', async (t) => {
  const clock = new RealClock();
  const plug = await fakeObk();
  t.teardown(() => plug.close());
  plug.faults.ignorePin = 26;
  const client = new ObkHttpClient({ url: plug.url, log: quiet, clock });
  const e = await provisionOverHttp({ client, template: RMC021, clock, rebootTimeoutMs: 10_000, expectMac: '00:11:22:33:44:55' }).catch((x: unknown) => x);
  t.type(e, DutError);
  t.match((e as Error).message, /provisioning Tuya RMC021 over HTTP did not take on http:\/\/127\.0\.0\.1:\d+: 2 difference\(s\)\n  P26 role: expected Rel \(1\), plug has None \(0\)\n  MAC: expected 00:11:22:33:44:55, plug at .* reports c8:47:8c:80:a2:fb/);
  t.same((e as DutError).context.differences, ['P26 role: expected Rel (1), plug has None (0)', `MAC: expected 00:11:22:33:44:55, plug at ${plug.url} reports c8:47:8c:80:a2:fb`]);

  const p2 = await fakeObk();
  t.teardown(() => p2.close());
  p2.faults.refuse = 'Flags';
  await t.rejects(provisionOverHttp({ client: new ObkHttpClient({ url: p2.url, log: quiet, clock }), template: RMC021, clock }), { name: 'DutError', message: /OpenBeken refused "Flags 1024": 400 Bad argument/ });

  const p3 = await fakeObk();
  t.teardown(() => p3.close());
  p3.faults.neverReboot = true;
  await t.rejects(provisionOverHttp({ client: new ObkHttpClient({ url: p3.url, log: quiet, clock }), template: RMC021, clock, rebootTimeoutMs: 1500 }), {
    name: 'TimeoutError',
    message: /not back after the restart within 1\.5 s: still up for \d+ s \(no reboot yet\)/,
  });
});

t.test('secrets: environment, secrets file, never in logs or errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-secrets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'secrets.env');
  writeFileSync(file, '# station\nPLUGRIG_WIFI_PASS="file-Pass 1"\nPLUGRIG_WEB_PASS=web-from-file\n');
  t.same(parseSecretsFile('A=1\n# c\n\nB = "x y"\n', 'f'), { A: '1', B: 'x y' });
  t.throws(() => parseSecretsFile('PLUGRIG_WIFI_PASS hunter2', 'f'), /line 1 is not KEY=VALUE$/, 'the bad line is not echoed');
  const fromFile = loadProvisioningSecrets({ env: {}, secretsFile: file, wifiSsid: 'lab' });
  t.same(fromFile.wifi, { ssid: 'lab', pass: 'file-Pass 1' });
  t.equal(fromFile.webPassword, 'web-from-file');
  t.same(fromFile.sources, [`PLUGRIG_WIFI_PASS from ${file}`, `PLUGRIG_WEB_PASS from ${file}`], 'sources named, values not');
  const fromEnv = loadProvisioningSecrets({ env: { PLUGRIG_WIFI_PASS: 'env-pass', PLUGRIG_WIFI_SSID: 'env-ssid' }, secretsFile: file, wifiSsid: 'lab' });
  t.same(fromEnv.wifi, { ssid: 'env-ssid', pass: 'env-pass' }, 'the environment wins');
  t.same(fromEnv.secrets, ['env-pass', 'web-from-file']);
  t.same(loadProvisioningSecrets({ env: {} }).wifi, undefined, 'no password: no Wi-Fi');
  t.throws(() => loadProvisioningSecrets({ env: {}, requireWifi: true }), /no Wi-Fi credentials for provisioning: set PLUGRIG_WIFI_PASS/);
  t.throws(() => loadProvisioningSecrets({ env: {}, secretsFile: join(dir, 'nope') }), /cannot read secrets file .*ENOENT/);

  // The whole HTTP path with a logger at trace level: no password anywhere in its output or the error.
  const PASS = 'Zz-Wifi-Secret-9';
  const WEB = 'Web-Secret-77';
  const lines: string[] = [];
  const log = pino({ level: 'trace' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  const plug = await fakeObk();
  t.teardown(() => plug.close());
  plug.faults.ignorePin = 7;
  const clock = new RealClock();
  const client = new ObkHttpClient({ url: plug.url, log, clock, secrets: [PASS, WEB], webPassword: WEB });
  const e = await provisionOverHttp({ client, template: RMC021, wifi: { ssid: 'lab', pass: PASS }, webPassword: WEB, clock, log, rebootTimeoutMs: 10_000 }).catch((x: unknown) => x);
  t.type(e, PlugrigError, 'fails (P7 ignored by the plug)');
  t.equal(plug.pass, PASS, 'the password did reach the plug');
  const everything = [lines.join(''), (e as Error).message, JSON.stringify((e as PlugrigError).toJSON()), String((e as Error).stack)].join('\n');
  t.ok(lines.length > 5, 'the run was logged');
  for (const s of [PASS, encodeURIComponent(PASS), WEB, Buffer.from(`admin:${WEB}`).toString('base64')]) t.notOk(everything.includes(s), `no ${s.slice(0, 4)}… in logs or error`);
});
