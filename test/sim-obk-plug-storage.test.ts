import t from 'tap';
import { SpiFlash } from '../sim/bk7231/spi-flash.ts';
import {
  OBK_CONFIG_ADDR,
  buildConfigSector,
  configSectorProblem,
  parseConfigSector,
  tinyCrc8,
} from '../sim/plug/obk-config-sector.ts';
import { EASYFLASH_ADDR, FlashObkStorage } from '../sim/plug/obk-storage.ts';
import type { ObkConfigData } from '../sim/plug/obk/contracts.ts';

const MAC = Uint8Array.of(0xc8, 0x47, 0x8c, 0x01, 0x02, 0x03);

function config(over: Partial<ObkConfigData> = {}): ObkConfigData {
  return {
    version: 5,
    genericFlags: 1024,
    genericFlags2: 0,
    changeCounter: 7,
    wifiSsid: 'station',
    wifiPass: 'secret-pw',
    mqttHost: '',
    mqttClientId: 'obk8C010203',
    mqttUser: 'homeassistant',
    mqttPass: 'qqqqqqqqqq',
    mqttPort: 1883,
    webappRoot: 'https://openbekeniot.github.io/webapp/',
    mac: MAC,
    shortDeviceName: 'obk8C010203',
    longDeviceName: 'OpenBK7231N_8C010203',
    pinRoles: Object.assign(new Array<number>(32).fill(0), { 6: 19, 7: 18, 8: 9, 10: 3, 24: 17, 26: 1 }),
    pinChannels: Object.assign(new Array<number>(32).fill(0), { 10: 1, 26: 1 }),
    pinChannels2: new Array<number>(32).fill(0),
    channelTypes: new Array<number>(64).fill(0),
    startChannelValues: new Array<number>(64).fill(0),
    cal: { voltage: 0.5, current: 0.25, power: 1.5, powerMax: 3680 },
    buttonShortTicks: 3,
    buttonLongTicks: 10,
    buttonRepeatTicks: 5,
    bootOkSeconds: 0,
    initCommandLine: 'startDriver NTP',
    ssid2: '',
    pass2: '',
    webPassword: '',
    ...over,
  };
}

/** Bitwise CRC8 written differently from the module's (MSB of the reflected register view). */
function crc8Reference(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0x8c : crc >>> 1;
  }
  return crc & 0xff;
}

t.test('req 38: config sector layout is byte-exact (CFG, CRC8 over [4,3584), version 5, §6 offsets)', async (t) => {
  t.equal(tinyCrc8(new TextEncoder().encode('123456789')), 0xa1, 'CRC-8/MAXIM check value of "123456789"');
  const s = buildConfigSector(config());
  t.equal(s.length, 4096);
  t.same([...s.subarray(0, 3)], [0x43, 0x46, 0x47], "'C','F','G'");
  t.equal(s[3], crc8Reference(s.subarray(4, 3584)), 'CRC8 at byte 3 over bytes 4..3583');
  const dv = new DataView(s.buffer);
  t.equal(dv.getInt32(0x04, true), 5, 'version 5 at 0x04');
  t.equal(dv.getUint32(0x08, true), 1024, 'genericFlags at 0x08');
  t.equal(dv.getUint16(0x10, true), 7, 'changeCounter at 0x10');
  const str = (at: number, n: number): string => Buffer.from(s.subarray(at, at + n)).toString('latin1').replace(/\0.*$/s, '');
  t.equal(str(0x14, 64), 'station', 'wifi_ssid at 0x14');
  t.equal(str(0x54, 64), 'secret-pw', 'wifi_pass at 0x54');
  t.equal(dv.getInt32(0x294, true), 1883, 'mqtt_port at 0x294');
  t.same([...s.subarray(0x2d8, 0x2de)], [...MAC], 'mac at 0x2D8');
  t.equal(str(0x2de, 32), 'obk8C010203', 'shortDeviceName at 0x2DE');
  t.equal(str(0x2fe, 64), 'OpenBK7231N_8C010203', 'longDeviceName at 0x2FE');
  t.equal(s[0x33e + 26], 1, 'roles[26] = Rel at 0x33E + 26');
  t.equal(s[0x33e + 10], 3, 'roles[10] = Btn');
  t.equal(s[0x35e + 26], 1, 'channels[26] = 1 at 0x35E + 26');
  t.equal(dv.getFloat32(0x498, true), 0.5, 'cal V float32 at 0x498 (0x1D1498 in flash)');
  t.equal(dv.getFloat32(0x4a4, true), 3680, 'cal PowerMax at 0x4A4');
  t.same([s[0x4b8], s[0x4b9], s[0x4ba]], [3, 10, 5], 'button short/long/repeat at 0x4B8');
  t.equal(str(0x5e0, 1568), 'startDriver NTP', 'initCommandLine at 0x5E0');
  t.ok(s.subarray(3584).every((b) => b === 0xff), '[3584, 4096) stays erased');

  const back = parseConfigSector(s)!;
  t.same(back.config, config(), 'parse(build(x)) = x');
  const flipped = Uint8Array.from(s);
  flipped[0x14] = 0x54; // 'T'
  t.equal(parseConfigSector(flipped), undefined, 'one changed byte: CRC fails, config invalid');
  t.match(configSectorProblem(flipped), /CRC8/);
  const noIdent = Uint8Array.from(s);
  noIdent[2] = 0x58;
  t.match(configSectorProblem(noIdent), /CFG/);
  t.match(configSectorProblem(new Uint8Array(4096).fill(0xff)), /CFG/, 'erased sector');

  // Fields the simulator does not model survive a save.
  const odd = Uint8Array.from(s);
  odd[0x460] = 0x42;
  odd[3] = tinyCrc8(odd, 4, 3584);
  const parsed = parseConfigSector(odd)!;
  t.equal(buildConfigSector(parsed.config, parsed.raw)[0x460], 0x42, 'unmodelled byte kept');
  t.equal(buildConfigSector(config({ wifiSsid: 'x'.repeat(100) }))[0x14 + 63], 0, 'strings truncated so the terminator fits');
});

