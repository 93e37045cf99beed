import t from 'tap';
import { buildObkConfigSector, obkCrc8, obkDefaultNames, macBytes, OBK_CONFIG_ADDRESS } from '../rig/obk/config-sector.ts';
import { ConfigError } from '../rig/core/errors.ts';

/**
 * A second, independent CRC: the reflected CRC-8 equals the MSB-first CRC with the unreflected
 * polynomial 0x31 over bit-reversed input bytes, bit-reversed at the end.
 */
const rev8 = (b: number): number => {
  let r = 0;
  for (let i = 0; i < 8; i++) if (b & (1 << i)) r |= 1 << (7 - i);
  return r;
};
function crc8MsbFirst(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= rev8(byte);
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x31) & 0xff : (crc << 1) & 0xff;
  }
  return rev8(crc);
}

const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];

t.test('CRC8 Dallas/Maxim: hand-computed and check vectors', async (t) => {
  t.equal(obkCrc8(new Uint8Array()), 0x00, 'init 0');
  // By hand, bit by bit (LSB first, poly 0x8C): 01 -> 8C 46 23 9D C2 61 BC 5E.
  t.equal(obkCrc8(Uint8Array.of(0x01)), 0x5e);
  t.equal(obkCrc8(Uint8Array.of(0x80)), 0x8c, '0x80: seven zero shifts, then one xor');
  t.equal(obkCrc8(new TextEncoder().encode('123456789')), 0xa1, 'CRC-8/MAXIM-DOW check value');
  t.equal(crc8MsbFirst(Uint8Array.of(0x01)), 0x5e, 'the independent form agrees on the hand vector');
  const rnd = Uint8Array.from({ length: 3580 }, (_, i) => (i * 151 + 7) & 0xff);
  t.equal(obkCrc8(rnd), crc8MsbFirst(rnd), 'and on 3580 bytes');
  t.ok(rnd.some((b) => b & 0x80), 'with high bits set (an x86 port must shift unsigned)');
});

t.test('names and MAC', async (t) => {
  t.same(obkDefaultNames('c8:47:8c:80:a2:fb'), { shortName: 'obk8C80A2FB', longName: 'OpenBK7231N_8C80A2FB' }, 'MAC bytes 2..5, upper-case');
  t.same([...macBytes('C8-47-8C-80-A2-FB')], [0xc8, 0x47, 0x8c, 0x80, 0xa2, 0xfb]);
  t.throws(() => macBytes('c8:47:8c'), ConfigError);
  t.equal(OBK_CONFIG_ADDRESS, 0x1d1000);
});

t.test('the whole sector, byte-exact against offsets written out by hand', async (t) => {
  const roles = new Array(29).fill(0);
  const channels = new Array(29).fill(0);
  roles[6] = 19; roles[7] = 18; roles[8] = 9; roles[10] = 3; roles[24] = 17; roles[26] = 1;
  channels[10] = 1; channels[26] = 1;
  const sector = buildObkConfigSector({
    mac: 'c8:47:8c:80:a2:fb',
    pins: { roles, channels },
    flags: 1024n,
    startupCommand: 'startDriver NTP',
    wifi: { ssid: 'plugrig-station', pass: 'Pa55-word' },
  });
  t.equal(sector.length, 4096);

  // Expected image, assembled from the reference table (openbeken-http.md §6) with literal offsets.
  const x = new Uint8Array(4096).fill(0xff);
  x.fill(0, 0, 3584);
  const put = (at: number, bytes: number[]): void => x.set(bytes, at);
  put(0x000, ascii('CFG'));
  put(0x004, [5, 0, 0, 0]); // version 5, int32 LE
  put(0x008, [0x00, 0x04, 0, 0]); // genericFlags = 1024 (flag 10)
  put(0x014, ascii('plugrig-station'));
  put(0x054, ascii('Pa55-word'));
  put(0x194, ascii('obk8C80A2FB')); // MQTT client id defaults to the short name
  put(0x1d4, ascii('homeassistant'));
  put(0x214, ascii('qqqqqqqqqq'));
  put(0x294, [0x5b, 0x07, 0, 0]); // 1883
  put(0x298, ascii('https://openbekeniot.github.io/webapp/'));
  put(0x2d8, [0xc8, 0x47, 0x8c, 0x80, 0xa2, 0xfb]);
  put(0x2de, ascii('obk8C80A2FB'));
  put(0x2fe, ascii('OpenBK7231N_8C80A2FB'));
  put(0x33e + 6, [19, 18, 9]); // P6 CF1, P7 CF, P8 WifiLED_n
  put(0x33e + 10, [3]); // P10 Btn
  put(0x33e + 24, [17]); // P24 SEL
  put(0x33e + 26, [1]); // P26 Rel
  put(0x35e + 10, [1]);
  put(0x35e + 26, [1]);
  put(0x4b8, [3, 10, 5]); // button short / long / repeat, 0.1 s
  put(0x5e0, ascii('startDriver NTP'));
  x[3] = crc8MsbFirst(x.subarray(4, 3584));

  const diff: string[] = [];
  for (let i = 0; i < 4096; i++) if (sector[i] !== x[i]) diff.push(`0x${i.toString(16)}: ${sector[i]!.toString(16)} != ${x[i]!.toString(16)}`);
  t.same(diff.slice(0, 20), [], 'every byte as the reference says');
  t.equal(sector[3], x[3], `CRC byte 0x${x[3]!.toString(16)}`);
  t.ok(sector.subarray(3584).every((b) => b === 0xff), 'bytes 3584.. stay erased (OpenBeken writes sizeof(mainConfig_t) only)');
});

