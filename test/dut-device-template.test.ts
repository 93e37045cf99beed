import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { effectiveFlags, loadDeviceTemplate, parseDeviceTemplate, parseFlagWord, templatePinArrays } from '../rig/dut/device-template.ts';
import { OBK_ROLE_NAMES, roleIndex } from '../rig/dut/obk-roles.ts';
import { ConfigError } from '../rig/core/errors.ts';

const DIR = 'fixtures/devices';
const RMC021_PINS = { '6': 'BL0937CF1;0', '7': 'BL0937CF;0', '8': 'WifiLED_n;0', '10': 'Btn;1', '24': 'BL0937SEL;0', '26': 'Rel;1' };
const entry = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ vendor: 'Tuya', name: 'Plug', model: 'X1', chip: 'BK7231N', board: 'CB2S', pins: RMC021_PINS, ...over });

t.test('role table: the IOR numbers the reference names', async (t) => {
  t.equal(roleIndex('Rel'), 1);
  t.equal(roleIndex('Btn'), 3);
  t.equal(roleIndex('WifiLED_n'), 9);
  t.equal(roleIndex('BL0937SEL'), 17);
  t.equal(roleIndex('BL0937CF'), 18);
  t.equal(roleIndex('BL0937CF1'), 19);
  t.equal(roleIndex('BL0937SEL_n'), 64);
  t.equal(roleIndex('bl0937cf1'), 19, 'case-insensitive like PIN_ParsePinRoleName');
  t.equal(roleIndex('None'), 0);
  t.equal(roleIndex('Relay'), 1, 'legacy Relay');
  t.equal(roleIndex('Button_n'), 4, 'legacy Button_n');
  t.equal(roleIndex('Frobnicator'), undefined);
  t.equal(roleIndex(' '), undefined, 'the blank name of role 0 is not a role name');
  t.equal(OBK_ROLE_NAMES.length, 79);
});

t.test('every fixture loads, with the RMC021 pin map', async (t) => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
  t.ok(files.length >= 4, 'rmc021 and its siblings');
  for (const f of files) {
    const tp = loadDeviceTemplate(join(DIR, f));
    t.equal(tp.chip, 'BK7231N', `${f}: chip`);
    const { roles, channels } = templatePinArrays(tp);
    t.same(roles, [0, 0, 0, 0, 0, 0, 19, 18, 9, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 1, 0, 0], `${f}: roles as /api/pins shows them`);
    t.same(channels, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], `${f}: channels`);
  }
  const rmc = loadDeviceTemplate(join(DIR, 'rmc021.json'));
  t.equal(rmc.flags, 1024n);
  t.equal(rmc.command, 'startDriver NTP');
  t.equal(rmc.label, 'Tuya RMC021');
  t.same(rmc.pins.map((p) => `${p.pin}:${p.role}:${p.channel}`), ['6:BL0937CF1:0', '7:BL0937CF:0', '8:WifiLED_n:0', '10:Btn:1', '24:BL0937SEL:0', '26:Rel:1']);
  t.equal(loadDeviceTemplate(join(DIR, 'antela-f1s202-eu.json')).flags, (1n << 10n) | (1n << 30n), 'ANTELA: flags 10 + 30');
  const bing = loadDeviceTemplate(join(DIR, 'binglee-csh-plgpm-001.json'));
  t.equal(bing.flags, undefined, 'BingLee gives no flags');
  t.equal(effectiveFlags(bing), 1024n, 'then the plug keeps the default flag 10');
});

t.test('flags as a string or a number, legacy flag, split pins', async (t) => {
  t.equal(parseDeviceTemplate(entry({ flags: 1024 }), 'x').flags, 1024n, 'a number');
  t.equal(parseDeviceTemplate(entry({ flags: '1073742848' }), 'x').flags, 1073742848n, 'a string');
  t.equal(parseDeviceTemplate(entry({ flags: '-2147482624' }), 'x').flags, 2147484672n, 'negative: the signed low word /api/info prints');
  t.equal(parseDeviceTemplate(entry({ flags: '18446744073709551615' }), 'x').flags, 2n ** 64n - 1n, 'all 64 bits');
  const legacy = parseDeviceTemplate(entry({ flag: 6 }), 'x');
  t.equal(legacy.flag, 6);
  t.equal(effectiveFlags(legacy), 1024n | 64n, 'legacy flag on top of the default');
  const ch2 = parseDeviceTemplate(entry({ pins: { '10': 'Btn;1;2', '26': 'Relay;1' } }), 'x');
  t.same(ch2.pins, [
    { pin: 10, role: 'Btn', roleIndex: 3, channel: 1, channel2: 2 },
    { pin: 26, role: 'Rel', roleIndex: 1, channel: 1, channel2: 0 },
  ]);
  t.same(parseDeviceTemplate(entry({ pins: { '8': 'WifiLED_n' } }), 'x').pins[0], { pin: 8, role: 'WifiLED_n', roleIndex: 9, channel: 0, channel2: 0 }, 'missing channel = 0');
  t.equal(parseDeviceTemplate(entry(), 'x').command, '', 'no command = empty');
  const list = { version: 0.1, devices: [entry({ model: 'A' }), entry({ model: 'B', command: 'b' })] };
  t.equal(parseDeviceTemplate(list, 'list', 'B').command, 'b', 'pick from a list by model');
  t.throws(() => parseDeviceTemplate(list, 'list'), /lists 2 devices; name one \(A, B\)/);
});

t.test('clear errors', async (t) => {
  const err = (over: Record<string, unknown>): string => {
    try {
      parseDeviceTemplate(entry(over), 'bad.json');
    } catch (e) {
      t.type(e, ConfigError);
      return (e as Error).message;
    }
    t.fail('accepted');
    return '';
  };
  t.match(err({ pins: { '26': 'Relais;1' } }), /pins\["26"\]: unknown role "Relais"/);
  t.match(err({ pins: { '29': 'Rel;1' } }), /pins\["29"\]: pin "29" out of range \(BK7231N pins are 0\.\.28\)/);
  t.match(err({ pins: { P26: 'Rel;1' } }), /pin "P26" out of range/);
  t.match(err({ flags: '0x400' }), /flags: flag word "0x400" is not a number/);
  t.match(err({ flags: 'many' }), /flags: flag word "many" is not a number/);
  t.match(err({ flags: 1.5 }), /flags: flag word 1\.5 is not a number/);
  t.match(err({ flags: '18446744073709551616' }), /does not fit in 64 bits/);
  t.match(err({ pins: { '26': 'Rel;x' } }), /channel "x" is not a channel 0\.\.63/);
  t.match(err({ pins: { '26': 'Rel;64' } }), /not a channel 0\.\.63/);
  t.match(err({ flag: 'six' }), /flag: "six" is not a flag index/);
  t.match(err({ chip: undefined }), /chip: Required/);
  t.match(err({ command: 'x'.repeat(1568) }), /command: 1568 bytes, OpenBeken keeps at most 1567/);
  const many = err({ pins: { '26': 'Relais;1', '40': 'Rel;1' }, flags: 'x' });
  t.match(many, /unknown role[\s\S]*out of range[\s\S]*not a number/, 'all problems in one error');
  t.throws(() => loadDeviceTemplate('fixtures/devices/nope.json'), /cannot read device template fixtures\/devices\/nope\.json/);
  t.equal(typeof parseFlagWord('12'), 'bigint');
});