t.test('req 38: FlashObkStorage keeps the config at 0x1D1000 and retained values at 0x1E5000, through protection', async (t) => {
  const flash = new SpiFlash({ initialSr: 0x4004 });
  const st = new FlashObkStorage(flash);
  t.equal(st.loadConfig(), undefined, 'erased sector: no config');
  t.same(st.loadRetained(), { bootCount: 0, bootSuccessCount: 0, energyTotalWh: 0, energyTodayWh: 0 });
  st.saveConfig(config());
  t.equal(flash.statusRegister, 0x4004, 'protection restored after the write');
  t.equal(configSectorProblem(flash.read(OBK_CONFIG_ADDR, 4096)), undefined, 'a valid sector in flash');
  t.same(new FlashObkStorage(flash).loadConfig(), config(), 'a fresh reader (next boot) sees it');
  t.equal(flash.read(0x1d0000, 1)[0], 0xff, 'RF sector beside it untouched');

  st.saveRetained({ bootCount: 1, bootSuccessCount: 0, energyTotalWh: 0, energyTodayWh: 0 });
  st.saveRetained({ bootCount: 1, bootSuccessCount: 1, energyTotalWh: 12.34, energyTodayWh: 1 });
  const r = new FlashObkStorage(flash).loadRetained();
  t.equal(r.bootSuccessCount, 1);
  t.equal(r.energyTotalWh, Math.fround(12.34), 'energy stored as float32');
  t.ok(flash.read(EASYFLASH_ADDR, 4).every((b, i) => b === [0x4f, 0x42, 0x4b, 0x46][i]), 'EasyFlash area at 0x1E5000');

  // Hundreds of saves roll over sectors; the newest value always wins.
  for (let i = 0; i < 500; i++) st.saveRetained({ bootCount: 10 + i, bootSuccessCount: 9 + i, energyTotalWh: i, energyTodayWh: 0 });
  t.equal(new FlashObkStorage(flash).loadRetained().bootCount, 509, 'newest record after 500 saves');
  t.ok(st.writes.erases >= 4, `round-robin erases (${st.writes.erases})`);

  // A torn write (power cut mid-record) loses only that record.
  const before = new FlashObkStorage(flash).loadRetained();
  const area = flash.read(EASYFLASH_ADDR, 0x8000);
  let torn = -1;
  for (let off = 64; off < 0x8000; off += 32) {
    if ((off & 0xfff) < 64) continue;
    if (area.subarray(off, off + 32).every((b) => b === 0xff)) {
      torn = off;
      break;
    }
  }
  t.ok(torn > 0, 'a free slot');
  flash.writeStatus(0x01, Uint8Array.of(0, 0));
  t.ok(flash.program(EASYFLASH_ADDR + torn, Uint8Array.of(0xa5, 1, 0, 0, 99, 0, 0, 0)), 'the first 8 bytes of a record reached the flash');
  t.same(new FlashObkStorage(flash).loadRetained(), before, 'half-written record ignored');
});