t.test('the CRC covers exactly [4, 3584)', async (t) => {
  const base = buildObkConfigSector({ mac: '00:11:22:33:44:55' });
  const crcOf = (s: Uint8Array): number => crc8MsbFirst(s.subarray(4, 3584));
  t.equal(base[3], crcOf(base));
  for (const at of [4, 0x597, 3583]) {
    const changed = buildObkConfigSector({ mac: '00:11:22:33:44:55' });
    changed[at] ^= 0x01;
    t.not(crcOf(changed), base[3], `a change at 0x${at.toString(16)} is covered`);
  }
  const outside = Uint8Array.from(base);
  outside[0] = 0; // ident and padding are not covered
  outside[3584] = 0;
  t.equal(crcOf(outside), base[3]);
  t.same(obkDefaultNames('00:11:22:33:44:55'), { shortName: 'obk22334455', longName: 'OpenBK7231N_22334455' });
  t.same([...base.subarray(0x2fe, 0x2fe + 21)], ascii('OpenBK7231N_22334455').concat([0]));
  t.same([...base.subarray(0x008, 0x010)], [0, 4, 0, 0, 0, 0, 0, 0], 'default flags: flag 10 alone');
  t.same([...base.subarray(0x014, 0x018)], [0, 0, 0, 0], 'no Wi-Fi: empty SSID (first boot opens the AP)');
});

t.test('flag word high half, web password, limits', async (t) => {
  const s = buildObkConfigSector({ mac: '00:11:22:33:44:55', flags: (1n << 40n) | (1n << 31n) | 1024n, webPassword: 'admin-pw' });
  t.same([...s.subarray(0x008, 0x010)], [0x00, 0x04, 0x00, 0x80, 0x00, 0x01, 0x00, 0x00], 'bits 0..31 at 0x08, 32..63 at 0x0C');
  t.same([...s.subarray(0xc84, 0xc84 + 9)], [...ascii('admin-pw'), 0]);
  t.throws(() => buildObkConfigSector({ mac: '00:11:22:33:44:55', wifi: { ssid: 'x'.repeat(64), pass: '' } }), /config field wifiSsid is 64 bytes .*at most 63/);
  const secret = 'p'.repeat(70) + 'SECRET';
  let msg = '';
  try {
    buildObkConfigSector({ mac: '00:11:22:33:44:55', wifi: { ssid: 'lab', pass: secret } });
  } catch (e) {
    msg = (e as Error).message + JSON.stringify((e as ConfigError).toJSON());
  }
  t.match(msg, /config field wifiPass is 76 bytes; OpenBeken keeps at most 63/);
  t.notOk(msg.includes('SECRET') || msg.includes('ppp'), 'a too-long password is not quoted');
  t.throws(() => buildObkConfigSector({ mac: '00:11:22:33:44:55', startupCommand: 'a'.repeat(1568) }), /initCommandLine is 1568 bytes/);
  t.throws(() => buildObkConfigSector({ mac: '00:11:22:33:44:55', pins: { roles: new Array(33).fill(0), channels: [] } }), /has 33 entries/);
  t.throws(() => buildObkConfigSector({ mac: '00:11:22:33:44:55', pins: { roles: [300], channels: [] } }), /roles\[0\] = 300 is not a byte/);
});
